# ruff: noqa: RUF001, RUF002 — French text uses typographic apostrophes
"""Photos in Chromium against the real server (issue 13): the teacher picks a photo with the
file chooser (`set_input_files`), sees whose image consent is missing, ticks a child whose
guardians agreed and publishes; another family sees it as a thumbnail fetched with their
token (a blob: URL under the CSP) and opens it full screen; the child's guardian withdraws
consent in "Droit à l’image" and the photo is hidden live for the other family. Saves
docs/screenshots/upload-*.png."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from tests.browser.liaison_browser import API_KEY, DESKTOP, PHONE, REPO, Server, _serve, admin, sign_in, watch_csp

pytestmark = pytest.mark.integration

SCREENSHOTS = REPO / "docs" / "screenshots"
BLOB = re.compile(r"^blob:")


@pytest.fixture
def photo_server(tmp_path: Path) -> Iterator[Server]:
    """The demo school with the admin API: Hugo's guardian agreed to photos, Léa's father not yet."""
    with _serve(tmp_path / "server", ["--demo"], {"LIAISON_API_KEY": API_KEY}, None, 30.0) as server:
        admin(server, "PUT", "/admin/students/s-hugo/consents", {"guardian": "p-durand", "state": "granted"})
        admin(server, "PUT", "/admin/students/s-lea/consents", {"guardian": "p-lea-mere", "state": "granted"})
        yield server


@pytest.fixture
def open_as(browser: Browser, photo_server: Server) -> Iterator[Callable[..., Page]]:
    contexts: list[BrowserContext] = []
    violations: list[list[str]] = []

    def make(user: str, viewport: ViewportSize = DESKTOP) -> Page:
        context = browser.new_context(viewport=viewport, locale="fr-FR", timezone_id="Europe/Paris")
        context.set_default_timeout(15_000)
        contexts.append(context)
        violations.append(watch_csp(context))
        return sign_in(context, photo_server.url, user)

    yield make
    for context in contexts:
        context.close()
    found = [v for seen in violations for v in seen]
    assert not found, f"Content-Security-Policy violations: {found}"


def class_photo(path: Path) -> Path:
    """A 1200x800 'class photo': sky, grass and a sun, so the thumbnail shows something."""
    image = Image.new("RGB", (1200, 800), (135, 190, 235))
    image.paste((90, 170, 80), (0, 520, 1200, 800))
    image.paste((250, 210, 60), (900, 90, 1040, 230))
    image.paste((200, 60, 60), (300, 380, 420, 620))
    image.save(path, "JPEG", quality=90)
    return path


def test_a_teacher_posts_a_photo_and_a_family_sees_its_thumbnail(open_as, tmp_path: Path) -> None:
    teacher = open_as("t-martin")
    expect(teacher.get_by_role("heading", name="CP A", level=1)).to_be_visible()
    composer = teacher.locator("details.composer")
    composer.locator("textarea[name=text]").fill("La sortie au jardin des plantes")
    composer.locator("input[data-upload=files]").set_input_files(str(class_photo(tmp_path / "sortie.jpg")))
    item = composer.locator(".upload-item", has_text="sortie.jpg")
    expect(item).to_contain_text("Prêt")
    children = composer.locator(".upload-children")
    status = composer.locator(".form-status").first  # the composer's own (before any other part's)
    expect(children).to_contain_text("Quels enfants voit-on sur les photos ?")
    expect(children.locator(".child-check", has_text="Léa Petit")).to_contain_text("accord manquant")
    expect(children.locator(".child-check", has_text="Hugo Durand")).not_to_contain_text("accord manquant")
    # publishing without saying who appears is stopped in the page
    composer.get_by_role("button", name="Publier").click()
    expect(status).to_contain_text("Cochez les enfants visibles")
    # Léa ticked: the server refuses, the page says why
    children.get_by_label("Léa Petit").check()
    composer.get_by_role("button", name="Publier").click()
    expect(status).to_contain_text("il manque l’accord des parents pour Léa Petit")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    composer.screenshot(path=str(SCREENSHOTS / "upload-teacher-desktop.png"))
    children.get_by_label("Léa Petit").uncheck()
    children.get_by_label("Hugo Durand").check()
    composer.get_by_role("button", name="Publier").click()
    expect(status).to_have_text("Publié.")
    expect(teacher.locator("article.msg .photo-thumb img")).to_have_attribute("src", BLOB)

    # another family (Léa's mother, on a phone) sees the thumbnail, fetched with her token
    parent = open_as("p-lea-mere", PHONE)
    card = parent.locator("article.msg", has_text="La sortie au jardin des plantes")
    thumb = card.locator(".photo-thumb img")
    expect(thumb).to_have_attribute("src", BLOB)
    parent.wait_for_function("img => img.complete && img.naturalWidth === 320", arg=thumb.element_handle())
    parent.screenshot(path=str(SCREENSHOTS / "upload-parent-phone.png"))
    card.locator(".photo-thumb").click()
    viewer = parent.locator("dialog.viewer")
    expect(viewer).to_be_visible()
    parent.wait_for_function("img => img.complete && img.naturalWidth === 1200",
                             arg=viewer.locator("img").element_handle())
    viewer.get_by_role("button", name="Fermer").click()
    expect(viewer).to_have_count(0)

    # Hugo's guardian withdraws consent: the photo is hidden for Léa's mother, live
    guardian = open_as("p-durand", PHONE)
    guardian.get_by_role("link", name="Droit à l’image").click()
    hugo = guardian.locator("fieldset.consent-child", has_text="Hugo Durand")
    expect(hugo.get_by_label("J’accepte")).to_be_checked()
    hugo.get_by_label("Je refuse").check()
    expect(guardian.locator(".view-consents .form-status")).to_contain_text("Refus enregistré pour Hugo Durand")
    guardian.screenshot(path=str(SCREENSHOTS / "upload-consent-phone.png"))
    expect(card).to_contain_text("Photo masquée : un parent a retiré son accord.")
    expect(card.locator(".photo-thumb")).to_have_count(0)
    # the teacher (staff) still sees it, marked as hidden from the other families
    mine = teacher.locator("article.msg", has_text="La sortie au jardin des plantes")
    expect(mine).to_contain_text("Masquée pour les autres familles")
    expect(mine.locator(".photo-thumb img")).to_have_attribute("src", BLOB)
