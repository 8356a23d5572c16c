"""Durable storage: the `Store` protocol and its adapters (SQLite, MongoDB)."""
