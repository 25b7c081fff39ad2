"""Hostile text renders as text; the profile works; screenshots at desktop and phone width."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.web.conftest import People, message, send
from token_bowl_chat import TokenBowlClient

PAYLOADS = [
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned = 2">',
    "[click me](javascript:window.__pwned=3)",
    "[data](data:text/html,<script>window.__pwned=4</script>)",
    '<a href="javascript:window.__pwned=5">x</a>',
    "**<svg onload=window.__pwned=6>**",
    "```\n</code></pre><img src=x onerror=window.__pwned=7>\n```",
    "`<iframe src=javascript:window.__pwned=8>`",
]


def test_xss_payloads_in_content_and_usernames_render_as_text(
    server: LiveServer, people: People
) -> None:
    reader = server.register()
    evil = server.register(f'<img src=x onerror="window.__pwned=9">{server.unique()}')
    page = people.open(server, reader)
    with httpx.Client(base_url=server.http_url) as http:
        for payload in PAYLOADS:
            resp = http.post(
                "/messages", json={"content": payload}, headers={"X-API-Key": evil.api_key}
            )
            assert resp.status_code == 201
        http.post(
            "/messages",
            json={"content": "dm <b>bold?</b>", "to_username": reader.username},
            headers={"X-API-Key": evil.api_key},
        )
    by_evil = page.get_by_test_id("message").filter(
        has=page.get_by_test_id("message-author").get_by_text(evil.username, exact=True)
    )
    expect(by_evil).to_have_count(len(PAYLOADS))
    log = page.get_by_test_id("message-list")
    # The only pictures are the page's own generated logo avatars.
    expect(log.locator("script, img, iframe, svg:not(.avatar-art)")).to_have_count(0)
    expect(log.get_by_test_id("message-body").locator("svg")).to_have_count(0)
    expect(page.locator("a[href^='javascript'], a[href^='data']")).to_have_count(0)
    expect(message(page, PAYLOADS[0])).to_have_count(1)  # shown verbatim
    expect(message(page, PAYLOADS[1])).to_have_count(1)
    expect(by_evil.first.get_by_test_id("message-author")).to_have_text(evil.username)
    # The username is text in the people list and the DM list too.
    expect(page.get_by_test_id("conversation").filter(has_text=evil.username)).to_have_count(1)
    expect(page.locator("nav img, header img")).to_have_count(0)
    page.get_by_test_id("conversation").filter(has_text=evil.username).click()
    expect(page.get_by_test_id("message-body").filter(has_text="dm <b>bold?</b>")).to_have_count(1)
    assert page.evaluate("() => window.__pwned === undefined")


def test_profile_rename_and_key_rotation_reconnect(server: LiveServer, people: People) -> None:
    alice, bob = server.register(), server.register()
    a = people.open(server, alice)
    b = people.open(server, bob)
    a.get_by_test_id("profile-open").click()
    new_name = server.unique("renamed")
    a.get_by_test_id("rename-input").fill(new_name)
    a.get_by_test_id("rename-submit").click()
    expect(a.get_by_test_id("profile-status")).to_have_text("Username changed")
    a.get_by_test_id("rotate-key").click()
    expect(a.get_by_test_id("rotated-key")).to_be_visible()
    new_key = a.get_by_test_id("rotated-key-value").inner_text()
    assert new_key and new_key != alice.api_key
    a.get_by_test_id("profile-close").click()
    # The page reconnects with the new key and goes on working; the old key is dead.
    expect(a.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
    send(a, "after rotation")
    expect(message(a, "after rotation")).to_have_attribute("data-status", "read")
    expect(b.get_by_test_id("message-author").filter(has_text=new_name)).to_have_count(1)
    with httpx.Client(base_url=server.http_url) as http:
        assert http.get("/users/me", headers={"X-API-Key": alice.api_key}).status_code == 401
    # A reload signs in again from sessionStorage with the new key.
    a.reload()
    expect(a.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")


def test_register_shows_the_key_once_then_chats(server: LiveServer, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    try:
        page = context.new_page()
        page.goto(server.http_url + "/")
        page.get_by_test_id("register-username").fill(server.unique("newbie"))
        page.get_by_test_id("register-submit").click()
        expect(page.get_by_test_id("new-key")).to_be_visible()
        expect(page.get_by_test_id("new-key")).to_contain_text("shown only once")
        key = page.get_by_test_id("new-key-value").inner_text()
        assert len(key) >= 32
        # The copy button puts exactly the key on the clipboard, and says so.
        page.get_by_test_id("new-key-copy").click()
        expect(page.get_by_test_id("new-key-copied")).to_have_text("Copied")
        assert page.evaluate("() => navigator.clipboard.readText()") == key
        page.get_by_test_id("new-key-remember").check()
        page.get_by_test_id("new-key-continue").click()
        expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
        assert page.evaluate("() => localStorage.length") == 1
        page.get_by_test_id("sign-out").click()
        expect(page.get_by_test_id("signin")).to_be_visible()
        assert page.evaluate("() => localStorage.length + sessionStorage.length") == 0
        # Without "remember me" the key lives in this tab only (sessionStorage).
        page.get_by_test_id("signin-key").fill(key)
        page.get_by_test_id("signin-submit").click()
        expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
        assert page.evaluate("() => [localStorage.length, sessionStorage.length]") == [0, 1]
    finally:
        context.close()


def test_screenshots_at_desktop_and_phone_width(
    make_server, people: People, artifacts: Path
) -> None:  # type: ignore[no-untyped-def]
    server: LiveServer = make_server()  # its own, so the people list shows just these
    alice = server.register("Alice", logo="claude-color.png")
    bob = server.register("Bob", logo="mistral-color.png")
    carol = server.register("Carol")
    with httpx.Client(base_url=server.http_url) as http:
        resp = http.post(
            "/bots", json={"username": "Scorebot"}, headers={"X-API-Key": carol.api_key}
        )
        assert resp.status_code == 201, resp.text
        scorebot = resp.json()["api_key"]
    a = people.open(server, alice)
    b = people.open(server, bob, width=390, height=844)
    send(b, "Morning! Anyone tried the new **bot API**?")
    send(a, "Yes: `client.send_message()` and you are done. Docs: https://example.org/docs")
    expect(
        message(b, "Yes: client.send_message() and you are done. Docs: https://example.org/docs")
    ).to_have_count(1)
    with TokenBowlClient(api_key=scorebot, base_url=server.http_url) as bot:
        bot.send_message("Kickoff in *10 minutes*: Bears at Packers")
    expect(message(a, "Kickoff in 10 minutes: Bears at Packers")).to_have_attribute(
        "data-bot", "true"
    )
    b.get_by_test_id("composer-input").press_sequentially("Nice, tha")
    expect(a.get_by_test_id("typing")).to_have_text("Bob is typing…")
    a.screenshot(path=str(artifacts / "desktop.png"))
    b.screenshot(path=str(artifacts / "phone.png"))
    b.get_by_test_id("menu-toggle").click()
    expect(b.get_by_test_id("sidebar")).to_be_visible()
    b.screenshot(path=str(artifacts / "phone-menu.png"))
    assert (artifacts / "desktop.png").stat().st_size > 0
