"""Browser (end-to-end) tests: the real server in demo mode, driven through Debian's
Chromium with Playwright. Every test gets its own server and database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

from tests.browser.liaison_browser import DESKTOP, Server, demo_server, launch_args, sign_in, watch_csp


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    # Debian's Chromium: Playwright's own browser download cannot work here.
    return {**browser_type_launch_args, **launch_args()}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with demo_server(tmp_path / "server") as srv:
        yield srv


@pytest.fixture
def person(browser: Browser, server: Server) -> Iterator[Callable[..., Page]]:
    """person("t-martin") → a page signed in as that demo user, in its own browser
    context (its own sessionStorage: like a separate phone or tab). The client must run
    under the server's Content-Security-Policy: any violation fails the test."""
    contexts: list[BrowserContext] = []
    violations: list[list[str]] = []  # one live list per context

    def open_as(user: str, viewport: ViewportSize = DESKTOP, before: Callable[[Page], None] | None = None) -> Page:
        context = browser.new_context(viewport=viewport, locale="fr-FR", timezone_id="Europe/Paris")
        context.set_default_timeout(10_000)
        contexts.append(context)
        violations.append(watch_csp(context))
        return sign_in(context, server.url, user, before)

    yield open_as
    for context in contexts:
        context.close()
    found = [v for seen in violations for v in seen]
    assert not found, f"Content-Security-Policy violations: {found}"
