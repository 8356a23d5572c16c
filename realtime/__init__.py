"""The gateway: WebSocket endpoint, protocol, sessions, HTTP API, configuration, CLI."""
