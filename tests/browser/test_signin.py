# ruff: noqa: RUF001 — French text uses typographic apostrophes
"""Signing in with an e-mailed code in the web client (issue 11), on a server run as in
production: no `--demo` (no demo school: one is loaded through the admin API), its own
`LIAISON_JWT_SECRET`, e-mail through a real SMTP server on 127.0.0.1. The session outlives
the tab (the refresh cookie), the access token stays in memory, devices are listed and
signed out, and the app is installable (manifest, service worker)."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.liaison_browser import DESKTOP, PHONE, Server, admin, live_server, watch_csp
from tests.support.smtp_server import Received, SmtpServer, code_from
from tests.support.waiting import UNIT, wait_until

pytestmark = pytest.mark.integration

ANA = "ana.lopes@example.fr"
SIGN_IN = "Connexion à Liaison"
FEED = "Le fil de Tom"

# Set in every page of a context when the sign-in form shows, even for a moment.
_SAW_SIGN_IN = """
new MutationObserver(() => {
  if (document.getElementById('signin-email')) window.__sawSignIn = true;
}).observe(document, { subtree: true, childList: true });
"""


def load_school(server: Server) -> None:
    """A school of the server's own, through the admin API (outside --demo there is none)."""
    admin(server, "PUT", "/admin/schools/ecole-hugo",
          {"name": "École Victor Hugo", "year": "2026-2027", "guardians_start_chats": True})
    admin(server, "PUT", "/admin/people/t-roux",
          {"school_id": "ecole-hugo", "name": "Mme Roux", "role": "teacher", "email": "roux@example.fr"})
    admin(server, "PUT", "/admin/classes/ce1-a",
          {"school_id": "ecole-hugo", "name": "CE1 A", "teachers": ["t-roux"]})
    admin(server, "PUT", "/admin/people/p-lopes",
          {"school_id": "ecole-hugo", "name": "Ana Lopes", "role": "guardian", "email": ANA})
    admin(server, "PUT", "/admin/students/s-tom",
          {"class_id": "ce1-a", "name": "Tom Lopes", "guardians": ["p-lopes"]})
    post(server, "Bienvenue en CE1 !")


def post(server: Server, text: str) -> None:
    admin(server, "POST", "/channels/class:ce1-a/messages",
          {"as": "t-roux", "kind": "post", "data": {"text": text}})


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def start(tmp_path: Path, smtp: SmtpServer) -> Iterator[Callable[..., Server]]:
    """start(**env) → a production-like server with the school loaded."""
    with ExitStack() as stack:

        def run(**env: str) -> Server:
            server = stack.enter_context(live_server(tmp_path / f"server-{id(env)}", smtp.url(), env=env))
            load_school(server)
            return server

        yield run


@pytest.fixture
def live(start: Callable[..., Server]) -> Server:
    return start()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """new_context(**options) → a browser context (a device); any CSP violation fails the test."""
    contexts: list[BrowserContext] = []
    violations: list[list[str]] = []

    def make(**options: object) -> BrowserContext:
        context = browser.new_context(**{"viewport": DESKTOP, "locale": "fr-FR",
                                         "timezone_id": "Europe/Paris", **options})  # type: ignore[arg-type]
        context.set_default_timeout(10_000)
        context.add_init_script(_SAW_SIGN_IN)
        violations.append(watch_csp(context))
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()
    found = [v for seen in violations for v in seen]
    assert not found, f"Content-Security-Policy violations: {found}"


def mails_to(smtp: SmtpServer, address: str) -> list[Received]:
    return [r for r in smtp.received if address in r.rcpt_tos]


def code_for(smtp: SmtpServer, address: str, seen: int = 0) -> str:
    """The code of the newest e-mail to `address`, once more than `seen` have come."""
    wait_until(lambda: len(mails_to(smtp, address)) > seen, 2 * UNIT, f"a code e-mailed to {address}")
    return code_from(mails_to(smtp, address)[-1].message)


def ask_code(page: Page, email: str) -> None:
    page.get_by_label("Votre adresse e-mail").fill(email)
    page.get_by_role("button", name="Recevoir un code").click()
    expect(page.get_by_label("Code reçu par e-mail")).to_be_focused()


