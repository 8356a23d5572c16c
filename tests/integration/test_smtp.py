"""E-mail through a real SMTP server (aiosmtpd on a free port): notify/email.py."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from notify.email import (
    Email,
    MailError,
    OutboxMailer,
    SmtpMailer,
    code_email,
    invitation_email,
    parse_smtp_url,
    signin_link,
)
from tests.support.smtp_server import SmtpServer, code_from, own_address, self_signed, text_of
from tests.support.waiting import UNIT

pytestmark = pytest.mark.integration

SENDER = "liaison@ecole-jaures.example"
SCHOOL = "École Jean Jaurès"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    return self_signed(tmp_path_factory.mktemp("tls"))


# -- the messages ---------------------------------------------------------------------------------


async def test_the_code_email_arrives_in_french_text_and_html(smtp: SmtpServer) -> None:
    await SmtpMailer(smtp.url(), SENDER).send(code_email("lea@example.fr", SCHOOL, "042917"))
    received = await smtp.wait_for_message("lea@example.fr")
    message = received.message
    assert received.mail_from == SENDER and received.rcpt_tos == ("lea@example.fr",)
    assert message["Subject"] == "Votre code de connexion à Liaison : 042917"
    assert (message["From"], message["To"]) == (SENDER, "lea@example.fr")
    assert message["Message-ID"].endswith("@ecole-jaures.example>") and message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    assert code_from(message) == "042917"
    text = text_of(message)
    assert "10 minutes" in text and SCHOOL in text and "ignorez ce message" in text
    page = text_of(message, "html")
    assert "042917" in page and 'lang="fr"' in page and "10 minutes" in page


async def test_everything_in_the_html_is_escaped(smtp: SmtpServer) -> None:
    school = '<script>alert("x")</script> & Cie'
    mail = invitation_email("lea@example.fr", school, "https://liaison.example", name="<b>Léa</b>")
    await SmtpMailer(smtp.url(), SENDER).send(mail)
    page = text_of((await smtp.wait_for_message("lea@example.fr")).message, "html")
    assert "<script>" not in page and "<b>Léa" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Cie" in page
    assert "&lt;b&gt;Léa&lt;/b&gt;" in page


async def test_the_invitation_links_to_the_sign_in_page_with_the_address(smtp: SmtpServer) -> None:
    address = "lea+ecole@example.fr"
    mail = invitation_email(address, SCHOOL, "https://liaison.example/", name="Léa Moreau")
    assert mail.subject == f"{SCHOOL} vous invite sur Liaison"
    await SmtpMailer(smtp.url(), SENDER).send(mail)
    message = (await smtp.wait_for_message(address)).message
    link = "https://liaison.example/#signin?email=lea%2Becole%40example.fr"
    assert link in text_of(message) and "Bonjour Léa Moreau," in text_of(message)
    assert f'href="{link}"' in text_of(message, "html")


def test_signin_link_encodes_the_address() -> None:
    assert signin_link("http://127.0.0.1:8000", "a&b=c@x.fr") == "http://127.0.0.1:8000/#signin?email=a%26b%3Dc%40x.fr"


def test_a_school_name_cannot_add_headers(smtp: SmtpServer) -> None:
    mail = code_email("lea@example.fr", "École\r\nBcc: victim@example.fr", "123456")
    message = SmtpMailer(smtp.url(), SENDER).message(mail)
    assert message["Bcc"] is None and "\n" not in str(message["Subject"])
    with pytest.raises(MailError):
        SmtpMailer(smtp.url(), SENDER).message(Email("a@b.fr\nBcc: c@d.fr", "s", "t", "h"))


# -- SMTP security ---------------------------------------------------------------------------------


async def test_starttls_is_used_when_the_server_offers_it(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, client_ctx = tls
    with SmtpServer(starttls=server_ctx) as server:
        await SmtpMailer(server.url(), SENDER, ssl_context=client_ctx).send(
            code_email("lea@example.fr", SCHOOL, "111111"))
        assert (await server.wait_for_message("lea@example.fr")).encrypted


async def test_starttls_required_by_the_url_is_not_skipped(smtp: SmtpServer) -> None:
    with pytest.raises(MailError) as caught:
        await SmtpMailer(smtp.url("smtp+starttls"), SENDER).send(code_email("lea@example.fr", SCHOOL, "1"))
    assert caught.value.transient is False
    assert smtp.received == []


async def test_implicit_tls_with_smtps(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, client_ctx = tls
    with SmtpServer(implicit_tls=server_ctx) as server:
        await SmtpMailer(server.url("smtps"), SENDER, ssl_context=client_ctx).send(
            code_email("lea@example.fr", SCHOOL, "222222"))
        assert (await server.wait_for_message("lea@example.fr")).encrypted


async def test_an_untrusted_certificate_is_refused(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, _ = tls
    with SmtpServer(implicit_tls=server_ctx) as server:
        with pytest.raises(MailError):
            await SmtpMailer(server.url("smtps"), SENDER).send(code_email("lea@example.fr", SCHOOL, "1"))
        assert server.received == []


async def test_login_with_the_url_credentials(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, client_ctx = tls
    with SmtpServer(starttls=server_ctx, login=("liaison", "p@ss:word")) as server:
        mailer = SmtpMailer(server.url("smtp+starttls", "liaison:p%40ss%3Aword"), SENDER,
                            ssl_context=client_ctx)
        await mailer.send(code_email("lea@example.fr", SCHOOL, "333333"))
        received = await server.wait_for_message("lea@example.fr")
        assert received.authenticated and received.encrypted
        wrong = SmtpMailer(server.url("smtp+starttls", "liaison:nope"), SENDER,
                           ssl_context=client_ctx)
        with pytest.raises(MailError) as caught:
            await wrong.send(code_email("adam@example.fr", SCHOOL, "1"))
        assert caught.value.transient is False


# -- failures ---------------------------------------------------------------------------------------


async def test_a_refused_recipient_is_a_permanent_or_transient_failure() -> None:
    refuse = {"gone@example.fr": "550 No such user", "full@example.fr": "452 Mailbox full"}
    with SmtpServer(refuse=refuse) as server:
        mailer = SmtpMailer(server.url(), SENDER)
        with pytest.raises(MailError) as gone:
            await mailer.send(code_email("gone@example.fr", SCHOOL, "1"))
        with pytest.raises(MailError) as full:
            await mailer.send(code_email("full@example.fr", SCHOOL, "1"))
        assert (gone.value.transient, full.value.transient) == (False, True)
        assert server.received == []


async def test_a_server_that_is_not_there_is_a_transient_failure() -> None:
    with SmtpServer() as server:
        url = server.url()
    with pytest.raises(MailError) as caught:
        await SmtpMailer(url, SENDER, timeout=UNIT).send(code_email("lea@example.fr", SCHOOL, "1"))
    assert caught.value.transient is True


async def test_a_silent_server_times_out_without_blocking_the_event_loop() -> None:
    """A peer that accepts the connection and never greets: the send gives up after its
    timeout, and the event loop keeps running meanwhile."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    port = silent.getsockname()[1]
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    try:
        with pytest.raises(MailError) as caught:
            await SmtpMailer(f"smtp://127.0.0.1:{port}", SENDER, timeout=0.5).send(
                code_email("lea@example.fr", SCHOOL, "1"))
    finally:
        ticker.cancel()
        silent.close()
    elapsed = time.monotonic() - started
    assert caught.value.transient is True
    assert 0.4 < elapsed < UNIT
    assert ticks >= 10, "the event loop waited on the SMTP server"


