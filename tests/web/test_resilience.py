"""The page across a server restart, a bot posting through the SDK, and a long history."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.web.conftest import People, message, send
from token_bowl_chat import TokenBowlClient


def bodies(page: Page) -> list[str]:
    return page.get_by_test_id("message-body").all_inner_texts()


def test_server_restart_resumes_without_gaps_or_doubles(make_server, people: People) -> None:  # type: ignore[no-untyped-def]
    server: LiveServer = make_server()
    alice, bob, carol = server.register(), server.register(), server.register()
    a = people.open(server, alice)
    b = people.open(server, bob)
    send(a, "before restart")
    expect(message(b, "before restart")).to_have_count(1)

    server.proc.stop()
    for page in (a, b):
        expect(page.get_by_test_id("connection-state")).to_have_attribute(
            "data-state", "reconnecting"
        )
    # Written while the socket is down: it waits, pending, and goes out on reconnect.
    send(a, "typed while down")
    expect(message(a, "typed while down")).to_have_attribute("data-status", "pending")

    server.proc.start()
    # Carol posts the moment the server is back, before the pages have reconnected (their
    # backoff is at least a quarter second): they get it through the resume replay.
    with TokenBowlClient(api_key=carol.api_key, base_url=server.http_url) as bot:
        for n in range(5):
            bot.send_message(f"after restart {n}")
    for page in (a, b):
        expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
    expected = ["before restart", "typed while down"] + [f"after restart {n}" for n in range(5)]
    for page in (a, b):
        for text in expected:
            expect(message(page, text)).to_have_count(1)
    expect(message(a, "typed while down")).to_have_attribute("data-status", "read")
    # Same messages, each once, in seq order on both pages.
    order = [t for t in bodies(b) if t in expected]
    assert order == [t for t in bodies(a) if t in expected]
    assert sorted(order) == sorted(expected)
    assert order.index("before restart") < order.index("after restart 0")


def test_bot_posts_through_the_sdk_while_a_person_watches(
    server: LiveServer, people: People
) -> None:
    person, bot_account = server.register(), server.register()
    page = people.open(server, person)
    with TokenBowlClient(api_key=bot_account.api_key, base_url=server.http_url) as bot:
        bot.send_message("beep: `42` is the answer, see https://example.org/docs")
        bot.send_message("a DM for you", to_username=person.username)
    body = page.get_by_test_id("message-body").filter(has_text="beep")
    expect(body.locator("code")).to_have_text("42")
    expect(body.locator("a")).to_have_attribute("href", "https://example.org/docs")
    dm_badge = page.locator(
        f'[data-testid="conversation"][data-key="dm:{bot_account.username}"] '
        '[data-testid="unread-badge"]'
    )
    expect(dm_badge).to_have_text("1")


def test_older_history_loads_on_scroll_and_keeps_the_place(
    own_server: LiveServer, people: People
) -> None:
    # Its own server: scrolling to "the beginning" of a shared server's room would page
    # through every room message the rest of the suite sent.
    server = own_server
    reader, writer = server.register(), server.register()
    with httpx.Client(base_url=server.http_url) as http:
        for n in range(130):
            resp = http.post(
                "/messages",
                json={"content": f"history {n:03d}"},
                headers={"X-API-Key": writer.api_key},
            )
            assert resp.status_code == 201
    page = people.open(server, reader)
    expect(message(page, "history 129")).to_be_in_viewport()
    expect(message(page, "history 080")).to_have_count(1)  # the newest page of 50
    expect(message(page, "history 079")).to_have_count(0)
    anchor = message(page, "history 080")
    page.get_by_test_id("messages").evaluate("el => { el.scrollTop = 0; }")
    expect(message(page, "history 079")).to_have_count(1)
    # The message that was on top is still on screen: the view did not jump to the start.
    expect(anchor).to_be_in_viewport()
    # Keep scrolling up to the beginning; every message is there once, in order.
    status = page.get_by_test_id("history-status")
    for _ in range(10):
        if status.inner_text().startswith("This is the beginning"):
            break
        shown = page.get_by_test_id("message").count()
        page.get_by_test_id("messages").evaluate("el => { el.scrollTop = 0; }")
        page.wait_for_function(
            """n => document.querySelectorAll('[data-testid=message]').length > n
                || document.querySelector('[data-testid=history-status]').textContent
                    .startsWith('This is the beginning')""",
            arg=shown,
        )
    expect(page.get_by_test_id("history-status")).to_have_text(
        "This is the beginning of the conversation."
    )
    texts = [t for t in bodies(page) if t.startswith("history ")]
    assert texts == [f"history {n:03d}" for n in range(130)]
