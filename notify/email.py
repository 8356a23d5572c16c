"""E-mail (issue 11): the `Mailer` protocol, its SMTP and in-memory adapters, and the French
messages Liaison sends (the sign-in code, the invitation).

SMTP: `LIAISON_SMTP_URL` names the server.

- `smtp://user:password@host:587`: STARTTLS when the server offers it (port 25 by default);
- `smtp+starttls://...`: STARTTLS required, the message is not sent without it (port 587);
- `smtps://...`: implicit TLS from the first byte (port 465).

User and password are percent-decoded. The password is never sent over an unencrypted
connection, except to a server on the loopback interface (a relay on the same host).
Certificates are checked against the system's authorities (or the `ssl_context` given).

Sending uses the standard library's `smtplib` in a worker thread (`asyncio.to_thread`), so the
event loop never waits on the network; every socket operation has `timeout` seconds, and the
whole send `deadline` seconds (after which the caller is told, while the thread ends at its
next socket timeout). A failure is a `MailError` that says whether trying again later may help
(`transient`: the server is unreachable, slow or answered 4xx) or not (5xx, a refused login).

Messages are plain text with an HTML alternative; every value put into the HTML is escaped.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import smtplib
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Final, Literal, Protocol
from urllib.parse import quote, unquote, urlsplit

Security = Literal["starttls-if-offered", "starttls", "tls"]
DEFAULT_PORTS: Final[dict[str, tuple[int, Security]]] = {
    "smtp": (25, "starttls-if-offered"),
    "smtp+starttls": (587, "starttls"),
    "smtps": (465, "tls"),
}
CODE_VALID_MINUTES: Final = 10


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    text: str
    html: str
    headers: tuple[tuple[str, str], ...] = ()  # more header fields (the digest's List-Unsubscribe, RFC 8058)


class Mailer(Protocol):
    async def send(self, mail: Email) -> None:
        """Deliver `mail` to the next hop, or raise `MailError`."""
        ...


class MailError(Exception):
    """Sending failed. `transient`: trying again later may succeed."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


# -- the messages -----------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _page(paragraphs: list[str]) -> str:
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        '<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8"></head>\n'
        f'<body style="font-family: sans-serif; line-height: 1.5; color: #222">\n{body}\n</body></html>\n'
    )


def code_email(to: str, school: str, code: str, *, valid_minutes: int = CODE_VALID_MINUTES) -> Email:
    """The e-mail that carries a one-time sign-in code."""
    school = _one_line(school)
    e = html.escape
    text = (
        f"Bonjour,\n\n"
        f"Votre code de connexion à Liaison : {code}\n\n"
        f"Il est valable {valid_minutes} minutes. Saisissez-le sur la page de connexion de Liaison"
        f" ({school}).\n\n"
        f"Si vous n'avez pas demandé ce code, ignorez ce message : personne ne peut se connecter"
        f" sans lui.\n\n"
        f"Liaison, le cahier de liaison de {school}\n"
    )
    page = _page([
        "Bonjour,",
        f'Votre code de connexion à Liaison :<br><strong style="font-size: 1.6em; letter-spacing: 0.2em">'
        f"{e(code)}</strong>",
        f"Il est valable {valid_minutes} minutes. Saisissez-le sur la page de connexion de Liaison"
        f" ({e(school)}).",
        "Si vous n'avez pas demandé ce code, ignorez ce message : personne ne peut se connecter sans lui.",
        f"Liaison, le cahier de liaison de {e(school)}",
    ])
    return Email(to, f"Votre code de connexion à Liaison : {code}", text, page)


def signin_link(base_url: str, email: str) -> str:
    """The sign-in page with the address filled in: `<base_url>/#signin?email=<urlencoded>`."""
    return f"{base_url.rstrip('/')}/#signin?email={quote(email, safe='')}"


def invitation_email(to: str, school: str, base_url: str, *, name: str | None = None) -> Email:
    """The invitation of a person who has never signed in: a link to the sign-in page."""
    school = _one_line(school)
    link = signin_link(base_url, to)
    greeting = f"Bonjour {_one_line(name)}," if name and name.strip() else "Bonjour,"
    e = html.escape
    text = (
        f"{greeting}\n\n"
        f"{school} utilise Liaison, le cahier de liaison numérique, pour échanger avec vous : la vie de la"
        f" classe, les devoirs, les annonces de l'école et les messages avec les enseignants.\n\n"
        f"Pour vous connecter, ouvrez ce lien puis demandez un code de connexion ; il vous sera envoyé"
        f" à cette adresse ({to}). Aucun mot de passe à retenir.\n\n"
        f"{link}\n\n"
        f"Si vous ne connaissez pas cette école, ignorez ce message.\n"
    )
    page = _page([
        e(greeting),
        f"{e(school)} utilise Liaison, le cahier de liaison numérique, pour échanger avec vous : la vie de"
        f" la classe, les devoirs, les annonces de l'école et les messages avec les enseignants.",
        f'<a href="{e(link)}" style="font-weight: bold">Se connecter à Liaison</a>',
        f"Sur cette page, demandez un code de connexion ; il vous sera envoyé à cette adresse ({e(to)})."
        f" Aucun mot de passe à retenir.",
        f'Si le lien ne s\'ouvre pas, copiez cette adresse dans votre navigateur :<br>{e(link)}',
        "Si vous ne connaissez pas cette école, ignorez ce message.",
    ])
    return Email(to, f"{school} vous invite sur Liaison", text, page)


