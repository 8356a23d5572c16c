"""HTTP helpers of the sign-in tests: JSON requests to a real gateway (in a worker thread, so the
event loop keeps reading WebSockets), with the answer's status, headers, body and cookies."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from http.cookies import SimpleCookie
from typing import Any

from tests.support.smtp_server import SmtpServer, code_from
from tests.support.waiting import UNIT, wait_for

COOKIE = "liaison_refresh"


@dataclass
class Answer:
    status: int
    headers: Message
    body: Any
    cookies: dict[str, str] = field(default_factory=dict)
    cookie_attributes: str = ""  # the refresh cookie's Set-Cookie header, as sent

    @property
    def refresh_cookie(self) -> str | None:
        return self.cookies.get(COOKIE)


def call(base: str, method: str, path: str, body: Any = None, *, bearer: str | None = None,
         cookie: str | None = None) -> Answer:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if bearer is not None:
        request.add_header("Authorization", f"Bearer {bearer}")
    if cookie is not None:
        request.add_header("Cookie", f"{COOKIE}={cookie}")
    try:
        with urllib.request.urlopen(request, timeout=UNIT) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        status, headers, raw = exc.code, exc.headers, exc.read()
    answer = Answer(status, headers, json.loads(raw) if raw else None)
    for header in headers.get_all("set-cookie") or []:
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for name, morsel in jar.items():
            answer.cookies[name] = morsel.value
            if name == COOKIE:
                answer.cookie_attributes = header
    return answer


async def acall(base: str, method: str, path: str, body: Any = None, *, bearer: str | None = None,
                cookie: str | None = None) -> Answer:
    return await asyncio.to_thread(call, base, method, path, body, bearer=bearer, cookie=cookie)


async def nth_code(smtp: SmtpServer, to: str, n: int) -> str:
    """The code of the `n`-th e-mail (1-based) received for `to`, once it has come."""

    def mails() -> list[Any]:
        return [r for r in smtp.received if to in r.rcpt_tos]

    await wait_for(lambda: len(mails()) >= n, UNIT, f"e-mail {n} to {to}")
    return code_from(mails()[n - 1].message)


async def demo_sign_in(base: str, email: str, device: str = "Téléphone") -> str:
    """Sign `email` in on a `--demo` gateway with the code its demo outbox shows: the access token."""
    assert (await acall(base, "POST", "/api/v1/auth/code", {"email": email})).status == 202
    codes: list[str] = []

    def arrived() -> bool:
        for mail in call(base, "GET", "/demo/outbox").body:
            match = re.search(r"\b([0-9]{6})\b", str(mail["subject"]))
            if mail["to"] == email and match:
                codes.append(match.group(1))
        return bool(codes)

    await wait_for(arrived, what=f"the sign-in code to {email} in the demo outbox")
    signed = await acall(base, "POST", "/api/v1/auth/verify",
                         {"email": email, "code": codes[-1], "device": device})
    assert signed.status == 200, signed.body
    return str(signed.body["access_token"])
