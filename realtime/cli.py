"""The `liaison` command: serve, token, and the directory and load-test tools."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import uvicorn

from auth import tokens
from realtime.config import ConfigError, Settings, load_settings
from realtime.logs import configure_logging


class Server(uvicorn.Server):
    """uvicorn's server, closing our WebSocket connections with 1001 before its own shutdown."""

    async def shutdown(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        app = self.config.loaded_app
        gateway = getattr(getattr(getattr(app, "app", app), "state", None), "gateway", None)
        if gateway is not None:
            await gateway.drain()
        await super().shutdown(sockets)  # type: ignore[arg-type]


def uvicorn_config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    from realtime.app import create_app

    limits = settings.limits
    return uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        ws="websockets-sansio",
        ws_max_size=max(16 * limits.max_frame_bytes, 4 * 1024 * 1024),
        ws_ping_interval=settings.ping_interval,
        ws_ping_timeout=settings.ping_timeout,
        ws_per_message_deflate=False,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )


def _settings(demo: bool) -> Settings:
    try:
        return load_settings(os.environ, demo=demo)
    except ConfigError as exc:
        print(f"liaison: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args.demo)
    configure_logging(settings.log_level)
    if args.demo:
        print(f"Liaison demo school: open http://{args.host}:{args.port}/ in your browser",
              file=sys.stderr)
    Server(uvicorn_config(settings, args.host, args.port)).run()
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    settings = _settings(args.demo)
    ttl = args.ttl or settings.token_ttl
    print(tokens.issue(settings.jwt_secret.bytes(), args.user_id, ttl))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liaison", description="Liaison real-time school messaging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (WebSocket /ws, HTTP API, web client)")
    serve.add_argument("--demo", action="store_true", help="load the demo school; demo sign-in")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    token = sub.add_parser("token", help="print a signed token (JWT) for a user")
    token.add_argument("user_id")
    token.add_argument("--ttl", type=int, default=0, help="lifetime in seconds")
    token.add_argument("--demo", action="store_true", help="use the demo secret")
    token.set_defaults(func=cmd_token)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
