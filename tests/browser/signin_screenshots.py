# ruff: noqa: RUF002 — phone sizes are written with a multiplication sign
"""Screenshots of signing in with an e-mailed code (issue 11), on a phone (375×812), into
docs/screenshots/: the code step (`signin-code-phone.png`) and "Mes appareils"
(`devices-phone.png`).

    python tests/browser/signin_screenshots.py [--out docs/screenshots]

Starts the real server as in production (no --demo), with a local SMTP server, loads a
school through the admin API, and signs in on two devices.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from playwright.sync_api import expect, sync_playwright

from tests.browser.liaison_browser import DESKTOP, PHONE, REPO, launch_args, live_server
from tests.browser.test_signin import ANA, ask_code, code_for, load_school, sign_in_with_code
from tests.support.smtp_server import SmtpServer

ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/126.0 Mobile Safari/537.36")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    out: Path = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, SmtpServer() as smtp, \
            live_server(Path(tmp) / "server", smtp.url()) as server, sync_playwright() as pw:
        load_school(server)
        browser = pw.chromium.launch(**launch_args())
        options = {"locale": "fr-FR", "timezone_id": "Europe/Paris", "device_scale_factor": 1}
        # another device first, so that the list has two
        desktop = browser.new_context(viewport=DESKTOP, **options).new_page()  # type: ignore[arg-type]
        sign_in_with_code(desktop, server, smtp)

        phone = browser.new_context(viewport=PHONE, user_agent=ANDROID, **options).new_page()  # type: ignore[arg-type]
        phone.goto(f"{server.url}/#signin?email=ana.lopes%40example.fr")
        seen = len([r for r in smtp.received if ANA in r.rcpt_tos])
        ask_code(phone, ANA)
        code = code_for(smtp, ANA, seen)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        phone.get_by_label("Code reçu par e-mail").fill(wrong)
        phone.get_by_role("button", name="Se connecter", exact=True).click()
        expect(phone.get_by_role("alert")).to_contain_text("il vous reste 4 essais")
        phone.get_by_label("Code reçu par e-mail").fill(code[:3] + " " + code[3:])
        phone.screenshot(path=str(out / "signin-code-phone.png"))
        phone.get_by_role("button", name="Se connecter", exact=True).click()
        expect(phone.get_by_role("heading", name="Le fil de Tom")).to_be_visible()
        phone.get_by_role("link", name="Mes appareils").click()
        expect(phone.locator("li.device")).to_have_count(2)
        phone.screenshot(path=str(out / "devices-phone.png"))
        browser.close()


if __name__ == "__main__":
    main()
