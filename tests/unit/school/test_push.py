"""Web Push rules without I/O (school/push.py) and who is notified (school/recipients.py)."""

from __future__ import annotations

import pytest

from school.channels import parse_channel
from school.demo import demo_school
from school.directory import Directory
from school.messages import Author, Message
from school.push import address_problem, backoff, endpoint_problem, parse_retry_after, payload, title, topic
from school.recipients import is_urgent, place_name, recipients


@pytest.mark.parametrize("endpoint", [
    "http://10.0.0.1/push", "https://10.0.0.1/push", "https://127.0.0.1/push", "https://localhost/push",
    "https://push.localhost/x", "https://[::1]/x", "https://169.254.169.254/latest", "https://192.168.1.2/",
    "https://100.64.0.1/", "https://0.0.0.0/", "https://224.0.0.1/", "https://[::ffff:10.0.0.1]/",
    "https://[fe80::1]/", "https://user:pw@push.example/", "ftp://push.example/", "not a url", "https://",
    "http://fcm.googleapis.com/fcm/send/x",
])
def test_endpoints_into_private_networks_are_refused(endpoint: str) -> None:
    assert endpoint_problem(endpoint, frozenset()) is not None


@pytest.mark.parametrize("endpoint", ["https://fcm.googleapis.com/fcm/send/abc",
                                      "https://updates.push.services.mozilla.com/wpush/v2/x",
                                      "https://8.8.8.8/x"])
def test_public_https_endpoints_pass(endpoint: str) -> None:
    assert endpoint_problem(endpoint, frozenset()) is None


def test_allowed_hosts_may_be_local_and_plain_http() -> None:
    allowed = frozenset({"127.0.0.1"})
    assert endpoint_problem("http://127.0.0.1:9999/push/x", allowed) is None
    assert endpoint_problem("https://127.0.0.1/push/x", allowed) is None
    assert endpoint_problem("http://10.0.0.1/push/x", allowed) is not None


def test_addresses() -> None:
    assert address_problem("8.8.4.4") is None
    assert address_problem("2001:4860:4860::8888") is None
    for private in ("10.1.2.3", "172.16.0.1", "127.0.0.53", "::1", "fd00::1", "169.254.1.1", "not-an-ip"):
        assert address_problem(private) is not None, private


def test_topic_is_short_url_safe_and_per_channel() -> None:
    a, b = topic("class:cp-a"), topic("class:cm2-b")
    assert a != b and a == topic("class:cp-a")
    assert len(a) <= 32 and all(c.isalnum() or c in "-_" for c in a)


def test_backoff_honours_retry_after_and_grows() -> None:
    assert backoff(0, 7.0) == 7.0
    assert [backoff(n) for n in range(4)] == [5.0, 10.0, 20.0, 40.0]
    assert backoff(30) == 3600.0
    assert parse_retry_after("120", 0.0) == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10.0
    assert parse_retry_after("soon", 0.0) is None and parse_retry_after(None, 0.0) is None


def test_payload_shows_the_text_only_when_asked() -> None:
    assert title("Mme Martin", "CP A") == "Nouveau message de Mme Martin — CP A"
    assert title("Mme Martin", "CP A", 3) == "3 nouveaux messages en CP A"
    quiet = payload("class:cp-a", 4, "post", "Mme Martin", "CP A", urgent=False, text=None)
    assert {k: quiet[k] for k in ("channel", "seq", "kind", "urgent")} == {"channel": "class:cp-a", "seq": 4,
                                                                          "kind": "post", "urgent": False}
    assert "body" not in quiet
    shown = payload("class:cp-a", 4, "post", "Mme Martin", "CP A", urgent=False, text="x" * 500)
    assert len(shown["body"]) == 140 and shown["body"].endswith("…")


def message(channel: str, author: str, kind: str = "post", **data: object) -> Message:
    return Message(channel, 1, "m1", 0, Author(author, author, "teacher"), kind, dict(data))


def test_recipients_are_the_readers_but_the_author() -> None:
    d = Directory()
    d.put(*demo_school())
    cp_a = parse_channel("class:cp-a")
    staff = parse_channel("staff:ecole-jaures")
    assert cp_a is not None and staff is not None
    assert recipients(d, cp_a, "t-martin") == {"p-lea-mere", "p-lea-pere", "p-durand", "d-bernard"}
    assert recipients(d, staff, "t-martin") == {"t-nguyen", "d-bernard"}, "never a guardian in the staff room"
    user = parse_channel("user:p-adam")
    assert user is not None and recipients(d, user, "t-martin") == set()
    assert place_name(d, cp_a) == "CP A" and place_name(d, staff) == "Salle des maîtres"
    school = parse_channel("school:ecole-jaures")
    assert school is not None
    assert is_urgent(d, school, message("school:ecole-jaures", "d-bernard", "announcement", urgent=True))
    assert not is_urgent(d, school, message("school:ecole-jaures", "d-bernard", "announcement", urgent=False))
    assert not is_urgent(d, cp_a, message("class:cp-a", "t-martin", "post", urgent=True))
