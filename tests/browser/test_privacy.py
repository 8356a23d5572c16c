# ruff: noqa: RUF001, RUF002 — French text uses typographic apostrophes
"""Children's data (issue 15) in Chromium against the real server: a teacher has a parent's
chat open when the parent is erased through the admin API — her messages turn into "Message
supprimé à la demande de l’auteur" live, the teacher's own stay; the director's board shows
the school year (its end and when its classes are purged)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.liaison_browser import (
    API_KEY,
    DESKTOP,
    ProtocolClient,
    Server,
    _serve,
    admin,
    sign_in,
    watch_csp,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def keyed_server(tmp_path: Path) -> Iterator[Server]:
    with _serve(tmp_path / "server", ["--demo"], {"LIAISON_API_KEY": API_KEY}, None, 30.0) as server:
        yield server


def open_page(browser: Browser, server: Server, user: str) -> tuple[Page, list[str]]:
    context = browser.new_context(viewport=DESKTOP, locale="fr-FR", timezone_id="Europe/Paris")
    context.set_default_timeout(10_000)
    violations = watch_csp(context)
    return sign_in(context, server.url, user), violations


def test_an_erased_parent_s_messages_say_so_live_and_the_board_shows_the_year(
        browser: Browser, keyed_server: Server) -> None:
    mother = ProtocolClient(keyed_server.url, "p-lea-mere")
    try:
        channel = mother.call("open_chat", student="s-lea")["channel"]
        mother.publish(channel, "chat", text="Léa a perdu son gilet bleu")
    finally:
        mother.close()
    teacher, csp = open_page(browser, keyed_server, "t-martin")
    teacher.goto(f"{keyed_server.url}/#/chat/{quote(channel, safe='')}")
    box = teacher.get_by_role("textbox").last
    box.fill("Je regarde aux objets trouvés")
    teacher.get_by_role("button", name="Envoyer", exact=True).click()
    expect(teacher.locator(".bubble", has_text="gilet bleu")).to_be_visible()

    counts = admin(keyed_server, "POST", "/admin/people/p-lea-mere/erase", {"dry_run": False})
    assert counts["counts"]["messages"] == 1
    expect(teacher.locator(".bubble", has_text="Message supprimé à la demande de l’auteur")).to_be_visible()
    expect(teacher.locator(".bubble", has_text="gilet bleu")).to_have_count(0)
    expect(teacher.locator(".bubble", has_text="objets trouvés")).to_be_visible()

    director, csp2 = open_page(browser, keyed_server, "d-bernard")
    director.get_by_role("link", name="Tableau de bord").click()
    notice = director.locator("section.retention")
    expect(notice).to_contain_text("Année scolaire et conservation des données")
    expect(notice).to_contain_text("3 juillet")  # the 2026-2027 year of the demo ends Saturday 3 July 2027
    assert not csp and not csp2, f"Content-Security-Policy violations: {csp + csp2}"
    teacher.context.close()
    director.context.close()
