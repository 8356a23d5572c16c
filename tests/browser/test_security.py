# ruff: noqa: RUF001 — French text uses typographic apostrophes
"""The web client under its Content-Security-Policy, framing refused, and sign-in links
(issue 10, items 6 and 7): a token in the URL never signs anyone in, nor replaces a
signed-in session, without the person confirming it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.liaison_browser import DESKTOP, Server, demo_token, sign_in, watch_csp

pytestmark = pytest.mark.integration

TOKEN_KEY = "liaison.token"


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport=DESKTOP, locale="fr-FR", timezone_id="Europe/Paris")
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


def stored_token(page: Page) -> str | None:
    token: str | None = page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')")
    return token


# -- Content-Security-Policy ---------------------------------------------------------------------

def test_every_screen_works_under_the_policy(context: BrowserContext, server: Server) -> None:
    violations = watch_csp(context)
    page = context.new_page()
    response = page.goto(server.url + "/")
    assert response is not None
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    page.locator('button[data-user="t-martin"]').click()
    expect(page.get_by_role("heading", name="Classe CP A")).to_be_visible()

    form = page.locator("form.compose-form")
    form.get_by_label("Texte", exact=True).fill("Sous la politique de sécurité")
    form.get_by_role("button", name="Publier").click()
    expect(page.locator("article.msg", has_text="Sous la politique de sécurité")).to_be_visible()
    page.get_by_role("link", name="Élèves").click()
    page.get_by_role("button", name="Écrire à la famille d’Hugo").click()
    expect(page.get_by_role("heading", name="Famille d’Hugo")).to_be_visible()
    page.get_by_label("Votre message").fill("Bonjour")
    page.get_by_label("Votre message").press("Enter")
    expect(page.locator(".chat-log", has_text="Bonjour")).to_be_visible()
    page.get_by_role("link", name="Messages").click()
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()
    assert violations == []


def test_a_violation_is_seen_and_inline_code_does_not_run(context: BrowserContext, server: Server) -> None:
    """The check above can fail: inline code is refused, and the refusal is reported."""
    violations = watch_csp(context)
    page = context.new_page()
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="Qui êtes-vous ?")).to_be_visible()
    with page.expect_console_message(predicate=lambda m: "script-src" in m.text):
        page.evaluate("""() => {
          const s = document.createElement('script');
          s.textContent = 'window.__inline = true';
          document.body.append(s);
        }""")
    page.evaluate("""() => {
      const b = document.createElement('button');
      b.setAttribute('onclick', 'window.__handler = true');
      b.id = 'inline-handler';
      b.textContent = 'x';
      document.body.append(b);
    }""")
    with page.expect_console_message(predicate=lambda m: "script-src-attr" in m.text):
        page.locator("#inline-handler").click()
    assert page.evaluate("window.__inline === undefined && window.__handler === undefined")
    assert any("script-src" in v for v in violations)


def test_the_client_cannot_be_framed(context: BrowserContext, server: Server) -> None:
    """Clickjacking: another page puts the client in a frame; the browser refuses to show it."""
    page = context.new_page()
    page.set_content(f'<iframe id="victim" src="{server.url}/" width="800" height="600"></iframe>',
                     wait_until="load")
    frame = page.frame_locator("#victim")
    expect(frame.locator("#app")).to_have_count(0)
    expect(frame.get_by_text("Qui êtes-vous ?")).to_have_count(0)
    child = page.frames[1]
    assert not child.url.startswith(server.url) or child.evaluate("document.getElementById('app')") is None


# -- sign-in links (login CSRF) ------------------------------------------------------------------

def test_a_link_with_a_token_does_not_switch_a_signed_in_session(context: BrowserContext,
                                                                 server: Server) -> None:
    page = sign_in(context, server.url, "p-lea-mere")
    expect(page.get_by_role("heading", name="Le fil de Léa")).to_be_visible()
    mine = stored_token(page)
    page.evaluate("window.__noReload = true")
    other = demo_token(server.url, "t-martin")

    page.goto(f"{server.url}/#token={other}")  # the same tab: the link only changes the fragment
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Se connecter en tant que Mme Martin ?")
    expect(dialog).to_contain_text("Claire Petit")  # who is signed in now, and will be signed out
    assert "token" not in page.url  # taken out of the address at once
    assert stored_token(page) == mine

    dialog.get_by_role("button", name="Non, ne rien changer").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("heading", name="Le fil de Léa")).to_be_visible()
    expect(page.locator(".me-name")).to_have_text("Claire Petit")
    assert stored_token(page) == mine
    assert page.evaluate("window.__noReload === true")


def test_a_link_opened_in_a_signed_in_tab_asks_then_switches_only_if_confirmed(
        context: BrowserContext, server: Server) -> None:
    page = sign_in(context, server.url, "p-lea-mere")
    mine = stored_token(page)
    other = demo_token(server.url, "t-martin")
    page.goto("about:blank")
    page.goto(f"{server.url}/#token={other}")  # a full page load with the session in the tab
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Se connecter en tant que Mme Martin ?")
    assert "token" not in page.url
    assert stored_token(page) == mine

    dialog.get_by_role("button", name="Oui, me connecter").click()
    expect(page.get_by_role("heading", name="Classe CP A")).to_be_visible()
    expect(page.locator(".me-name")).to_have_text("Mme Martin")
    assert stored_token(page) == other


def test_a_link_in_a_new_tab_signs_in_only_after_confirming(context: BrowserContext,
                                                             server: Server) -> None:
    sockets: list[str] = []
    page = context.new_page()
    page.on("websocket", lambda ws: sockets.append(ws.url))
    other = demo_token(server.url, "p-durand")
    page.goto(f"{server.url}/#token={other}")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Se connecter en tant que Sophie Durand ?")
    assert "token" not in page.url
    assert stored_token(page) is None
    assert sockets == []  # nothing connected with the link's token

    dialog.get_by_role("button", name="Non, annuler").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("heading", name="Qui êtes-vous ?")).to_be_visible()
    assert stored_token(page) is None
    assert sockets == []


def test_a_broken_link_signs_no_one_in(context: BrowserContext, server: Server) -> None:
    page = context.new_page()
    page.goto(f"{server.url}/#token=not-a-token")
    expect(page.get_by_role("heading", name="Qui êtes-vous ?")).to_be_visible()
    expect(page.locator(".notice")).to_contain_text("Ce lien de connexion n’est pas valable")
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert "token" not in page.url
    assert stored_token(page) is None
