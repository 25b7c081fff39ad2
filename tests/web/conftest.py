"""Headless Debian chromium, driven by playwright, against a real server.

Playwright's own browser downloads do not work here (and `make test` installs Debian's
chromium), so the browser is launched from its system path. Each test opens one browser
context per person, so two people have separate storage and sockets.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import Account, LiveServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
# Generous: the machine is shared and busy; every wait returns as soon as the page is ready.
expect.set_options(timeout=20_000)


# Per module: while playwright's sync API is open it keeps an event loop running in this
# thread, which async tests elsewhere in the session cannot share.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def server(live_server: LiveServer) -> LiveServer:
    """The shared server: tests register their own people and look only at their messages."""
    return live_server


@pytest.fixture
def own_server(make_server: Callable[..., LiveServer]) -> LiveServer:
    """A server of the test's own, for tests that count the whole room (a new account has
    every earlier room message unread)."""
    return make_server()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


class People:
    """Opens a signed-in page per person; closes every context at the end of the test."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.contexts: list[object] = []
        self.errors: list[str] = []

    def open(
        self, server: LiveServer, account: Account, width: int = 1280, height: int = 800
    ) -> Page:
        context = self.browser.new_context(viewport={"width": width, "height": height})
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.goto(server.http_url + "/")
        page.get_by_test_id("signin-key").fill(account.api_key)
        page.get_by_test_id("signin-submit").click()
        expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()  # type: ignore[attr-defined]


@pytest.fixture
def people(browser: Browser) -> Iterator[People]:
    opened = People(browser)
    try:
        yield opened
    finally:
        opened.close()
    # A script error in the page fails the test that caused it.
    assert opened.errors == []


def message(page: Page, text: str):  # type: ignore[no-untyped-def]
    """The message items of the open conversation whose body is exactly ``text``."""
    return page.get_by_test_id("message").filter(
        has=page.get_by_test_id("message-body").get_by_text(text, exact=True)
    )


def send(page: Page, text: str) -> None:
    box = page.get_by_test_id("composer-input")
    box.fill(text)
    box.press("Enter")