# -- SMTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpSettings:
    """`smtp://`, `smtp+starttls://` or `smtps://`, with optional `user:password@` and port."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("an SMTP URL is smtp://[user:password@]host[:port], smtp+starttls://... or smtps://...")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("an SMTP URL has no path, query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the SMTP URL's port is not a number from 1 to 65535") from None
    default_port, security = DEFAULT_PORTS[scheme]
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return SmtpSettings(parts.hostname, port or default_port, security, username, password)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SmtpMailer:
    """A `Mailer` through an SMTP server. `sender` is the From address (e.g. `LIAISON_SMTP_FROM`)."""

    def __init__(self, url: str, sender: str, *, timeout: float = 10.0, deadline: float = 30.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = parse_smtp_url(url)
        if "\n" in sender or "\r" in sender or "@" not in sender:
            raise ValueError("the sender must be one e-mail address")
        self.sender = sender
        self._timeout = timeout
        self._deadline = deadline
        self._context = ssl_context or ssl.create_default_context()

    def message(self, mail: Email) -> EmailMessage:
        """The MIME message for `mail`: text/plain with a text/html alternative."""
        if "\n" in mail.to or "\r" in mail.to or "@" not in mail.to:
            raise MailError("the recipient must be one e-mail address", transient=False)
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = _one_line(mail.subject)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2])
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no automatic replies, please
        for name, value in mail.headers:
            if any(c in name + value for c in "\r\n"):
                raise MailError(f"the header {name!r} must be one line", transient=False)
            message[name] = value
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        return message

    async def send(self, mail: Email) -> None:
        message = self.message(mail)
        try:
            async with asyncio.timeout(self._deadline):
                await asyncio.to_thread(self._send_now, message, mail.to)
        except TimeoutError:
            raise MailError(f"the SMTP server did not finish within {self._deadline} s", transient=True) from None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "tls":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=self._timeout, context=self._context)
        return smtplib.SMTP(s.host, s.port, timeout=self._timeout)

    def _send_now(self, message: EmailMessage, to: str) -> None:
        s = self.settings
        try:
            with self._connect() as client:
                encrypted = s.security == "tls"
                client.ehlo()
                offered = s.security == "starttls-if-offered" and client.has_extn("starttls")
                if s.security == "starttls" or offered:
                    client.starttls(context=self._context)  # SMTPNotSupportedError when not offered
                    client.ehlo()
                    encrypted = True
                if s.username is not None:
                    if not encrypted and not _loopback(s.host):
                        raise MailError("refusing to send the SMTP password over an unencrypted connection"
                                        " (use smtp+starttls:// or smtps://)", transient=False)
                    client.login(s.username, s.password or "")
                client.send_message(message, from_addr=self.sender, to_addrs=[to])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            transient = all(400 <= c < 500 for c in codes)
            raise MailError(f"the SMTP server refused the recipient ({codes})", transient=transient) from None
        except smtplib.SMTPResponseException as exc:
            transient = 400 <= exc.smtp_code < 500
            raise MailError(f"the SMTP server answered {exc.smtp_code}", transient=transient) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise MailError(f"the SMTP server lacks what is required: {exc}", transient=False) from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timed out, TLS failed...
            raise MailError(f"the SMTP server could not be reached or failed: {exc!r}", transient=True) from None


# -- the demo's outbox --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SentEmail:
    at: float
    mail: Email


class OutboxMailer:
    """A `Mailer` that keeps the last `limit` e-mails in memory instead of sending them (`--demo`:
    the demo's outbox page shows them)."""

    def __init__(self, limit: int = 50, *, clock: Callable[[], float] = time.time) -> None:
        self._sent: deque[SentEmail] = deque(maxlen=limit)
        self._clock = clock

    async def send(self, mail: Email) -> None:
        self._sent.append(SentEmail(self._clock(), mail))

    def sent(self) -> list[SentEmail]:
        """The e-mails kept, newest first."""
        return list(reversed(self._sent))
