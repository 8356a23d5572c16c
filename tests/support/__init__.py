"""Helpers shared by the test suites: real servers on free ports, waiting on conditions."""
