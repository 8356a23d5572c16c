"""Tokens, identities and the policy table."""
