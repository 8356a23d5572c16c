"""Pub/sub between gateway processes: the `Broker` protocol, its adapters, local fan-out."""
