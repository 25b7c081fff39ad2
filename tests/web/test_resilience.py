"""The page across a server restart, a bot posting through the SDK, and a long history."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

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


def test_a_replaced_database_makes_the_page_read_everything_again(
    make_server: Callable[..., LiveServer], people: People, tmp_path: Path
) -> None:
    # SQLite whatever --database says: the test swaps the database file for an older copy,
    # as restoring a backup does. What it checks is the page's answer to resume_gap.
    db_file = tmp_path / "replaced.db"
    server = make_server(DATABASE_URL=f"sqlite+aiosqlite:///{db_file}")
    alice, bob = server.register(), server.register()
    with httpx.Client(base_url=server.http_url, headers={"X-API-Key": bob.api_key}) as http:
        assert http.post("/messages", json={"content": "kept"}).status_code == 201
    backup = tmp_path / "backup.db"
    with sqlite3.connect(db_file) as live, sqlite3.connect(backup) as copy:
        live.backup(copy)
    a = people.open(server, alice)
    with httpx.Client(base_url=server.http_url, headers={"X-API-Key": bob.api_key}) as http:
        for n in range(2):
            assert http.post("/messages", json={"content": f"lost {n}"}).status_code == 201
    expect(message(a, "lost 1")).to_have_count(1)

    # The server comes back on the older database: the page's resume point is beyond its
    # newest message, so the server answers resume_gap instead of a replay.
    server.proc.stop()
    expect(a.get_by_test_id("connection-state")).to_have_attribute("data-state", "reconnecting")
    for leftover in tmp_path.glob("replaced.db*"):
        leftover.unlink()
    backup.rename(db_file)
    server.proc.start()
    with httpx.Client(base_url=server.http_url, headers={"X-API-Key": bob.api_key}) as http:
        assert http.post("/messages", json={"content": "after the restore"}).status_code == 201
    # The page shows what the server holds now: the lost messages are gone, the new one is
    # there once, whether it came in the history read again or live.
    expect(message(a, "after the restore")).to_have_count(1)
    expect(message(a, "lost 0")).to_have_count(0)
    expect(message(a, "lost 1")).to_have_count(0)
    expect(a.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
    assert [t for t in bodies(a) if t in ("kept", "after the restore")] == [
        "kept",
        "after the restore",
    ]
    # And it goes on live from the server's new resume point.
    with httpx.Client(base_url=server.http_url, headers={"X-API-Key": bob.api_key}) as http:
        assert http.post("/messages", json={"content": "live again"}).status_code == 201
    expect(message(a, "live again")).to_have_count(1)


def test_bot_posts_through_the_sdk_while_a_person_watches(
    server: LiveServer, people: People
) -> None:
    person = server.register()
    # A real bot account (POST /bots), made by the person, posting through the Python SDK.
    with httpx.Client(base_url=server.http_url) as http:
        resp = http.post(
            "/bots",
            json={"username": server.unique("beeper"), "emoji": "🤖"},
            headers={"X-API-Key": person.api_key},
        )
        assert resp.status_code == 201, resp.text
        bot_account = resp.json()
    page = people.open(server, person)
    send(page, "hello bot")
    with TokenBowlClient(api_key=bot_account["api_key"], base_url=server.http_url) as bot:
        bot.send_message("beep: `42` is the answer, see https://example.org/docs")
        bot.send_message("beep again")
    said = page.get_by_test_id("message").filter(has_text="beep:")
    body = said.get_by_test_id("message-body")
    expect(body.locator("code")).to_have_text("42")
    expect(body.locator("a")).to_have_attribute("href", "https://example.org/docs")
    # Marked as automated, with the bot's emoji as its avatar; the person's own is not.
    expect(said).to_have_attribute("data-bot", "true")
    expect(said.get_by_test_id("bot-tag")).to_have_text("bot")
    expect(said.get_by_test_id("avatar")).to_have_text("🤖")
    expect(message(page, "hello bot").get_by_test_id("bot-tag")).to_have_count(0)
    expect(message(page, "beep again")).to_have_attribute("data-bot", "true")
    # The people list marks the bot too.
    bot_person = page.locator(f'[data-testid="person"][data-username="{bot_account["username"]}"]')
    expect(bot_person.get_by_test_id("bot-tag")).to_have_count(1)


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
