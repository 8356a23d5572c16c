# ruff: noqa: RUF001 — French text uses typographic apostrophes
"""Scheduled posts and notification preferences in Chromium against the real demo server
(issue 12): during the school's quiet hours the teacher's composer offers "Envoyer à …" (the
end of the quiet time + 30 min); the post is scheduled, not shown, listed with "Annuler",
and cancelled. The "Notifications" page saves a person's choices."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.liaison_browser import ProtocolClient, Server, demo_token

pytestmark = pytest.mark.integration

ALWAYS_QUIET = {"start": "00:00", "end": "23:59", "weekends": False, "timezone": "Europe/Paris"}


def as_user(server: Server, user: str, method: str, path: str, body: object | None = None) -> Any:
    request = urllib.request.Request(
        f"{server.url}/api/v1{path}", method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {demo_token(server.url, user)}"})
    with urllib.request.urlopen(request, timeout=10) as res:
        return json.loads(res.read())


def test_a_teacher_schedules_a_post_for_the_morning_and_cancels_it(person: Callable[..., Page],
                                                                   server: Server) -> None:
    as_user(server, "d-bernard", "PUT", "/schools/ecole-jaures/quiet-hours", ALWAYS_QUIET)
    quiet = as_user(server, "t-martin", "GET", "/schools/ecole-jaures/quiet-hours")
    assert quiet["quiet_now"] is True
    page = person("t-martin")
    page.goto(server.url + "/#/class/cp-a")
    composer = page.locator("details.composer")
    offer = composer.get_by_role("button", name=re.compile(r"^Envoyer à \d\d:\d\d$"))
    expect(offer).to_be_visible()
    expect(composer.locator(".schedule-offer .hint")).to_contain_text("Heures calmes")
    composer.get_by_label("Texte").fill("Sortie au musée jeudi, prévoir un goûter")
    offer.click()
    expect(composer.locator(".form-actions .form-status")).to_contain_text("Programmé pour")
    listed = composer.locator("details.scheduled")
    expect(listed).to_be_visible()
    expect(listed.locator("summary")).to_contain_text("1 publication")
    listed.locator("summary").click()
    expect(listed.locator(".scheduled-post")).to_contain_text("Sortie au musée jeudi")
    expect(page.locator("article", has_text="Sortie au musée jeudi")).to_have_count(0)  # not published
    listed.get_by_role("button", name="Annuler").click()
    expect(listed.locator(".form-status")).to_contain_text("Publication annulée")
    expect(listed).to_be_hidden()


def test_the_notifications_page_saves_the_choices(person: Callable[..., Page], server: Server) -> None:
    page = person("p-lea-mere")
    page.get_by_role("link", name="Notifications").click()
    expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    posts = page.get_by_role("group", name="Messages de la classe")
    posts.locator("label", has_text="Résumé par e-mail").click()  # the segmented control's labels
    page.get_by_role("group", name="Conversations").locator("label", has_text="Jamais").click()
    page.get_by_label("Afficher le contenu sur l’écran verrouillé").check()
    page.get_by_role("button", name="Enregistrer").click()
    expect(page.locator(".prefs-form .form-status")).to_have_text("Préférences enregistrées.")
    saved = as_user(server, "p-lea-mere", "GET", "/me/notification-preferences")
    assert saved["kinds"]["post"] == "digest" and saved["kinds"]["chat"] == "off"
    assert saved["kinds"]["announcement"] == "immediately" and saved["show_content"] is True
    page.reload()
    posts = page.get_by_role("group", name="Messages de la classe")
    expect(posts.get_by_label("Résumé par e-mail")).to_be_checked()
    expect(page.locator("form.quiet-form")).to_have_count(0)  # a guardian does not set quiet hours


def test_a_chat_message_written_in_the_evening_can_wait_for_the_morning(person: Callable[..., Page],
                                                                         server: Server) -> None:
    as_user(server, "d-bernard", "PUT", "/schools/ecole-jaures/quiet-hours", ALWAYS_QUIET)
    teacher = ProtocolClient(server.url, "t-martin")
    try:
        channel = teacher.call("open_chat", student="s-lea")["channel"]
    finally:
        teacher.close()
    page = person("t-martin")
    page.goto(f"{server.url}/#/chat/{channel}")
    form = page.locator("form.chat-form")
    form.locator("textarea").fill("Pensez au carnet de correspondance")
    form.get_by_role("button", name=re.compile(r"^Envoyer à \d\d:\d\d$")).click()
    expect(form.locator(".form-status")).to_contain_text("Programmé pour")
    expect(page.locator(".chat-log")).not_to_contain_text("Pensez au carnet")  # not sent yet
    mother = ProtocolClient(server.url, "p-lea-mere")
    try:
        assert mother.call("history", channel=channel)["messages"] == []
    finally:
        mother.close()


def test_the_director_sets_the_quiet_hours_and_holidays(person: Callable[..., Page], server: Server) -> None:
    page = person("d-bernard")
    page.get_by_role("link", name="Notifications").click()
    form = page.locator("form.quiet-form")
    expect(form.get_by_role("heading", name="Heures calmes de l’école")).to_be_visible()
    expect(form.get_by_label("Début")).to_have_value("20:00")
    form.get_by_label("Fin").fill("07:30")
    form.get_by_label("Jours de vacances (un par ligne, AAAA-MM-JJ)").fill("2026-12-21\n2026-12-22")
    form.get_by_role("button", name="Enregistrer les heures calmes").click()
    expect(form.locator(".form-status")).to_have_text("Heures calmes enregistrées.")
    stored = as_user(server, "t-martin", "GET", "/schools/ecole-jaures/quiet-hours")
    assert (stored["start"], stored["end"], stored["weekends"]) == ("20:00", "07:30", True)
    assert stored["holidays"] == ["2026-12-21", "2026-12-22"]
    form.get_by_label("Jours de vacances (un par ligne, AAAA-MM-JJ)").fill("21/12/2026")
    form.get_by_role("button", name="Enregistrer les heures calmes").click()
    expect(form.locator(".form-status")).to_contain_text("une date par ligne, sous la forme AAAA-MM-JJ")