def sign_in_with_code(page: Page, server: Server, smtp: SmtpServer, email: str = ANA) -> str:
    """Sign in on `page` with a code from the SMTP server; the access token the page got."""
    seen = len(mails_to(smtp, email))
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name=SIGN_IN)).to_be_visible()
    ask_code(page, email)
    page.get_by_label("Code reçu par e-mail").fill(code_for(smtp, email, seen))
    with page.expect_response(re.compile(r"/api/v1/auth/verify$")) as answer:
        page.get_by_role("button", name="Se connecter", exact=True).click()
    assert answer.value.status == 200
    expect(page.get_by_role("heading", name=FEED)).to_be_visible()
    page.evaluate("window.__sawSignIn = false")  # from now on, it should not show again
    return str(answer.value.json()["access_token"])


def saw_sign_in(page: Page) -> bool:
    return bool(page.evaluate("window.__sawSignIn === true"))


def in_storage(page: Page) -> str:
    return str(page.evaluate("JSON.stringify([{...localStorage}, {...sessionStorage}])"))


# -- the session across tabs and restarts -----------------------------------------------------------

def test_a_parent_signs_in_with_a_code_and_stays_signed_in(new_context: Callable[..., BrowserContext],
                                                           live: Server, smtp: SmtpServer) -> None:
    phone = new_context(viewport=PHONE)
    page = phone.new_page()
    # the invitation's link fills in the address
    page.goto(f"{live.url}/#signin?email=ana.lopes%40example.fr")
    expect(page.get_by_role("heading", name=SIGN_IN)).to_be_visible()
    expect(page.get_by_label("Votre adresse e-mail")).to_have_value(ANA)
    assert "#signin" not in page.url
    expect(page.get_by_role("heading", name="Qui êtes-vous ?")).to_have_count(0)  # no demo here

    token = sign_in_with_code(page, live, smtp)
    expect(page.locator("article.msg", has_text="Bienvenue en CE1")).to_be_visible()
    expect(page.locator(".me-name")).to_have_text("Ana Lopes")
    assert token not in in_storage(page)  # the access token is in memory only
    [cookie] = [c for c in phone.cookies() if c["name"] == "liaison_refresh"]
    assert cookie["httpOnly"] and cookie["path"] == "/api/v1/auth" and cookie["expires"] > 0
    assert page.evaluate("document.cookie") == ""

    # the tab is closed; Liaison is opened again, in two tabs at once: still signed in
    page.close()
    first, second = phone.new_page(), phone.new_page()
    first.goto(live.url + "/", wait_until="commit")
    second.goto(live.url + "/", wait_until="commit")
    for tab in (first, second):
        expect(tab.get_by_role("heading", name=FEED)).to_be_visible()
        expect(tab.locator("article.msg", has_text="Bienvenue en CE1")).to_be_visible()
        assert not saw_sign_in(tab)
    post(live, "Sortie au musée jeudi")
    expect(first.locator("article.msg", has_text="Sortie au musée")).to_be_visible()
    second.close()

    # the phone restarts: the browser keeps its persistent cookies, and nothing else
    state = phone.storage_state()
    phone.close()
    restarted = new_context(viewport=PHONE, storage_state=state)
    page = restarted.new_page()
    page.goto(live.url + "/")
    expect(page.get_by_role("heading", name=FEED)).to_be_visible()
    assert not saw_sign_in(page)

    # installable: the manifest is linked and served, the service worker controls the page
    href = page.locator('link[rel="manifest"]').get_attribute("href")
    assert href
    manifest = page.request.get(f"{live.url}/{href}")
    assert manifest.ok and "manifest+json" in manifest.headers["content-type"]
    app = manifest.json()
    assert (app["name"], app["start_url"], app["display"]) == ("Liaison", "/", "standalone")
    assert app["short_name"] and app["theme_color"]
    sizes = {i["sizes"]: i for i in app["icons"]}
    for size in ("192x192", "512x512"):
        assert sizes[size]["type"] == "image/png"
        icon = page.request.get(live.url + sizes[size]["src"])
        assert icon.ok and icon.headers["content-type"] == "image/png"
    assert any(i["src"].endswith("icon.svg") for i in app["icons"])
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    worker = page.evaluate("navigator.serviceWorker.getRegistration().then((r) => r.active.scriptURL)")
    assert worker.endswith("/sw.js")
    page.reload()  # now through the service worker
    expect(page.get_by_role("heading", name=FEED)).to_be_visible()
    cached = page.evaluate("""async () => {
      const urls = [];
      for (const name of await caches.keys()) {
        for (const r of await (await caches.open(name)).keys()) urls.push(r.url);
      }
      return urls;
    }""")
    assert any(u.endswith("/app.js") for u in cached)
    assert not [u for u in cached if "/api/" in u]  # answers of the API are never kept

    # "Mes appareils": this device; signing out from it returns to the sign-in page, for good
    page.get_by_role("link", name="Mes appareils").click()
    expect(page.get_by_role("heading", name="Mes appareils")).to_be_visible()
    device = page.locator("li.device")
    expect(device).to_have_count(1)
    expect(device).to_contain_text("Chrome sur Linux")
    expect(device).to_contain_text("cet appareil")
    expect(device).to_contain_text("Dernière utilisation")
    device.get_by_role("button", name="Se déconnecter").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Se déconnecter de Liaison ?")
    expect(dialog.get_by_role("button", name="Non, rester connecté·e")).to_be_focused()
    with page.expect_response(re.compile(r"/api/v1/auth/logout$")) as answer:
        dialog.get_by_role("button", name="Oui, me déconnecter").click()
    assert answer.value.status == 204
    expect(page.get_by_role("heading", name=SIGN_IN)).to_be_visible()
    expect(page.locator(".notice")).to_contain_text("Vous êtes déconnecté·e")
    assert not [c for c in restarted.cookies() if c["name"] == "liaison_refresh"]
    page.reload()
    expect(page.get_by_role("heading", name=SIGN_IN)).to_be_visible()
    expect(page.get_by_role("heading", name=FEED)).to_have_count(0)


