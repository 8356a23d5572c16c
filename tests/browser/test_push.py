"""Push notifications in the browser (issue 12): the real server (demo), Debian's Chromium.

The service worker is given a push message through the DevTools protocol
(`ServiceWorker.deliverPushMessage`) with the JSON the server encrypts for a device; it shows
the notification ("Nouveau message de Mme Martin — CP A", tagged with the channel); a tap on it
(a `notificationclick` dispatched in the worker: Chromium's notifications cannot be clicked
from a test) brings the app to the channel's page. Pushes come at least once, so a repeated
push (same channel and seq) shows nothing new: not a second notification, not a second alert.
The offer "Recevoir les notifications" is a button, never a permission prompt on load.
(Subscribing for real needs the browser vendor's push service, which a test machine cannot
reach: the server side of subscriptions is tested against a local push service in
tests/integration/test_push.py.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.liaison_browser import Server

pytestmark = pytest.mark.integration

PUSH = {"channel": "class:cp-a", "seq": 1, "kind": "post", "title": "Nouveau message de Mme Martin — CP A",
        "author": "Mme Martin", "urgent": False, "count": 1}


def registration_id(page: Page, server: Server) -> tuple[Any, str]:
    cdp = page.context.new_cdp_session(page)
    found: list[str] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated",
           lambda ev: found.extend(r["registrationId"] for r in ev["registrations"]
                                   if not r["isDeleted"] and r["scopeURL"].startswith(server.url)))
    cdp.send("ServiceWorker.enable")
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    page.wait_for_timeout(0)  # let the CDP events in
    for _ in range(100):
        if found:
            break
        page.wait_for_timeout(50)
    assert found, "no service worker registration seen through the DevTools protocol"
    return cdp, found[0]


def shown_notifications(page: Page) -> list[dict[str, Any]]:
    """The notifications the service worker shows, once there is one (polled, with a deadline)."""
    for _ in range(200):
        shown: list[dict[str, Any]] = page.evaluate("""navigator.serviceWorker.ready
            .then((r) => r.getNotifications())
            .then((list) => list.map((n) => ({title: n.title, body: n.body, tag: n.tag, data: n.data})))""")
        if shown:
            return shown
        page.wait_for_timeout(50)
    raise AssertionError("no notification shown")


def test_a_pushed_message_is_shown_and_opens_its_channel(person, server: Server) -> None:
    parent = person("p-lea-mere")
    parent.context.grant_permissions(["notifications"], origin=server.url)
    expect(parent.get_by_role("button", name="Recevoir les notifications")).to_be_visible()
    assert parent.evaluate("Notification.permission") == "granted", "granted by the test, never asked on load"
    cdp, registration = registration_id(parent, server)
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": server.url, "registrationId": registration,
                                                  "data": json.dumps(PUSH)})
    [notification] = shown_notifications(parent)
    assert notification["title"] == "Nouveau message de Mme Martin — CP A"
    assert notification["tag"] == "class:cp-a" and notification["body"] == ""
    assert notification["data"]["url"] == f"{server.url}/#/open/class%3Acp-a"
    # away from the channel, then the tap
    parent.goto(server.url + "/#/notifications")
    expect(parent.locator("nav.tabs a[aria-current=page]")).to_have_text("Notifications")
    [worker] = parent.context.service_workers
    worker.evaluate("""async () => {
        const [n] = await self.registration.getNotifications();
        self.dispatchEvent(new NotificationEvent('notificationclick', { notification: n }));
    }""")
    parent.wait_for_url("**/#/child/s-lea")
    expect(parent.locator("nav.tabs a[aria-current=page]")).to_have_text("Léa")
    expect(parent.get_by_role("heading", level=1)).to_contain_text("Léa")


def test_an_opened_channel_link_leads_each_person_to_their_page(person, server: Server) -> None:
    teacher = person("t-martin")
    teacher.goto(server.url + "/#/open/class%3Acp-a")
    teacher.wait_for_url("**/#/class/cp-a")
    parent = person("p-durand")
    parent.goto(server.url + "/#/open/class%3Acm2-b")
    parent.wait_for_url("**/#/child/s-ines")


def notifications(page: Page, tag: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate("""(tag) => navigator.serviceWorker.ready
        .then((r) => r.getNotifications({tag}))
        .then((list) => list.map((n) => ({title: n.title, body: n.body, data: n.data,
                                          renotify: n.renotify, timestamp: n.timestamp})))""", tag)
    return found


def counting(page: Page) -> Any:
    """The service worker, counting the push events it is given (a listener of the test's)."""
    [worker] = page.context.service_workers
    worker.evaluate("""() => {
        self.testPushes = 0;
        self.addEventListener('push', () => { self.testPushes += 1; });
    }""")
    return worker


def handled(page: Page, worker: Any, n: int) -> None:
    """Wait until the worker was given its n-th push and has handled every push so far (its
    `pushes` chain: one at a time). The DevTools protocol may dispatch two deliveries in either
    order, so a test delivers one push and waits for it before the next."""
    for _ in range(200):
        if worker.evaluate("self.testPushes") >= n:
            worker.evaluate("() => (typeof pushes === 'undefined' ? null : pushes)")
            return
        page.wait_for_timeout(25)
    raise AssertionError(f"push {n} was not given to the service worker")


def deliver(cdp: Any, registration: str, server: Server, push: dict[str, Any]) -> None:
    cdp.send("ServiceWorker.deliverPushMessage", {"origin": server.url, "registrationId": registration,
                                                  "data": json.dumps(push)})


def test_a_repeated_push_shows_nothing_new_and_a_newer_one_replaces_it(person, server: Server) -> None:
    """Pushes are delivered at least once (a worker killed just after the push service accepted
    a push sends it again): the device shows each message once."""
    parent = person("p-lea-mere")
    parent.context.grant_permissions(["notifications"], origin=server.url)
    cdp, registration = registration_id(parent, server)
    worker = counting(parent)
    deliver(cdp, registration, server, PUSH)
    handled(parent, worker, 1)
    [first] = notifications(parent, "class:cp-a")
    assert first["data"]["seq"] == 1 and first["renotify"] is True

    # the same push again, while its notification is still shown: one notification, not
    # re-alerted (shown again silently, with its own time)
    deliver(cdp, registration, server, PUSH)
    handled(parent, worker, 2)
    [again] = notifications(parent, "class:cp-a")
    assert again["data"] == first["data"] and again["title"] == first["title"]
    assert again["renotify"] is False and again["timestamp"] == first["timestamp"]

    # a newer message of the channel replaces it, and alerts
    newer = {**PUSH, "seq": 2, "body": "Sortie au musée jeudi"}
    deliver(cdp, registration, server, newer)
    handled(parent, worker, 3)
    [updated] = notifications(parent, "class:cp-a")
    assert updated["data"]["seq"] == 2 and updated["body"] == "Sortie au musée jeudi"
    assert updated["renotify"] is True

    # a late repeat of the older push does not bring the older one back
    deliver(cdp, registration, server, PUSH)
    handled(parent, worker, 4)
    [kept] = notifications(parent, "class:cp-a")
    assert kept["data"]["seq"] == 2 and kept["body"] == "Sortie au musée jeudi" and kept["renotify"] is False

    # dismissed, then repeated: nothing is shown again
    parent.evaluate("""navigator.serviceWorker.ready
        .then((r) => r.getNotifications({tag: 'class:cp-a'}))
        .then((list) => list.forEach((n) => n.close()))""")
    for _ in range(200):  # closing is asynchronous
        if not notifications(parent, "class:cp-a"):
            break
        parent.wait_for_timeout(25)
    assert notifications(parent, "class:cp-a") == []
    deliver(cdp, registration, server, newer)
    handled(parent, worker, 5)
    assert notifications(parent, "class:cp-a") == []

    # and the next message of the channel is shown
    deliver(cdp, registration, server, {**PUSH, "seq": 3})
    handled(parent, worker, 6)
    [third] = notifications(parent, "class:cp-a")
    assert third["data"]["seq"] == 3 and third["renotify"] is True
