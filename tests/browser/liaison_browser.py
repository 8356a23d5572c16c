"""Helpers for the browser tests and the screenshot script: start the real server
(`realtime.process.cli serve --demo`, or without `--demo` with e-mail and the admin API:
`live_server`) on a free port, launch Debian's Chromium, sign in."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:  # playwright is imported where it is used (the server helpers run without it)
    from playwright.sync_api import BrowserContext, Page, ViewportSize

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("LIAISON_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE: ViewportSize = {"width": 375, "height": 812}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}


class LaunchArgs(TypedDict):
    """Arguments of Playwright's `BrowserType.launch` for Debian's Chromium."""

    executable_path: str
    headless: bool
    args: list[str]


def launch_args() -> LaunchArgs:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(
            f"Chromium not found at {CHROMIUM}: install it with "
            "`apt-get update && apt-get install -y chromium` (or set LIAISON_CHROMIUM)"
        )
    return {"executable_path": CHROMIUM, "headless": True, "args": CHROMIUM_ARGS}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]
    log: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def demo_server(workdir: Path, port: int | None = None, timeout: float = 30.0) -> Iterator[Server]:
    """The real server in demo mode with a SQLite store in `workdir` (kept: starting
    again on the same folder and port is a restart); stopped on exit."""
    with _serve(workdir, ["--demo"], {}, port, timeout) as server:
        yield server


API_KEY = "browser-tests-api-key-0123456789abcdef"
JWT_SECRET = "browser-tests-jwt-secret-0123456789abcdef0123"


@contextmanager
def live_server(workdir: Path, smtp_url: str, env: dict[str, str] | None = None,
                port: int | None = None, timeout: float = 30.0) -> Iterator[Server]:
    """The real server as in production (no `--demo`: no demo school, no demo routes): its
    own `LIAISON_JWT_SECRET`, e-mail through `smtp_url`, the admin API with `API_KEY`.
    `env` adds or overrides settings (e.g. `LIAISON_ACCESS_TTL`)."""
    port = port or free_port()
    settings = {
        "LIAISON_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "LIAISON_JWT_SECRET": JWT_SECRET,
        "LIAISON_API_KEY": API_KEY,
        "LIAISON_SMTP_URL": smtp_url,
        "LIAISON_SMTP_FROM": "liaison@ecole.example",
        **(env or {}),
    }
    with _serve(workdir, [], settings, port, timeout) as server:
        yield server


def admin(server: Server, method: str, path: str, body: object | None = None) -> Any:
    """A call to the HTTP admin API of a `live_server` (`path` under /api/v1); its JSON answer."""
    request = urllib.request.Request(
        f"{server.url}/api/v1{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {API_KEY}"},
    )
    with urllib.request.urlopen(request, timeout=10) as res:
        raw = res.read()
    return json.loads(raw) if raw else None


@contextmanager
def _serve(workdir: Path, args: list[str], settings: dict[str, str], port: int | None,
           timeout: float) -> Iterator[Server]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = {**os.environ, **settings}
    env["LIAISON_STORE_URL"] = f"sqlite:///{workdir / 'liaison.db'}"
    # some tests seed dozens of posts at once: faster than the per-user publish limit of a person
    env["LIAISON_PUBLISHES_PER_SECOND"] = env["LIAISON_PUBLISH_BURST"] = "1000"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    log = workdir / "server.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "realtime.process.cli", "serve", *args, "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", port, workdir, process, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{server.logs()}")
            try:
                with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as res:
                    if res.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer /healthz in {timeout}s:\n{server.logs()}")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


# Every violation of the page's Content-Security-Policy, as the page itself sees it (the
# `securitypolicyviolation` event), is written to the console; Chromium's own "Refused to …"
# reports are console messages too. `watch_csp` collects both for a context.
_REPORT_CSP = """
document.addEventListener('securitypolicyviolation', (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  console.error(`CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI || 'inline'} at ${where}`);
});
"""


def is_csp_violation(text: str) -> bool:
    return text.startswith("CSP violation") or "Content Security Policy" in text


def watch_csp(context: BrowserContext) -> list[str]:
    """The CSP violations of every page of `context`, as they are reported (a live list)."""
    violations: list[str] = []
    context.add_init_script(_REPORT_CSP)
    context.on("console", lambda msg: violations.append(msg.text) if is_csp_violation(msg.text) else None)
    return violations


def sign_in(context: BrowserContext, base_url: str, user: str,
            before: Callable[[Page], None] | None = None) -> Page:
    """A new page (tab) of `context` signed in as `user` through the demo sign-in page;
    `before(page)` runs before the page opens (to listen to its WebSocket, say)."""
    from playwright.sync_api import expect

    page = context.new_page()
    if before is not None:
        before(page)
    page.goto(base_url + "/")
    page.locator(f'button[data-user="{user}"]').click()
    # the navigation appears once connected and the profile is loaded
    expect(page.locator("nav.tabs a").first).to_be_visible()
    return page


def demo_token(base_url: str, user: str) -> str:
    request = urllib.request.Request(
        f"{base_url}/demo/token",
        data=json.dumps({"user": user}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as res:
        return str(json.load(res)["token"])


class ProtocolClient:
    """A minimal synchronous protocol client (JSON subprotocol) to prepare data."""

    def __init__(self, base_url: str, user: str) -> None:
        from websockets.sync.client import connect
        from websockets.typing import Subprotocol

        self._stack = ExitStack()
        self.ws = self._stack.enter_context(
            connect(base_url.replace("http", "ws", 1) + "/ws", subprotocols=[Subprotocol("liaison.v1.json")])
        )
        self.next_id = 1
        self.call("connect", token=demo_token(base_url, user))

    def call(self, op: str, **params: object) -> dict[str, Any]:
        """Send a command and return its `ok` (pushes in between are ignored)."""
        frame_id = self.next_id
        self.next_id += 1
        self.ws.send(json.dumps({"id": frame_id, "op": op, **params}))
        while True:
            frame = json.loads(self.ws.recv(timeout=10))
            if frame.get("id") == frame_id:
                if "error" in frame:
                    raise RuntimeError(f"{op}: {frame['error']}")
                return dict(frame["ok"])

    def publish(self, channel: str, kind: str, **data: object) -> dict[str, Any]:
        self.key = getattr(self, "key", 0) + 1
        return self.call("publish", channel=channel, kind=kind, data=data, key=f"seed-{self.key}")

    def close(self) -> None:
        self._stack.close()