def test_another_device_is_listed_and_signed_out_from_this_one(
        new_context: Callable[..., BrowserContext], live: Server, smtp: SmtpServer) -> None:
    android = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/126.0 Mobile Safari/537.36")
    phone = new_context(viewport=PHONE, user_agent=android).new_page()
    sign_in_with_code(phone, live, smtp)
    desktop = new_context().new_page()
    sign_in_with_code(desktop, live, smtp)

    desktop.goto(live.url + "/#/devices")
    expect(desktop.get_by_role("heading", name="Mes appareils")).to_be_visible()
    devices = desktop.locator("li.device")
    expect(devices).to_have_count(2)
    expect(devices.first).to_contain_text("cet appareil")  # this one first
    expect(devices.first).to_contain_text("Chrome sur Linux")
    other = devices.filter(has_text="Chrome sur Android")
    expect(other).not_to_contain_text("cet appareil")
    other.get_by_role("button", name="Déconnecter l’appareil « Chrome sur Android »").click()
    expect(desktop.get_by_role("status").filter(has_text="est déconnecté")).to_be_visible()
    expect(devices).to_have_count(1)
    expect(desktop.get_by_text("Vous n’êtes connecté·e sur aucun autre appareil.")).to_be_visible()

    # the phone learns it at once (its WebSocket is closed, its cookie refused)
    expect(phone.get_by_role("heading", name=SIGN_IN)).to_be_visible()
    expect(phone.locator(".notice")).to_contain_text("Vous n’êtes plus connecté·e sur cet appareil")
    expect(desktop.get_by_role("heading", name="Mes appareils")).to_be_visible()  # this one stays


def test_signing_out_every_other_device(new_context: Callable[..., BrowserContext], live: Server,
                                        smtp: SmtpServer) -> None:
    pages = [new_context().new_page() for _ in range(3)]
    for page in pages:
        sign_in_with_code(page, live, smtp)
    mine, *others = pages
    mine.get_by_role("link", name="Mes appareils").click()
    expect(mine.locator("li.device")).to_have_count(3)
    mine.get_by_role("button", name="Déconnecter tous mes autres appareils").click()
    mine.get_by_role("dialog").get_by_role("button", name="Oui, les déconnecter").click()
    expect(mine.get_by_text("2 autres appareils déconnectés.")).to_be_visible()
    expect(mine.locator("li.device")).to_have_count(1)
    for page in others:
        expect(page.get_by_role("heading", name=SIGN_IN)).to_be_visible()
    post(live, "Toujours là")
    expect(mine.locator("article.msg", has_text="Toujours là")).to_have_count(0)  # on the devices page
    mine.get_by_role("link", name="Tom").click()
    expect(mine.locator("article.msg", has_text="Toujours là")).to_be_visible()


# -- the access token renewed ------------------------------------------------------------------------

def test_the_access_token_is_renewed_and_the_feed_stays_live(
        new_context: Callable[..., BrowserContext], start: Callable[..., Server], smtp: SmtpServer) -> None:
    """Access tokens of 4 seconds: the page refreshes ahead of expiry, the server closes the
    WebSocket with 4401 at the old token's expiry, and the page connects again with the new
    one, without a word to the person nor a sign-in page."""
    server = start(LIAISON_ACCESS_TTL="4")
    page = new_context().new_page()
    sign_in_with_code(page, server, smtp)
    with page.expect_websocket(timeout=20_000) as renewed:  # noqa: SIM117 — both listen from here
        with page.expect_response(re.compile(r"/api/v1/auth/refresh$"), timeout=15_000) as refreshed:
            pass
    assert refreshed.value.status == 200
    expect(page.locator(".conn-banner")).to_be_empty()
    assert not renewed.value.is_closed()
    post(server, "Après le renouvellement")
    expect(page.locator("article.msg", has_text="Après le renouvellement")).to_be_visible()
    expect(page.get_by_role("heading", name=FEED)).to_be_visible()
    assert not saw_sign_in(page)
    expect(page.locator(".conn-banner")).to_be_empty()


