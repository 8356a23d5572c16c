# ruff: noqa: RUF001 — French text uses typographic apostrophes
"""End-to-end tests of the web client against the real server (demo school)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.liaison_browser import PHONE, ProtocolClient, demo_server

pytestmark = pytest.mark.integration


def publish_post(page: Page, text: str, title: str = "") -> None:
    form = page.locator("form.compose-form")
    if title:
        form.get_by_label("Titre (facultatif)").fill(title)
    form.get_by_label("Texte", exact=True).fill(text)
    form.get_by_role("button", name="Publier").click()
    # the author sees it come back as a live message
    expect(page.locator("article.msg", has_text=text)).to_be_visible()


def mark_page(page: Page) -> None:
    """Set a flag that a reload would lose: the updates must arrive without reloading."""
    page.evaluate("window.__noReload = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__noReload === true")


def test_teacher_post_appears_live_for_both_separated_parents(person) -> None:
    mother = person("p-lea-mere")
    father = person("p-lea-pere", viewport=PHONE)  # on a phone
    teacher = person("t-martin")
    for parent in (mother, father):
        expect(parent.get_by_role("heading", name="Le fil de Léa")).to_be_visible()
        mark_page(parent)
    expect(teacher.get_by_role("heading", name="Classe CP A")).to_be_visible()

    publish_post(teacher, "Jeudi nous irons au musée. Prévoir un goûter.", title="Sortie au musée")

    for parent in (mother, father):
        card = parent.locator("article.msg", has_text="Sortie au musée")
        expect(card).to_be_visible()
        expect(card).to_contain_text("Mme Martin")
        expect(card).to_contain_text("Prévoir un goûter")
        assert_not_reloaded(parent)


def test_parent_offline_during_two_posts_sees_both_after_reconnecting(person) -> None:
    parent = person("p-lea-mere")
    teacher = person("t-martin")
    expect(parent.get_by_role("heading", name="Le fil de Léa")).to_be_visible()
    mark_page(parent)
    publish_post(teacher, "Avant la coupure")
    expect(parent.locator("article.msg", has_text="Avant la coupure")).to_be_visible()

    parent.context.set_offline(True)
    expect(parent.locator(".conn-banner")).to_contain_text("Reconnexion")
    publish_post(teacher, "Premier message pendant la coupure")
    publish_post(teacher, "Second message pendant la coupure")
    # still cut off: nothing arrived, the banner is still there
    expect(parent.locator(".conn-banner")).to_contain_text("Reconnexion")
    expect(parent.locator("article.msg", has_text="pendant la coupure")).to_have_count(0)

    parent.context.set_offline(False)
    expect(parent.locator(".conn-banner")).to_be_empty()
    cards = parent.locator("article.msg")
    expect(cards.filter(has_text="Premier message pendant la coupure")).to_have_count(1)
    expect(cards.filter(has_text="Second message pendant la coupure")).to_have_count(1)
    expect(cards.filter(has_text="Avant la coupure")).to_have_count(1)  # no duplicate
    # newest first, in order
    texts = cards.all_inner_texts()
    order = [next(i for i, t in enumerate(texts) if s in t) for s in ("Second", "Premier", "Avant")]
    assert order == sorted(order)
    assert_not_reloaded(parent)


def test_post_deleted_while_parent_was_offline_is_gone_after_reconnecting(person) -> None:
    """The client sends `updated_since` on reconnect and applies the `updates` it gets back."""
    parent = person("p-lea-pere")
    teacher = person("t-martin")
    expect(parent.get_by_role("heading", name="Le fil de Léa")).to_be_visible()
    publish_post(teacher, "Sortie annulée")
    expect(parent.locator("article.msg", has_text="Sortie annulée")).to_be_visible()

    parent.context.set_offline(True)
    expect(parent.locator(".conn-banner")).to_contain_text("Reconnexion")
    teacher.locator("article.msg", has_text="Sortie annulée").get_by_role("button", name="Supprimer").click()
    teacher.get_by_role("button", name="Oui, supprimer").click()
    expect(teacher.locator("article.msg", has_text="Sortie annulée")).to_have_count(0)

    parent.context.set_offline(False)
    expect(parent.locator(".conn-banner")).to_be_empty()
    expect(parent.locator("article.msg", has_text="Sortie annulée")).to_have_count(0)


def test_director_urgent_announcement_and_who_has_not_read_it(person) -> None:
    director = person("d-bernard")
    parent = person("p-lea-mere")
    # the parent is on another screen when the announcement arrives
    parent.get_by_role("link", name="Messages").click()
    expect(parent.get_by_role("heading", name="Conversations")).to_be_visible()

    text = "Fermeture exceptionnelle de l'école demain : grève des transports."
    form = director.locator("form.compose-form")
    form.get_by_label("Titre (facultatif)").fill("École fermée demain")
    form.get_by_label("Texte", exact=True).fill(text)
    form.get_by_label("Annonce urgente").check()
    form.get_by_role("button", name="Envoyer l’annonce").click()

    card = director.locator("article.msg", has_text="École fermée demain")
    expect(card).to_contain_text("Urgent")
    not_read = card.locator(".receipts-panel")
    expect(not_read).to_contain_text("CP A")
    expect(not_read).to_contain_text("Claire Petit")
    expect(not_read).to_contain_text("Julien Petit")

    # it stands out for the parent (text and icon, not colour alone) until read
    banner = parent.locator(".urgent-banner")
    expect(banner).to_contain_text("Annonce urgente non lue : École fermée demain")
    banner.get_by_role("link", name="Lire").click()
    parent_card = parent.locator("article.msg", has_text="École fermée demain")
    expect(parent_card).to_contain_text("Urgent")
    expect(parent_card).to_contain_text(text)
    # once read (on screen for a moment), the banner goes and the card calms down
    expect(banner).to_be_hidden()
    expect(parent_card).not_to_have_class("urgent-unread")

    # the director's list follows live, by family: Léa's mother has read it, her father's
    # household not yet
    expect(not_read).to_contain_text("Famille de Léa : lu par Claire Petit, pas encore par Julien Petit")
    expect(not_read).to_contain_text("Famille d’Hugo : Sophie Durand")
    expect(card.locator(".receipts")).to_contain_text("Lu par 1/4 familles")


def test_chat_round_trip_with_typing_indicator(person) -> None:
    teacher = person("t-martin")
    parent = person("p-durand", viewport=PHONE)

    teacher.get_by_role("link", name="Élèves").click()
    teacher.get_by_role("button", name="Écrire à la famille d’Hugo").click()
    expect(teacher.get_by_role("heading", name="Famille d’Hugo")).to_be_visible()
    teacher_box = teacher.get_by_label("Votre message")
    teacher_box.fill("Bonjour, Hugo a oublié son cahier de lecture.")
    teacher.get_by_role("button", name="Envoyer", exact=True).click()

    # the chat appears live for the family
    parent.get_by_role("link", name="Messages").click()
    parent.get_by_role("link", name="Mme Martin — à propos d’Hugo").click()
    expect(parent.locator(".bubble", has_text="Hugo a oublié son cahier")).to_be_visible()

    # typing indicator, teacher → parent (typing is sent at most once per 3 s: typing
    # for a few seconds, as a person does, sends it again once the parent is there)
    teacher_box.press_sequentially("Pouvez-vous le rapporter demain ?", delay=150)
    expect(parent.locator(".typing")).to_have_text("Mme Martin écrit…")
    teacher_box.fill("")

    # parent → teacher, with the indicator
    parent_box = parent.get_by_label("Votre message")
    parent_box.press_sequentially("Merci")
    expect(teacher.locator(".typing")).to_have_text("Sophie Durand écrit…")
    parent_box.fill("Merci, je le mets dans son cartable ce soir.")
    parent_box.press("Enter")
    expect(teacher.locator(".bubble", has_text="je le mets dans son cartable")).to_be_visible()
    expect(teacher.locator(".typing")).to_have_text("")  # a message ends the indicator

    # the author edits, then deletes, and both sides follow
    mine = teacher.locator(".bubble.mine", has_text="Hugo a oublié son cahier")
    mine.get_by_role("button", name="Modifier").click()
    edit = teacher.get_by_label("Modifier votre message")
    edit.fill("Bonjour, Hugo a oublié son cahier de lecture à l'école.")
    teacher.get_by_role("button", name="Enregistrer").click()
    edited = parent.locator(".bubble", has_text="à l'école")
    expect(edited).to_contain_text("modifié")
    teacher.locator(".bubble.mine", has_text="à l'école").get_by_role("button", name="Supprimer").click()
    teacher.get_by_role("button", name="Oui, supprimer").click()
    expect(parent.locator(".bubble", has_text="Message supprimé")).to_be_visible()
    expect(parent.locator(".bubble", has_text="à l'école")).to_have_count(0)


def test_older_messages_load_when_scrolling(person, server) -> None:
    teacher = ProtocolClient(server.url, "t-martin")
    try:
        for i in range(1, 46):
            teacher.publish("class:cp-a", "post", text=f"Publication numéro {i:02d}")
    finally:
        teacher.close()

    parent = person("p-durand")
    expect(parent.locator("article.msg", has_text="Publication numéro 45")).to_be_visible()
    oldest = parent.locator("article.msg", has_text="Publication numéro 01")
    expect(oldest).to_have_count(0)  # only the latest page at first
    for _ in range(10):
        if oldest.count():
            break
        parent.locator("article.msg").last.scroll_into_view_if_needed()
        parent.mouse.wheel(0, 5_000)
    expect(oldest).to_be_visible()
    expect(parent.locator("article.msg")).to_have_count(45)


def test_parent_recovers_what_was_posted_while_the_server_restarted(person, server) -> None:
    parent = person("p-lea-mere")
    expect(parent.get_by_role("heading", name="Le fil de Léa")).to_be_visible()
    mark_page(parent)

    server.stop()
    expect(parent.locator(".conn-banner")).to_contain_text("Reconnexion")
    with demo_server(server.workdir, port=server.port) as again:
        teacher = ProtocolClient(again.url, "t-martin")
        try:
            teacher.publish("class:cp-a", "post", text="Posté juste après le redémarrage (1)")
            teacher.publish("class:cp-a", "post", text="Posté juste après le redémarrage (2)")
        finally:
            teacher.close()
        expect(parent.locator(".conn-banner")).to_be_empty(timeout=20_000)
        cards = parent.locator("article.msg")
        expect(cards.filter(has_text="après le redémarrage (1)")).to_have_count(1)
        expect(cards.filter(has_text="après le redémarrage (2)")).to_have_count(1)
        assert_not_reloaded(parent)


def tab_to(page: Page, target, limit: int = 40) -> None:
    """Press Tab until `target` has the focus (keyboard only)."""
    for _ in range(limit):
        if target.evaluate("el => el === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{target} not reachable with Tab")


def test_keyboard_only_sign_in_and_post(person, browser, server) -> None:
    parent = person("p-lea-pere")
    expect(parent.get_by_role("heading", name="Le fil de Léa")).to_be_visible()

    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        me = page.locator('button[data-user="t-martin"]')
        tab_to(page, me)
        # the focus is visible
        assert me.evaluate("el => getComputedStyle(el).outlineStyle") != "none"
        page.keyboard.press("Enter")
        text = page.locator("form.compose-form").get_by_label("Texte", exact=True)
        tab_to(page, text)
        page.keyboard.type("Posté au clavier seulement.")
        # then, in the order they are shown: the two attach buttons, once each (their hidden
        # file inputs are no Tab stops), and "Publier"
        form = page.locator("form.compose-form")
        for name in ("Photo", "Photo ou document", "Publier"):
            page.keyboard.press("Tab")
            button = form.get_by_role("button", name=name, exact=True)
            expect(button).to_be_focused()
            assert button.evaluate("el => getComputedStyle(el).outlineStyle") != "none"
        page.keyboard.press("Enter")
        expect(parent.locator("article.msg", has_text="Posté au clavier seulement.")).to_be_visible()
        # keyboard navigation between screens: the tabs are links
        tab_to(page, page.get_by_role("link", name="Élèves"))
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Élèves et familles", level=1)).to_be_focused()
    finally:
        context.close()


def test_post_written_offline_is_sent_once_on_reconnect(person) -> None:
    parent = person("p-lea-mere")
    teacher = person("t-martin")
    expect(parent.get_by_role("heading", name="Le fil de Léa")).to_be_visible()

    teacher.context.set_offline(True)
    expect(teacher.locator(".conn-banner")).to_contain_text("Reconnexion")
    form = teacher.locator("form.compose-form")
    form.get_by_label("Texte", exact=True).fill("Écrit dans le train, sans réseau.")
    form.get_by_role("button", name="Publier").click()
    expect(form.get_by_role("status")).to_contain_text("En attente de connexion")

    teacher.context.set_offline(False)
    expect(form.get_by_role("status")).to_contain_text("Publié")
    expect(parent.locator("article.msg", has_text="Écrit dans le train")).to_have_count(1)
    expect(teacher.locator("article.msg", has_text="Écrit dans le train")).to_have_count(1)
