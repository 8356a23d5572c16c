# ruff: noqa: RUF001, RUF003 — French text uses typographic apostrophes
"""Issue 14 in the browser: what families tripped on (reading, receipts per family, the
conversation list, chats that close, "À venir" on a phone, switching user, the offline
page, French typography, the staff room)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from playwright.sync_api import WebSocket, expect

from tests.browser.liaison_browser import DESKTOP, ProtocolClient

pytestmark = pytest.mark.integration

NARROW = {"width": 390, "height": 844}


@contextmanager
def client(server: Any, user: str) -> Iterator[ProtocolClient]:
    c = ProtocolClient(server.url, user)
    try:
        yield c
    finally:
        c.close()


def sent_reads(frames: list[dict[str, Any]], channel: str) -> list[int]:
    return [f["seq"] for f in frames if f.get("op") == "read" and f.get("channel") == channel]


def listen_to_commands(frames: list[dict[str, Any]]):
    """A `before` hook for `person`: every command the page sends on its WebSocket."""

    def on_socket(ws: WebSocket) -> None:
        ws.on("framesent",
              lambda payload: frames.append(json.loads(payload)) if isinstance(payload, str) else None)

    return lambda page: page.on("websocket", on_socket)


def test_a_post_half_out_of_view_is_read_only_once_scrolled_to(person, server) -> None:
    long_text = " ".join(["Merci de bien relire la liste du matériel pour la sortie."] * 14)
    with client(server, "t-martin") as teacher:
        target = teacher.publish("class:cp-a", "post", title="La liste du matériel", text=long_text)["seq"]
        for i in range(1, 7):
            teacher.publish("class:cp-a", "post", title=f"Nouvelle de la classe n° {i}",
                            text="Une journée bien remplie : lecture, calcul et sport.")

    frames: list[dict[str, Any]] = []
    mother = person("p-lea-mere", before=listen_to_commands(frames))
    card = mother.locator("article.msg", has_text="La liste du matériel")
    above = mother.locator("article.msg", has_text="Nouvelle de la classe n° 1")
    expect(card).to_have_count(1)
    # scroll until a third of the post shows at the bottom of the screen
    mother.evaluate("""(el) => {
        const r = el.getBoundingClientRect();
        scrollBy(0, r.top - (innerHeight - r.height * 0.3));
    }""", card.element_handle())
    ratio = card.evaluate(
        "el => (innerHeight - el.getBoundingClientRect().top) / el.getBoundingClientRect().height")
    assert 0.1 < ratio < 0.45
    # the post just above it, wholly on screen, is read after a second: not this one
    expect(above.locator(".badge-new")).to_have_count(0)
    expect(card.locator(".badge-new")).to_have_text("Nouveau")
    expect(card).to_have_class(re.compile(r"\bunread\b"))
    # and the read position does not pass it (the feed is newest first: `read` marks
    # everything below the seq it names)
    assert not [s for s in sent_reads(frames, "class:cp-a") if s >= target]

    teacher_page = person("t-martin")
    teacher_card = teacher_page.locator("article.msg", has_text="La liste du matériel")
    expect(teacher_card.locator(".receipts")).to_contain_text("Vu par 0/2 familles")

    card.scroll_into_view_if_needed()
    expect(card.locator(".badge-new")).to_have_count(0)
    assert [s for s in sent_reads(frames, "class:cp-a") if s >= target]

    # the teacher counts families (Léa's and Hugo's), not parents: Léa's father's
    # household has not seen it yet
    expect(teacher_card.locator(".receipts")).to_contain_text("Vu par 1/2 familles")
    teacher_card.get_by_role("button", name="Qui ne l’a pas vu ?").click()
    panel = teacher_card.locator(".receipts-panel")
    expect(panel).to_contain_text("Famille d’Hugo : Sophie Durand")
    expect(panel).to_contain_text("Famille de Léa : vu par Claire Petit, pas encore par Julien Petit")

    # an edited post is new again for those who had read it, until they see it again
    mother.evaluate("scrollTo(0, 0)")
    with client(server, "t-martin") as teacher:
        teacher.call("edit", channel="class:cp-a", seq=target,
                     data={"title": "La liste du matériel (corrigée)", "text": long_text})
    expect(card).to_contain_text("(corrigée)")
    expect(card.locator(".badge-new")).to_have_text("Nouveau")
    card.scroll_into_view_if_needed()
    expect(card.locator(".badge-new")).to_have_count(0)


def test_opening_the_app_does_not_read_what_is_below_the_screen(person, server) -> None:
    with client(server, "t-martin") as teacher:
        for i in range(1, 13):
            teacher.publish("class:cp-a", "post", title=f"Message n° {i:02d}", text="Des nouvelles de la classe.")
    parent = person("p-durand")
    newest = parent.locator("article.msg", has_text="Message n° 12")
    oldest = parent.locator("article.msg", has_text="Message n° 01")
    expect(newest.locator(".badge-new")).to_have_count(0)  # on screen for a second: read
    expect(oldest.locator(".badge-new")).to_have_text("Nouveau")  # never on screen: not read
    expect(parent.get_by_role("link", name="Hugo")).to_contain_text("non lus")


def chat_with_no_unread(server: Any) -> str:
    """A chat between Mme Martin and Hugo's family where both have read everything."""
    with client(server, "t-martin") as teacher, client(server, "p-durand") as parent:
        channel = str(teacher.call("open_chat", student="s-hugo")["channel"])
        teacher.publish(channel, "chat", text="Bonjour, la réunion est confirmée pour jeudi.")
        # a long last message: its preview took the title's column and squeezed it
        seq = parent.publish(channel, "chat", text="Merci beaucoup de nous avoir prévenus, je serai bien là "
                             "jeudi soir pour la réunion, avec le papa d’Hugo si son travail le permet.")["seq"]
        parent.call("read", channel=channel, seq=seq)
        teacher.call("read", channel=channel, seq=seq)
    return channel