# -- the code: mistakes, expiry, too many tries ----------------------------------------------------

def test_wrong_expired_and_too_many_codes_are_explained(new_context: Callable[..., BrowserContext], live: Server,
                                                        smtp: SmtpServer) -> None:
    page = new_context(viewport=PHONE).new_page()
    page.goto(live.url + "/")
    page.get_by_role("button", name="Recevoir un code").click()
    expect(page.get_by_role("alert")).to_contain_text("Cette adresse e-mail n’est pas complète")

    ask_code(page, ANA)
    code = code_for(smtp, ANA)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    field = page.get_by_label("Code reçu par e-mail")
    submit = page.get_by_role("button", name="Se connecter", exact=True)
    field.fill("12")
    submit.click()
    expect(page.get_by_role("alert")).to_have_text("Tapez les 6 chiffres du code reçu par e-mail.")
    for left in (4, 3, 2):
        field.fill(wrong)
        submit.click()
        expect(page.get_by_role("alert")).to_have_text(
            f"Ce code n’est pas le bon. Vérifiez-le : il vous reste {left} essais.")
    field.fill(wrong)
    submit.click()
    expect(page.get_by_role("alert")).to_have_text(
        "Ce code n’est pas le bon. Vérifiez-le : il vous reste 1 essai.")
    field.fill(wrong)
    submit.click()
    expect(page.get_by_role("alert")).to_have_text(
        "Trop d’essais avec un code faux. Par sécurité, attendez 15 minutes, puis demandez un nouveau code.")
    expect(submit).to_be_disabled()
    expect(page.get_by_role("button", name="Recevoir un nouveau code")).to_be_disabled()

    # an address with no code waiting (unknown, or a code expired or used): ask for a new one
    page.get_by_role("button", name="Changer d’adresse e-mail").click()
    expect(page.get_by_label("Votre adresse e-mail")).to_have_value(ANA)
    ask_code(page, "personne@example.fr")
    expect(page.locator(".notice.sent")).to_contain_text("Si l’adresse personne@example.fr est connue de l’école")
    field.fill("123456")
    submit.click()
    expect(page.get_by_role("alert")).to_have_text(
        "Ce code n’est plus valable : il a expiré ou a déjà servi. Demandez un nouveau code.")
    expect(page.get_by_role("button", name="Recevoir un nouveau code")).to_be_focused()
    assert mails_to(smtp, "personne@example.fr") == []


# -- the demo --------------------------------------------------------------------------------------

def demo_outbox_code(server: Server, address: str) -> str:
    def mails() -> list[dict[str, str]]:
        with urllib.request.urlopen(f"{server.url}/demo/outbox", timeout=10) as res:
            return [m for m in json.load(res) if m["to"] == address]

    wait_until(lambda: mails(), 2 * UNIT, f"a code for {address} in the demo outbox")
    found = re.search(r"Votre code de connexion à Liaison : ([0-9]{6})\b", mails()[0]["text"])
    assert found is not None
    return found.group(1)


def test_the_demo_keeps_picking_who_you_are_and_offers_the_code(
        new_context: Callable[..., BrowserContext], server: Server) -> None:
    page = new_context().new_page()
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="Qui êtes-vous ?")).to_be_visible()
    expect(page.locator('button[data-user="t-martin"]')).to_be_visible()
    ask_code(page, "claire.petit@example.fr")
    outbox = page.get_by_role("link", name="Ouvrir la boîte d’envoi (nouvel onglet)")
    expect(outbox).to_have_attribute("href", "/demo/outbox")
    page.get_by_label("Code reçu par e-mail").fill(demo_outbox_code(server, "claire.petit@example.fr"))
    page.get_by_role("button", name="Se connecter", exact=True).click()
    expect(page.get_by_role("heading", name="Le fil de Léa")).to_be_visible()
    expect(page.get_by_role("button", name="Se déconnecter")).to_be_visible()
    page.reload()  # a device session, not a tab's demo token
    expect(page.get_by_role("heading", name="Le fil de Léa")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('liaison.token')") is None
