"""A real SMTP server for the tests (aiosmtpd, in its own thread) on a free port of 127.0.0.1.

`SmtpServer(...)` starts it: plain, with STARTTLS (`starttls=` a server `SSLContext`), with
implicit TLS (`implicit_tls=`), with a login (`login=(user, password)`), refusing some
recipients (`refuse={address: "550 ..."}`). It collects every message it accepts;
`await server.wait_for_message(to)` returns the first one for an address (or raises
`TimeoutError`), and `code_from(message)` reads a sign-in code out of it.
`self_signed(tmp_path)` makes a certificate for 127.0.0.1 with `openssl`.
"""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.redis_servers import free_port
from tests.support.waiting import UNIT, wait_for


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    encrypted: bool  # STARTTLS or implicit TLS
    authenticated: bool


class _Handler:
    def __init__(self, refuse: dict[str, str]) -> None:
        self.refuse = refuse
        self.received: list[Received] = []
        self.lock = threading.Lock()

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        transport: Any = server.transport
        encrypted = session.ssl is not None or transport.get_extra_info("ssl_object") is not None
        item = Received(envelope.mail_from or "", tuple(envelope.rcpt_tos), parsed, encrypted,
                        bool(session.authenticated))
        with self.lock:
            self.received.append(item)
        return "250 Message accepted"


class SmtpServer:
    def __init__(self, *, starttls: ssl.SSLContext | None = None, require_starttls: bool = False,
                 implicit_tls: ssl.SSLContext | None = None, login: tuple[str, str] | None = None,
                 refuse: dict[str, str] | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port()
        self._handler = _Handler(refuse or {})
        self._login = login
        kwargs: dict[str, Any] = {}
        if starttls is not None:
            kwargs.update(tls_context=starttls, require_starttls=require_starttls)
        if login is not None:
            # with STARTTLS: login required, and only once encrypted; without: allowed in clear
            # (the client only does that on the loopback)
            tls = starttls is not None
            kwargs.update(authenticator=self._authenticate, auth_require_tls=tls, auth_required=tls)
        self._controller = Controller(self._handler, hostname=self.host, port=self.port,
                                      ssl_context=implicit_tls, server_hostname="127.0.0.1", **kwargs)
        self._controller.start()

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        assert self._login is not None
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(), auth_data.password.decode()) == self._login
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    def url(self, scheme: str = "smtp", userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"{scheme}://{at}{self.host}:{self.port}"

    @property
    def received(self) -> list[Received]:
        with self._handler.lock:
            return list(self._handler.received)

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    async def wait_for_message(self, to: str, timeout: float = UNIT) -> Received:
        """The first message received for `to`; `TimeoutError` when none comes in time."""

        def first() -> Received | None:
            return next((r for r in self.received if to in r.rcpt_tos), None)

        await wait_for(lambda: first() is not None, timeout, f"an e-mail to {to}")
        found = first()
        assert found is not None
        return found


def own_address() -> str | None:
    """This machine's address on its default route (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def text_of(message: EmailMessage, subtype: str = "plain") -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None and isinstance(part, EmailMessage), f"no text/{subtype} part"
    content = part.get_content()
    assert isinstance(content, str)
    return content


def code_from(message: EmailMessage) -> str:
    """The six-digit sign-in code of a code e-mail (from its plain-text part)."""
    found = re.search(r"Votre code de connexion à Liaison : ([0-9]{6})\b", text_of(message))
    assert found is not None, "no sign-in code in the e-mail"
    return found.group(1)


def self_signed(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh self-signed certificate for 127.0.0.1, and a client context
    that trusts exactly that certificate."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=UNIT * 6,
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client
