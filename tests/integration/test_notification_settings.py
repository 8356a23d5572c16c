"""Quiet hours and notification preferences over HTTP on a real server (issue 12): the v1.1
contract shapes (`PUT/GET /api/v1/admin/schools/{id}/quiet-hours`, preferences defaulting to
"immediately"), the director's route, refusals that say what to send, the audit entry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.test_http_api import KEY, Api
from tests.support.gateway_server import GatewayProcess

SCHOOL = "ecole-jaures"
DEFAULT = {"start": "20:00", "end": "07:00", "weekends": True, "timezone": "Europe/Paris", "holidays": []}
KINDS = ("announcement", "post", "event", "homework", "chat")


@pytest.fixture
def api(make_server: Callable[..., GatewayProcess]) -> Api:
    return Api(make_server({"LIAISON_API_KEY": KEY}).http)


def test_quiet_hours_through_the_admin_api(api: Api) -> None:
    path = f"/api/v1/admin/schools/{SCHOOL}/quiet-hours"
    got = api.call("GET", path)
    assert got.status == 200 and got.body == DEFAULT
    body = {"start": "19:30", "end": "07:15", "weekends": True, "timezone": "Europe/Paris",
            "holidays": ["2026-12-25", "2026-12-21"]}
    put = api.call("PUT", path, body)
    assert put.status == 200
    assert put.body == {**body, "holidays": ["2026-12-21", "2026-12-25"]}
    assert api.call("GET", path).body == put.body

    for wrong, says in [({"start": "7h", "end": "07:00"}, "start must be a time"),
                        ({"start": "20:00", "end": "07:00", "timezone": "Europe/Lutece"}, "unknown time zone"),
                        ({"start": "20:00", "end": "07:00", "holidays": ["25/12/2026"]}, "holidays[0]"),
                        ({"start": "20:00", "end": "07:00", "weekend": False}, "unknown field")]:
        refused = api.call("PUT", path, wrong)
        assert refused.status == 400 and says in refused.body["error"]["message"], refused.body
    assert api.call("GET", path).body == put.body  # a refusal changes nothing
    assert api.call("GET", "/api/v1/admin/schools/nowhere/quiet-hours").status == 404
    assert api.call("GET", path, key="x" * 32).status == 401
    assert api.call("GET", path, user="d-bernard").status == 401  # a user token is not the API key

    audit = api.call("GET", f"/api/v1/admin/schools/{SCHOOL}/audit")
    print(f"\naudit log answered {audit.status}")
    if audit.status == 200:  # the audit log of issue 15
        entries = [e for e in audit.body["entries"] if e["action"] == "quiet_hours.set"]
        assert entries and entries[0]["actor"] == "api-key" and entries[0]["target"] == SCHOOL


def test_the_director_changes_them_in_the_app(api: Api) -> None:
    path = f"/api/v1/schools/{SCHOOL}/quiet-hours"
    seen = api.call("GET", path, user="p-lea-mere")
    assert seen.status == 200 and {k: seen.body[k] for k in DEFAULT} == DEFAULT
    assert isinstance(seen.body["quiet_now"], bool)
    if seen.body["quiet_now"]:
        assert seen.body["suggested_at"] == seen.body["release_at"] + 30 * 60 * 1000
    else:
        assert seen.body["release_at"] is None and seen.body["suggested_at"] is None
    change = {"start": "21:00", "end": "06:30", "weekends": False, "timezone": "Europe/Paris"}
    assert api.call("PUT", path, change, user="t-martin").status == 403
    assert api.call("PUT", path, change, user="p-lea-mere").status == 403
    done = api.call("PUT", path, change, user="d-bernard")
    assert done.status == 200 and done.body == {**change, "holidays": []}
    assert api.call("GET", f"/api/v1/admin/schools/{SCHOOL}/quiet-hours").body == done.body
    never_quiet = {"start": "08:00", "end": "08:00", "weekends": False}
    assert api.call("PUT", path, never_quiet, user="d-bernard").status == 200
    now = api.call("GET", path, user="t-martin").body
    assert now["quiet_now"] is False and now["release_at"] is None


def test_notification_preferences(api: Api) -> None:
    path = "/api/v1/me/notification-preferences"
    got = api.call("GET", path, user="p-durand")
    assert got.status == 200
    assert got.body == {"kinds": dict.fromkeys(KINDS, "immediately"), "show_content": False, "digest_email": True}
    change = {"kinds": {"post": "digest", "chat": "off"}, "show_content": True}
    put = api.call("PUT", path, change, user="p-durand")
    assert put.status == 200
    assert put.body["kinds"] == {**dict.fromkeys(KINDS, "immediately"), "post": "digest", "chat": "off"}
    assert put.body["show_content"] is True
    later = api.call("PUT", path, {"kinds": {"chat": "immediately"}}, user="p-durand")
    assert later.body["kinds"]["post"] == "digest" and later.body["kinds"]["chat"] == "immediately"
    assert api.call("GET", path, user="p-durand").body == later.body
    assert api.call("GET", path, user="p-adam").body == got.body  # someone else's are untouched
    for wrong, says in [({"kinds": {"post": "never"}}, "kinds.post must be one of"),
                        ({"kinds": {"sms": "off"}}, "unknown kind"), ({"show_content": "yes"}, "true or false")]:
        refused = api.call("PUT", path, wrong, user="p-durand")
        assert refused.status == 400 and says in refused.body["error"]["message"]
    assert api.call("GET", path, auth="").status == 401


def test_a_change_on_one_gateway_is_read_at_once_on_another(tmp_path: Path,
                                                          make_server: Callable[..., GatewayProcess]) -> None:
    env = {"LIAISON_API_KEY": KEY, "LIAISON_STORE_URL": f"sqlite:///{tmp_path / 'shared.db'}"}
    one, two = Api(make_server(env).http), Api(make_server(env).http)
    path = f"/api/v1/admin/schools/{SCHOOL}/quiet-hours"
    assert two.call("GET", path).body == DEFAULT  # read (and kept) by the second gateway
    changed = {"start": "21:00", "end": "06:00", "weekends": False, "timezone": "Europe/Paris", "holidays": []}
    assert one.call("PUT", path, changed).status == 200
    assert two.call("GET", path).body == changed
    assert two.call("GET", f"/api/v1/schools/{SCHOOL}/quiet-hours", user="t-martin").body["start"] == "21:00"
    prefs = "/api/v1/me/notification-preferences"
    assert two.call("GET", prefs, user="p-adam").body["kinds"]["post"] == "immediately"
    one.call("PUT", prefs, {"kinds": {"post": "off"}}, user="p-adam")
    assert two.call("GET", prefs, user="p-adam").body["kinds"]["post"] == "off"
