"""--demo without LIAISON_SMTP_URL (issue 11): the e-mails go to an in-memory outbox that
GET /demo/outbox shows, and a demo parent signs in with the code found there. Outside --demo,
with no SMTP server configured, asking for a code still answers 202 and the log says why no
e-mail goes out."""

from __future__ import annotations

import re

from tests.integration.signin_helpers import acall, call
from tests.support.gateway_server import GatewayProcess
from tests.support.waiting import wait_for
from tests.support.ws_client import Client

CLAIRE = "claire.petit@example.fr"


async def test_the_demo_outbox_shows_the_code_and_it_signs_in(server: GatewayProcess) -> None:
    assert (await acall(server.http, "POST", "/api/v1/auth/code", {"email": CLAIRE})).status == 202
    outbox: list[dict[str, object]] = []

    def arrived() -> bool:  # the e-mail goes out in the background: look until it is there
        answer = call(server.http, "GET", "/demo/outbox")
        assert answer.status == 200
        outbox[:] = answer.body
        return bool(outbox)

    await wait_for(arrived, what="the code e-mail in the demo outbox")
    mail = outbox[0]
    assert mail["to"] == CLAIRE and "École Jean Jaurès" in str(mail["text"])
    code = re.search(r"\b([0-9]{6})\b", str(mail["subject"]))
    assert code is not None
    signed = await acall(server.http, "POST", "/api/v1/auth/verify",
                         {"email": CLAIRE, "code": code.group(1), "device": "démo"})
    assert signed.status == 200 and signed.body["user"]["id"] == "p-lea-mere"
    client = await Client.open(server.ws)
    assert (await client.ok("connect", token=signed.body["access_token"]))["user"]["id"] == "p-lea-mere"
    await client.close()


async def test_without_smtp_outside_demo_codes_answer_202_and_a_warning_is_logged(make_server) -> None:
    gateway = make_server(env={"LIAISON_JWT_SECRET": "x" * 40}, demo=False)
    assert (await acall(gateway.http, "POST", "/api/v1/auth/code", {"email": CLAIRE})).status == 202
    assert "email_not_configured" in gateway.logs()
    assert (await acall(gateway.http, "GET", "/demo/outbox")).status == 404