async def test_the_whole_send_has_a_deadline() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        mailer = SmtpMailer(f"smtp://127.0.0.1:{silent.getsockname()[1]}", SENDER, timeout=UNIT, deadline=0.3)
        started = time.monotonic()
        with pytest.raises(MailError, match=r"within 0\.3 s") as caught:
            await mailer.send(code_email("lea@example.fr", SCHOOL, "1"))
        assert time.monotonic() - started < UNIT / 2 and caught.value.transient
    finally:
        silent.close()


# -- settings and the outbox -----------------------------------------------------------------------


@pytest.mark.parametrize(("url", "host", "port", "security", "user", "password"), [
    ("smtp://mail.example", "mail.example", 25, "starttls-if-offered", None, None),
    ("smtp://u:p@mail.example:587", "mail.example", 587, "starttls-if-offered", "u", "p"),
    ("smtp+starttls://mail.example", "mail.example", 587, "starttls", None, None),
    ("smtps://a%40b.fr:p%2Fw@mail.example", "mail.example", 465, "tls", "a@b.fr", "p/w"),
    ("SMTPS://mail.example:2465/", "mail.example", 2465, "tls", None, None),
])
def test_smtp_urls(url: str, host: str, port: int, security: str, user: str | None, password: str | None) -> None:
    settings = parse_smtp_url(url)
    assert (settings.host, settings.port, settings.security, settings.username, settings.password) == (
        host, port, security, user, password)
    assert "password=" not in repr(settings)


@pytest.mark.parametrize("url", ["http://mail.example", "smtp://", "mail.example:25", "smtp://h:99999",
                                 "smtp://h/path", "smtp://h?x=1"])
def test_bad_smtp_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_smtp_url(url)


async def test_the_password_is_never_sent_in_clear_to_another_host() -> None:
    address = own_address()
    if address is None:
        pytest.skip("this machine has no address but the loopback")
    with SmtpServer(host=address) as server:  # no STARTTLS offered
        mailer = SmtpMailer(server.url(userinfo="user:secret"), SENDER)
        with pytest.raises(MailError, match="unencrypted") as caught:
            await mailer.send(code_email("lea@example.fr", SCHOOL, "1"))
        assert caught.value.transient is False and server.received == []
        assert "secret" not in repr(mailer.settings)


async def test_on_the_loopback_a_local_relay_may_take_a_login_in_clear() -> None:
    with SmtpServer(login=("relay", "pw")) as server:
        await SmtpMailer(server.url(userinfo="relay:pw"), SENDER).send(code_email("lea@example.fr", SCHOOL, "1"))
        received = await server.wait_for_message("lea@example.fr")
        assert received.authenticated and not received.encrypted


async def test_the_outbox_keeps_the_last_emails_newest_first() -> None:
    now = iter(range(100))
    outbox = OutboxMailer(limit=3, clock=lambda: float(next(now)))
    for i in range(5):
        await outbox.send(code_email(f"p{i}@example.fr", SCHOOL, f"{i:06d}"))
    sent = outbox.sent()
    assert [s.mail.to for s in sent] == ["p4@example.fr", "p3@example.fr", "p2@example.fr"]
    assert [s.at for s in sent] == [4.0, 3.0, 2.0]
    assert sent[0].mail.subject.endswith("000004")


def test_self_signed_helper_gives_a_working_pair(tmp_path: Path) -> None:
    server, client = self_signed(tmp_path)
    assert client.verify_mode.name == "CERT_REQUIRED" and server is not client
