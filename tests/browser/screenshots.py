# ruff: noqa: RUF001, RUF002 — French text uses typographic apostrophes
"""Screenshots of the web client's main screens, at phone (375×812) and desktop
(1280×800) sizes, into docs/screenshots/.

    python tests/browser/screenshots.py [--out docs/screenshots]

Starts the real server in demo mode, fills the demo school with a few messages
through the protocol, then signs in as a parent, a teacher and the director.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from playwright.sync_api import BrowserContext, Page, ViewportSize, expect, sync_playwright

from tests.browser.liaison_browser import (
    DESKTOP,
    PHONE,
    REPO,
    ProtocolClient,
    demo_server,
    launch_args,
    sign_in,
)

# Keeps messages unread while the screenshots are taken: the client marks a message
# read only while the page is visible.
HIDDEN = "Object.defineProperty(Document.prototype, 'visibilityState', {get: () => 'hidden'});"


def seed(url: str) -> dict[str, str]:
    """A morning in the demo school. Returns the chat channel (if chats are supported)."""
    tz = ZoneInfo("Europe/Paris")  # the browsers below run in this zone too
    friday = dt.date.today() + dt.timedelta(days=(4 - dt.date.today().weekday()) % 7 or 7)
    starts = dt.datetime.combine(friday, dt.time(14, 0), tz)
    teacher, director = ProtocolClient(url, "t-martin"), ProtocolClient(url, "d-bernard")
    mother, durand = ProtocolClient(url, "p-lea-mere"), ProtocolClient(url, "p-durand")
    out: dict[str, str] = {}
    try:
        director.publish(
            "school:ecole-jaures",
            "announcement",
            title="Réunion parents-enseignants",
            text="La réunion de rentrée aura lieu mardi à 18 h dans la salle polyvalente.",
        )
        teacher.publish(
            "class:cp-a",
            "post",
            title="Sortie au musée",
            text="Jeudi, nous irons au musée des Beaux-Arts. Merci de prévoir un goûter "
            "et une tenue adaptée à la pluie.",
        )
        teacher.publish(
            "class:cp-a",
            "event",
            title="Fête de l’école",
            starts_at=starts.isoformat(),
            ends_at=(starts + dt.timedelta(hours=3)).isoformat(),
            place="Cour de l’école",
            text="Les familles sont les bienvenues ; chacun peut apporter un gâteau.",
        )
        teacher.publish(
            "class:cp-a",
            "homework",
            text="Lire les pages 12 et 13 du livre de lecture. La fiche est aussi sur https://exemple.fr/cp-a/lecture.",
            due=(dt.date.today() + dt.timedelta(days=1)).isoformat(),
            attachments=[{"name": "Fiche de lecture.pdf", "url": "https://exemple.fr/cp-a/fiche-lecture.pdf",
                          "type": "application/pdf", "size": 48_213}],
        )
        # Léa's mother has read the class's posts, her father not yet: the teacher sees
        # which household has not seen them
        mother.call("read", channel="class:cp-a", seq=3)
        director.publish(
            "school:ecole-jaures",
            "announcement",
            title="École fermée demain",
            text="En raison d’une coupure d’eau, l’école sera fermée demain. Merci de prendre vos dispositions.",
            urgent=True,
        )
        mother.call("read", channel="school:ecole-jaures", seq=2)
        try:
            teacher.call("receipts", channel="class:cp-a", seq=1)
            out["receipts"] = "yes"
        except RuntimeError as err:
            print(f"no receipts in the screenshots: {err}", file=sys.stderr)
        try:
            chat = teacher.call("open_chat", student="s-hugo")["channel"]
            teacher.publish(chat, "chat", text="Bonjour, Hugo a oublié son cahier de lecture en classe.")
            durand.publish(chat, "chat", text="Merci de nous prévenir ! Je passe le chercher à 16 h 30.")
            teacher.publish(chat, "chat", text="Parfait, il vous attendra à l’accueil.")
            out["chat"] = chat
            # Léa's mother's own conversation with the teacher (closed once answered, below)
            own = mother.call("open_chat", student="s-lea")["channel"]
            mother.publish(own, "chat", text="Bonjour, Léa sera absente lundi matin pour un rendez-vous médical.")
            teacher.publish(own, "chat", text="Bien noté, merci. Bon rendez-vous à Léa !")
            out["closed"] = own
        except RuntimeError as err:
            print(f"no chat in the screenshots: {err}", file=sys.stderr)
        try:
            teacher.publish("staff:ecole-jaures", "post", title="Photocopieuse",
                            text="La photocopieuse du 1er étage est réparée.")
            director.publish("staff:ecole-jaures", "announcement", title="Exercice d’évacuation",
                             text="Exercice d’évacuation incendie jeudi à 10 h. "
                             "Merci de relire les consignes avec vos élèves.",
                             urgent=True)
            out["staff"] = "yes"
        except RuntimeError as err:
            print(f"no staff room in the screenshots: {err}", file=sys.stderr)
    finally:
        for c in (teacher, director, mother, durand):
            c.close()
    return out


def shot(page: Page, out: Path, name: str) -> None:
    page.wait_for_load_state("networkidle")
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.mouse.move(0, 0)
    page.screenshot(path=str(out / f"{name}.png"))
    print(f"wrote {out / name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, demo_server(Path(tmp)) as server, sync_playwright() as pw:
        seeded = seed(server.url)
        browser = pw.chromium.launch(**launch_args())
        for size, viewport in (("phone", PHONE), ("desktop", DESKTOP)):

            def context(viewport: ViewportSize = viewport) -> BrowserContext:
                ctx = browser.new_context(
                    viewport=viewport, locale="fr-FR", timezone_id="Europe/Paris", device_scale_factor=1
                )
                ctx.add_init_script(HIDDEN)
                return ctx

            page = context().new_page()
            page.goto(server.url + "/")
            expect(page.locator('button[data-user="t-martin"]')).to_be_visible()
            shot(page, out, f"signin-{size}")

            parent = sign_in(context(), server.url, "p-durand")
            expect(parent.locator("article.msg", has_text="École fermée demain")).to_be_visible()
            shot(parent, out, f"parent-{size}")

            teacher = sign_in(context(), server.url, "t-martin")
            post = teacher.locator("article.msg", has_text="Lire les pages 12 et 13")
            expect(post).to_be_visible()
            if size == "desktop":
                teacher.locator("details.composer > summary").click()  # fold the composer
            if "receipts" in seeded:
                expect(post.locator(".receipts")).to_contain_text("familles")
                post.get_by_role("button", name="Qui ne l’a pas vu ?").click()
            if size == "desktop":
                teacher.evaluate("scrollTo(0, 0)")
            else:
                post.scroll_into_view_if_needed()
            shot(teacher, out, f"teacher-{size}")

            director = sign_in(context(), server.url, "d-bernard")
            urgent = director.locator("article.msg", has_text="École fermée demain")
            expect(urgent).to_be_visible()
            if "receipts" in seeded:
                expect(urgent.locator(".receipts-panel")).to_be_visible()
            if size == "desktop":
                director.locator("details.composer > summary").click()  # fold the composer
            urgent.scroll_into_view_if_needed()
            shot(director, out, f"director-{size}")

            if "chat" in seeded:
                teacher.get_by_role("link", name="Messages").click()
                teacher.get_by_role("link", name="Famille d’Hugo").click()
                expect(teacher.locator(".bubble", has_text="il vous attendra")).to_be_visible()
                shot(teacher, out, f"chat-{size}")
            if "closed" in seeded and size == "phone":
                mother = sign_in(context(), server.url, "p-lea-mere")
                mother.get_by_role("link", name="Messages").click()
                mother.get_by_role("link", name="Mme Martin — à propos de Léa").click()
                expect(mother.locator(".bubble", has_text="Bon rendez-vous")).to_be_visible()
                # closed while she looks at it (a closed chat is known from the `closed` push)
                closer = ProtocolClient(server.url, "t-martin")
                try:
                    closer.call("close_chat", channel=seeded["closed"])
                finally:
                    closer.close()
                expect(mother.locator(".closed-note")).to_be_visible()
                shot(mother, out, "chat-closed-phone")
            if "staff" in seeded and size == "desktop":
                director.get_by_role("link", name="Salle des maîtres").click()
                expect(director.locator("article.msg", has_text="Photocopieuse")).to_be_visible()
                director.locator("details.composer > summary").click()  # fold the composer
                shot(director, out, "staff-desktop")
            for ctx in browser.contexts:
                ctx.close()
        browser.close()


if __name__ == "__main__":
    main()