@pytest.mark.parametrize(("user", "viewport", "title"), [
    ("p-durand", NARROW, "Mme Martin — à propos d’Hugo"),
    ("t-martin", DESKTOP, "Famille d’Hugo"),
])
def test_conversation_list_keeps_its_titles_readable(person, server, user, viewport, title) -> None:
    chat_with_no_unread(server)
    page = person(user, viewport=viewport)
    page.get_by_role("link", name="Messages").click()
    item = page.locator(".chat-item", has_text=title)
    expect(item).to_be_visible()
    expect(item.locator(".badge-count")).to_have_count(0)  # no unread message: the case that broke
    # the title keeps its line: wider than tall (it was squeezed to one letter per line)
    page.wait_for_function("""(title) => [...document.querySelectorAll('.chat-item-title')].some((el) => {
        const r = el.getBoundingClientRect();
        return el.textContent === title && r.width > r.height && r.width > 120;
    })""", arg=title)


def test_upcoming_homework_and_events_on_a_phone(person, server) -> None:
    today = dt.date.today()
    first = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)  # the 1st of next month
    with client(server, "t-martin") as teacher:
        teacher.publish("class:cp-a", "homework", text="Apprendre la poésie, voir https://exemple.fr/poesie.",
                        due=first.isoformat(),
                        attachments=[{"name": "poesie.pdf", "url": "https://exemple.fr/poesie.pdf",
                                      "type": "application/pdf", "size": 1234}])
    parent = person("p-lea-mere", viewport=NARROW)
    upcoming = parent.locator("details.upcoming-phone")
    expect(upcoming).to_be_visible()
    upcoming.locator("summary").click()
    expect(upcoming).to_contain_text("Apprendre la poésie")
    expect(upcoming).to_contain_text("1er")  # "lundi 1er décembre", not "1 décembre"
    # the homework's attachment and the address in its text are safe links
    card = parent.locator("article.msg.kind-homework")
    for link in (card.get_by_role("link", name="poesie.pdf"), card.get_by_role("link", name="https://exemple.fr/poesie")):
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        expect(link).to_have_attribute("target", "_blank")
    expect(card.get_by_role("link", name="https://exemple.fr/poesie")).to_have_attribute(
        "href", "https://exemple.fr/poesie")
    weekday = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"][first.weekday()]
    expect(card).to_contain_text(f"Devoirs pour le {weekday} 1er")


