"""The `liaison` command: serve, token, and the directory and load-test tools."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import structlog
import uvicorn

from auth import tokens
from persistence.factory import open_store, open_upload_store
from persistence.store import Store, StoreUnavailable
from persistence.upload_store import Consent
from realtime.config import ConfigError, Settings, load_settings
from realtime.config import store_url as config_store_url
from realtime.process import preflight
from realtime.process.app import foreign_schools
from realtime.process.heap import freeze_startup_heap
from realtime.process.http_protocol import http_protocol
from realtime.process.logs import configure_logging
from realtime.process.workers import reuse_port_socket, supervise
from realtime.ws.transport import TransportLimits, protocols
from school.importer import ImportPlan, ImportSummary, decode_csv, plan_import


class Server(uvicorn.Server):
    """uvicorn's server, closing our WebSocket connections with 1001 before its own shutdown;
    once started, its long-lived heap leaves the collector's full passes (`heap`)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            freeze_startup_heap()

    async def shutdown(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        app = self.config.loaded_app
        gateway = getattr(getattr(getattr(app, "app", app), "state", None), "gateway", None)
        if gateway is not None:
            await gateway.drain()
        await super().shutdown(sockets)  # type: ignore[arg-type]


def uvicorn_config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    from realtime.process.app import FastWebSocketRoute, create_app

    limits = settings.limits
    transport = transport_limits(settings, raise_fd_limit())
    _, ws_protocol = protocols(transport)
    http = http_protocol(transport, settings.http_write_timeout)  # with the write deadline
    return uvicorn.Config(
        FastWebSocketRoute(create_app(settings)),
        host=host,
        port=port,
        http=http,  # h11 only: the transport's deadlines rely on h11's state (docs/design-notes.md)
        ws=ws_protocol,
        loop=settings.loop,  # LIAISON_LOOP: asyncio, uvloop, or auto (uvloop when installed)
        ws_max_size=max(16 * limits.max_frame_bytes, 4 * 1024 * 1024),
        ws_ping_interval=settings.ping_interval,
        ws_ping_timeout=settings.ping_timeout,
        ws_per_message_deflate=False,
        lifespan="on",
        interface="asgi3",  # FastWebSocketRoute returns its coroutine rather than being a coroutine function
        proxy_headers=False,  # the gateway logs no client addresses
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=settings.keep_alive_timeout,
        limit_concurrency=transport.max_connections + 1,  # uvicorn counts the refused one too: 503
    )


FD_RESERVE = 256  # descriptors kept for the store, Redis, the listening socket and the logs


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (OSError, ValueError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def transport_limits(settings: Settings, fd_limit: int) -> TransportLimits:
    """The connection cap, lowered so that it stays well below the descriptor limit: three
    quarters of the descriptors for served connections, the rest for refusing the others
    cleanly; past that, connections are answered 503 unread, never an EMFILE."""
    usable = max(fd_limit - FD_RESERVE, 16)
    cap = min(settings.max_connections, usable * 3 // 4)
    if cap < settings.max_connections:
        structlog.get_logger("liaison.process").warning(
            "max_connections_lowered", configured=settings.max_connections, cap=cap, fd_limit=fd_limit)
    return TransportLimits(max_connections=cap, hard_connections=usable, header_timeout=settings.header_timeout,
                           socket_sndbuf=settings.limits.socket_sndbuf)


def _settings(demo: bool) -> Settings:
    try:
        return load_settings(os.environ, demo=demo)
    except ConfigError as exc:
        print(f"liaison: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args.demo)
    configure_logging(settings.log_level)
    if args.workers > 1:
        if not settings.redis_url:
            print("liaison: --workers needs LIAISON_REDIS_URL: the in-process broker cannot carry "
                  "messages between processes", file=sys.stderr)
            return 2
        child = ["serve", "--host", args.host, "--port", str(args.port), "--reuse-port"]
        return supervise(args.workers, child + (["--demo"] if args.demo else []))
    if args.demo:
        refusal = asyncio.run(_demo_store_refusal(settings.store_url))
        if refusal:
            print(f"liaison: {refusal}", file=sys.stderr)
            return 2
        print(f"Liaison demo school: open http://{args.host}:{args.port}/ in your browser",
              file=sys.stderr)
    server = Server(uvicorn_config(settings, args.host, args.port))
    if args.reuse_port:
        server.run(sockets=[reuse_port_socket(args.host, args.port)])
    else:
        server.run()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the durable jobs until SIGTERM (realtime/process/worker.py)."""
    from realtime.process.worker import run_worker

    settings = _settings(args.demo)
    configure_logging(settings.log_level)
    try:
        asyncio.run(run_worker(settings))
    except StoreUnavailable as exc:
        print(f"liaison worker: the store is unavailable ({exc})", file=sys.stderr)
        return 2
    return 0


def cmd_privacy(args: argparse.Namespace) -> int:
    """`liaison privacy export|erase|run` (issue 15; realtime/process/privacy_cli.py)."""
    from realtime.process.privacy_cli import command

    settings = _settings(False)
    configure_logging(settings.log_level)
    try:
        return asyncio.run(command(args, settings))
    except StoreUnavailable as exc:
        print(f"liaison privacy: the store is unavailable ({exc}); run the command again", file=sys.stderr)
        return 2


async def _demo_store_refusal(url: str) -> str | None:
    """Why `--demo` must not serve this store (it holds real schools), or None."""
    store = open_store(url)
    await store.open()
    try:
        schools = foreign_schools(await store.load_directory())
    finally:
        await store.close()
    if not schools:
        return None
    return (f"--demo refuses to serve {url}: it holds other schools than the demo ({', '.join(schools[:3])}"
            f"{', …' if len(schools) > 3 else ''}), and the demo hands out tokens to anyone. "
            "Point LIAISON_STORE_URL at a demo store (e.g. sqlite:///demo.db), or run without --demo.")


def cmd_token(args: argparse.Namespace) -> int:
    settings = _settings(args.demo)
    ttl = args.ttl or settings.token_ttl
    print(tokens.issue(settings.jwt_secret.bytes(), args.user_id, ttl))
    return 0


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _summary_lines(school_id: str, rows: int, s: ImportSummary) -> list[str]:
    return [
        f"school {school_id}: imported {rows:,} students",
        f"classes created: {s.classes_created}",
        f"students: {s.students_added} added, {s.students_updated} updated, {s.students_removed} removed, "
        f"{s.students_unchanged} unchanged",
        f"guardians: {s.guardians_added} added, {s.guardians_updated} updated, {s.guardians_removed} removed, "
        f"{s.guardians_unchanged} unchanged",
    ]


async def _plan_and_save(store: Store, text: str, school_id: str, dry_run: bool) -> ImportPlan:
    """Plan against the stored directory; unless it is a dry run or the plan has errors, save it
    in one transaction."""
    await store.open()
    try:
        started = time.perf_counter()
        lines = text.count("\n")
        _progress(f"planning {lines:,} lines…")
        plan = plan_import(text, school_id, await store.load_directory())
        _progress(f"planned in {time.perf_counter() - started:.2f} s")
        if plan.ok and not dry_run:
            started = time.perf_counter()
            await store.save_directory(plan.upserts(), plan.deletions())
            await store.touch_directory()  # running gateways reload the directory
            _progress(f"saved in {time.perf_counter() - started:.2f} s")
        return plan
    finally:
        await store.close()


async def _save_consents(store_url: str, plan: ImportPlan) -> None:
    """The file's image consents (issue 13), beside the messages. Downloads follow them at once;
    photos already published are hidden or shown again by the server's next change of that
    child's consent (`POST /api/v1/admin/schools/{id}/import` applies them at once)."""
    uploads = open_upload_store(store_url)
    await uploads.open()
    try:
        for student, guardian, state in plan.consents():
            await uploads.set_consent(Consent(student, guardian, state, time.time()))
    finally:
        await uploads.close()


def cmd_import(args: argparse.Namespace) -> int:
    store_url = config_store_url(os.environ)  # the import needs only the store, not the secret
    try:
        data = Path(args.file).read_bytes()
        store = open_store(store_url)
    except OSError as exc:
        print(f"liaison import: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"liaison import: LIAISON_STORE_URL: {exc}", file=sys.stderr)
        return 2
    try:
        plan = asyncio.run(_plan_and_save(store, decode_csv(data), args.school, args.dry_run))
        if plan.ok and not args.dry_run and plan.consents():
            asyncio.run(_save_consents(store_url, plan))
        if plan.ok and not args.dry_run:  # leavers and the audit log (issue 15)
            from realtime.process.privacy_cli import after_import

            summary = {k: int(v) for k, v in plan.summary().as_dict().items()}
            asyncio.run(after_import(store_url, args.school, list(plan.deletions().get("people", [])), summary))
    except StoreUnavailable as exc:
        print(f"liaison import: the store is unavailable ({exc}); nothing was changed", file=sys.stderr)
        return 2
    return _report(plan, args.dry_run, args.limit)


def _report(plan: ImportPlan, dry_run: bool, limit: int) -> int:
    """Print the errors (exit 1), the dry run's description, or what was saved."""
    if not plan.ok:
        print("\n".join(plan.describe()), file=sys.stderr)
        print("nothing was changed", file=sys.stderr)
        return 1
    if dry_run:
        print("\n".join(plan.describe(limit=limit)))
        print("dry run: nothing was changed")
        return 0
    s = plan.summary()
    rows = s.students_added + s.students_updated + s.students_unchanged
    print("\n".join(_summary_lines(plan.school_id, rows, s)))
    return 0


async def _seed(store: Store, schools: int, classes: int, students: int) -> int:
    from school.district import build_district

    started = time.perf_counter()
    items = build_district(schools, classes, students)
    _progress(f"built {len(items):,} entities in {time.perf_counter() - started:.2f} s")
    await store.open()
    try:
        started = time.perf_counter()
        await store.save_directory(items)
        await store.touch_directory()
        _progress(f"saved in {time.perf_counter() - started:.2f} s")
    finally:
        await store.close()
    return len(items)


def cmd_seed_district(args: argparse.Namespace) -> int:
    """Write the synthetic district of docs/district.md into LIAISON_STORE_URL (upserts: re-running
    it is harmless)."""
    if min(args.schools, args.classes, args.students) < 1:
        print("liaison seed-district: --schools, --classes and --students must be 1 or more", file=sys.stderr)
        return 2
    try:
        store = open_store(config_store_url(os.environ))
    except ValueError as exc:
        print(f"liaison seed-district: LIAISON_STORE_URL: {exc}", file=sys.stderr)
        return 2
    _progress(f"seeding {args.schools} schools x {args.classes} classes x {args.students} students…")
    try:
        asyncio.run(_seed(store, args.schools, args.classes, args.students))
    except StoreUnavailable as exc:
        print(f"liaison seed-district: the store is unavailable ({exc}); nothing was changed", file=sys.stderr)
        return 2
    s, c, n = args.schools, args.classes, args.students
    print(f"district seeded: schools sch-1..sch-{s} (director d-{{s}}), classes sch-{{s}}-c1..c{c} "
          f"(teacher t-{{s}}-{{c}}), students s-{{s}}-{{c}}-1..{n}, guardians g-{{s}}-{{c}}-{{n}}-1 "
          f"and -2 for a second household (docs/district.md); mint tokens with `liaison token ID`")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liaison", description="Liaison real-time school messaging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (WebSocket /ws, HTTP API, web client)")
    serve.add_argument("--demo", action="store_true", help="load the demo school; demo sign-in")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1,
                       help="gateway processes sharing the port (needs LIAISON_REDIS_URL)")
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run the notification jobs (Web Push, webhook) beside the gateways")
    worker.add_argument("--demo", action="store_true", help="beside a `serve --demo` (its demo secret)")
    worker.set_defaults(func=cmd_worker)

    token = sub.add_parser("token", help="print a signed token (JWT) for a user")
    token.add_argument("user_id")
    token.add_argument("--ttl", type=int, default=0, help="lifetime in seconds")
    token.add_argument("--demo", action="store_true", help="use the demo secret")
    token.set_defaults(func=cmd_token)

    load = sub.add_parser("import", help="import a school's CSV export (one row per student); see docs/import.md",
                          description="Make the school's students and guardians match the file, all or nothing. "
                                      "The store is LIAISON_STORE_URL; running gateways pick the change up.")
    load.add_argument("file", metavar="FILE.csv", help="the export: UTF-8 or Windows-1252, ';' or ','")
    load.add_argument("--school", required=True, metavar="ID", help="the id of the school (it must exist)")
    load.add_argument("--dry-run", action="store_true", help="say what would change; write nothing")
    load.add_argument("--limit", type=int, default=5, help="ids shown per list in the dry run (default 5)")
    load.set_defaults(func=cmd_import)

    privacy = sub.add_parser("privacy", help="children's data: export, erase, apply the school year's rules",
                             description="See docs/privacy.md. The store is LIAISON_STORE_URL.")
    psub = privacy.add_subparsers(dest="privacy_command", required=True)
    p_export = psub.add_parser("export", help="write all of a person's data as a zip archive")
    p_export.add_argument("person", metavar="PERSON", help="the person's id")
    p_export.add_argument("--out", metavar="FILE", help="the archive's file (default: standard output)")
    p_erase = psub.add_parser("erase", help="erase a person (resumes an interrupted erasure)")
    p_erase.add_argument("person", metavar="PERSON", help="the person's id")
    p_erase.add_argument("--dry-run", action="store_true", help="count what would be erased; change nothing")
    p_run = psub.add_parser("run", help="freeze and purge school years, erase leavers, finish erasures")
    p_run.add_argument("--dry-run", action="store_true", help="list what would be done; change nothing")
    privacy.set_defaults(func=cmd_privacy)

    seed = sub.add_parser("seed-district", help="fill the store with the synthetic district (docs/district.md)")
    seed.add_argument("--schools", type=int, required=True, metavar="S")
    seed.add_argument("--classes", type=int, required=True, metavar="C", help="classes per school")
    seed.add_argument("--students", type=int, required=True, metavar="N", help="students per class")
    seed.set_defaults(func=cmd_seed_district)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    preflight.check()
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
