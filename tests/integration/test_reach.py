"""The school's reach per class (issue 17, protocol v1.1 "Board"): families, families never
signed in, families not notifiable — right after scripted sign-ins on the demo school."""

from __future__ import annotations

from typing import Any

from tests.integration.signin_helpers import call, demo_sign_in
from tests.support.gateway_server import GatewayProcess

API_KEY = "k" * 32
REACH = "/api/v1/admin/schools/ecole-jaures/reach"


def reach(gateway: GatewayProcess) -> dict[str, dict[str, Any]]:
    answer = call(gateway.http, "GET", REACH, bearer=API_KEY)
    assert answer.status == 200, answer.body
    return {row["class"]: row for row in answer.body["classes"]}


async def test_reach_follows_sign_ins_and_addresses(make_server) -> None:
    gateway = make_server(env={"LIAISON_API_KEY": API_KEY})
    before = reach(gateway)
    contract = ("class", "name", "families", "families_never_signed_in", "families_not_notifiable")
    assert {k: before["cp-a"][k] for k in contract} == {"class": "cp-a", "name": "CP A", "families": 2,
                                                       "families_never_signed_in": 2, "families_not_notifiable": 0}
    assert before["cm2-b"]["families"] == 2 and before["cm2-b"]["families_never_signed_in"] == 2
    await demo_sign_in(gateway.http, "julien.petit@example.fr")  # one guardian of Léa's two households
    after = reach(gateway)
    assert after["cp-a"]["families_never_signed_in"] == 1  # Léa's family counts as reached
    assert after["cm2-b"]["families_never_signed_in"] == 2
    # a family with no address and no sign-in cannot be notified
    hugo = call(gateway.http, "PUT", "/api/v1/admin/people/p-durand", bearer=API_KEY,
                body={"school_id": "ecole-jaures", "name": "Sophie Durand", "role": "guardian"})
    assert hugo.status == 200, hugo.body
    assert reach(gateway)["cp-a"]["families_not_notifiable"] == 1
    assert call(gateway.http, "GET", REACH, bearer="wrong").status == 401
    assert call(gateway.http, "GET", "/api/v1/admin/schools/nowhere/reach", bearer=API_KEY).status == 404