def test_switching_user_asks_first(person) -> None:
    parent = person("p-durand", viewport=NARROW)
    switch = parent.get_by_role("button", name="Changer d’utilisateur")
    expect(switch).to_be_visible()
    expect(switch).to_contain_text("Changer d’utilisateur")  # a label people can read, not ⇄ alone
    switch.click()
    dialog = parent.get_by_role("dialog", name="Changer d’utilisateur ?")
    expect(dialog).to_contain_text("Sophie Durand")
    dialog.get_by_role("button", name="Non, rester connecté·e").click()
    expect(dialog).to_have_count(0)
    expect(parent.get_by_role("heading", name="Le fil d’Hugo")).to_be_visible()
    switch.click()
    parent.get_by_role("dialog").get_by_role("button", name="Oui, changer d’utilisateur").click()
    expect(parent.locator('button[data-user="t-martin"]')).to_be_visible()


def test_teacher_closes_and_reopens_a_chat_and_moderates_it(person, server) -> None:
    with client(server, "t-martin") as teacher:
        channel = str(teacher.call("open_chat", student="s-hugo")["channel"])
        teacher.publish(channel, "chat", text="Bonjour, pouvez-vous signer le carnet ?")
    teacher = person("t-martin")
    parent = person("p-durand", viewport=NARROW)
    parent.get_by_role("link", name="Messages").click()
    parent.get_by_role("link", name="Mme Martin — à propos d’Hugo").click()
    box = parent.get_by_label("Votre message")
    box.fill("C’est fait, bonne journée.")
    box.press("Enter")
    mine = parent.locator(".bubble.mine", has_text="C’est fait")
    expect(mine).to_be_visible()

    teacher.get_by_role("link", name="Messages").click()
    teacher.get_by_role("link", name="Famille d’Hugo").click()
    theirs = teacher.locator(".bubble", has_text="C’est fait")
    expect(theirs).to_be_visible()
    # the teacher has read it: the parent sees "Lu" on their message
    expect(mine.locator(".read-mark")).to_have_text("✔ Lu")

    # the teacher closes the chat: the parent cannot write any more, and is told why
    teacher.get_by_role("button", name="Fermer la conversation").click()
    teacher.get_by_role("button", name="Oui, fermer").click()
    expect(teacher.locator(".closed-note")).to_contain_text("Conversation fermée")
    expect(parent.locator(".closed-note")).to_contain_text("L’école a fermé cette conversation")
    expect(box).to_be_disabled()
    expect(parent.get_by_role("button", name="Envoyer", exact=True)).to_be_disabled()
    expect(parent.locator(".bubble", has_text="signer le carnet")).to_be_visible()  # still readable
    # the list says so too
    parent.get_by_role("link", name="Conversations").click()
    expect(parent.locator(".chat-item", has_text="Mme Martin")).to_contain_text("Conversation fermée")
    parent.go_back()

    # the teacher may remove a parent's message (not change it)
    expect(theirs.get_by_role("button", name="Modifier")).to_have_count(0)
    theirs.get_by_role("button", name="Supprimer").click()
    teacher.get_by_role("button", name="Oui, supprimer").click()
    expect(parent.locator(".bubble", has_text="Message supprimé")).to_be_visible()

    # and reopen the chat
    teacher.get_by_role("button", name="Rouvrir la conversation").click()
    expect(parent.get_by_label("Votre message")).to_be_enabled()
    expect(parent.locator(".closed-note")).to_be_hidden()
    parent.get_by_label("Votre message").fill("Merci !")
    parent.get_by_label("Votre message").press("Enter")
    expect(teacher.locator(".bubble", has_text="Merci !")).to_be_visible()


