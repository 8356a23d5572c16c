"""Push notifications in the browser (issue 12): the real server (demo), Debian's Chromium.

The service worker is given a push message through the DevTools protocol
(`ServiceWorker.deliverPushMessage`) with the JSON the server encrypts for a device; it shows
the notification ("Nouveau message de Mme Martin — CP A", tagged with the channel); a tap on it
(a `notificationclick` dispatched in the worker: Chromium's notifications cannot be clicked
from a test) brings the app to the channel's page. The offer "Recevoir les notifications" is a
button, never a permission prompt on load. (Subscribing for real needs the browser vendor's
push service, which a test machine cannot reach: the server side of subscriptions is tested
against a local push service in tests/integration/test_push.py.)
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