def test_each_household_writes_to_the_teacher_on_its_own(person) -> None:
    mother = person("p-lea-mere")
    father = person("p-lea-pere")
    teacher = person("t-martin")
    mother.get_by_role("button", name="Écrire à l’enseignant·e").click()
    expect(mother.get_by_role("heading", name="Mme Martin — à propos de Léa")).to_be_visible()
    mother.get_by_label("Votre message").fill("Léa sera absente lundi.")
    mother.get_by_label("Votre message").press("Enter")

    teacher.get_by_role("link", name="Messages").click()
    teacher.get_by_role("link", name="Claire Petit — à propos de Léa").click()
    expect(teacher.locator(".bubble", has_text="absente lundi")).to_be_visible()

    # a teacher may write to one parent alone: that parent's household chat
    teacher.get_by_role("link", name="Élèves").click()
    teacher.get_by_role("button", name="Écrire à Julien Petit seulement").click()
    expect(teacher.get_by_role("heading", name="Julien Petit — à propos de Léa")).to_be_visible()
    teacher.get_by_label("Votre message").fill("Bonjour M. Petit, Léa a oublié son gilet.")
    teacher.get_by_label("Votre message").press("Enter")

    # the father sees his own conversation only, never his former partner's
    father.get_by_role("link", name="Messages").click()
    expect(father.locator(".chat-item")).to_have_count(1)
    father.get_by_role("link", name="Mme Martin — à propos de Léa").click()
    expect(father.locator(".bubble", has_text="oublié son gilet")).to_be_visible()
    expect(father.locator(".bubble", has_text="absente lundi")).to_have_count(0)
    # and his "Écrire à l’enseignant·e" leads there too
    father.get_by_role("link", name="Léa", exact=True).click()
    father.get_by_role("link", name="Mme Martin — à propos de Léa").click()
    expect(father.locator(".bubble", has_text="oublié son gilet")).to_be_visible()


def test_staff_room(person) -> None:
    teacher = person("t-nguyen")
    director = person("d-bernard")
    parent = person("p-durand")
    expect(parent.get_by_role("link", name="Salle des maîtres")).to_have_count(0)
    teacher.get_by_role("link", name="Salle des maîtres").click()
    form = teacher.locator("form.compose-form")
    expect(form.get_by_label("Annonce urgente")).to_have_count(0)  # directors only
    form.get_by_label("Texte", exact=True).fill("Qui a la clé du local de sport ?")
    form.get_by_role("button", name="Publier").click()
    director.get_by_role("link", name="Salle des maîtres").click()
    expect(director.locator("article.msg", has_text="clé du local de sport")).to_be_visible()
    form = director.locator("form.compose-form")
    form.get_by_label("Texte", exact=True).fill("Exercice d’évacuation à 10 h.")
    form.get_by_label("Annonce urgente").check()
    form.get_by_role("button", name="Publier").click()
    urgent = teacher.locator("article.msg", has_text="Exercice d’évacuation")
    expect(urgent).to_contain_text("Urgent")


def test_offline_page_when_the_server_is_down(person, server) -> None:
    parent = person("p-durand")
    parent.wait_for_function("navigator.serviceWorker.controller !== null")
    # the shell is kept
    assert parent.evaluate("""caches.keys()
      .then((names) => caches.open(names.find((n) => n.startsWith('liaison-shell-'))))
      .then((c) => c.match('offline.html')).then(Boolean)""")
    server.stop()
    parent.reload()
    expect(parent.get_by_role("heading", name="Liaison n’est pas joignable pour le moment")).to_be_visible()
    expect(parent.get_by_role("link", name="Réessayer")).to_be_visible()
