"""Two people chat in two browser contexts: room and DM, typing, sent and read marks,
unread badges, presence."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.web.conftest import People, message, send


def conversation(page: Page, key: str):  # type: ignore[no-untyped-def]
    return page.locator(f'[data-testid="conversation"][data-key="{key}"]')


def test_two_people_chat_in_the_room_and_a_dm(server: LiveServer, people: People) -> None:
    alice, bob = server.register(), server.register()
    a = people.open(server, alice)
    b = people.open(server, bob)

    # Presence: each sees the other online.
    expect(
        b.locator(f'[data-testid="person"][data-username="{alice.username}"]')
    ).to_have_attribute("data-online", "true")

    # Typing appears on the other page while Alice types, and goes when she sends. The room
    # is shared with other tests, so the text is Alice's own.
    hello = f"hello-{alice.username}-x"
    a.get_by_test_id("composer-input").press_sequentially(hello)
    expect(b.get_by_test_id("typing")).to_have_text(f"{alice.username} is typing…")
    a.get_by_test_id("composer-input").press("Shift+Enter")
    a.get_by_test_id("composer-input").press_sequentially("room")
    a.get_by_test_id("composer-input").press("Enter")
    expect(b.get_by_test_id("typing")).to_have_text("")
    # Shift+Enter made a line break inside one message.
    mine = a.get_by_test_id("message").filter(has_text=hello).last
    expect(mine.get_by_test_id("message-body").locator("br")).to_have_count(1)
    assert mine.get_by_test_id("message-body").inner_text() == f"{hello}\nroom"
    # Bob's page has the room open at the bottom, so it marks it read and Alice sees it.
    expect(mine).to_have_attribute("data-status", "read")
    expect(mine.get_by_test_id("message-status")).to_have_text("Read by 1")
    expect(b.get_by_test_id("message").filter(has_text=hello)).to_have_count(1)

    # A DM started from the people list: Bob, in the room, gets an unread badge.
    a.locator(f'[data-testid="person"][data-username="{bob.username}"]').click()
    expect(a.get_by_test_id("conversation-title")).to_have_text(
        f"Direct messages with {bob.username}"
    )
    send(a, "psst, **bob**")
    dm = message(a, "psst, bob")
    expect(dm).to_have_attribute("data-status", "sent")
    badge = conversation(b, f"dm:{alice.username}").get_by_test_id("unread-badge")
    expect(badge).to_have_text("1")
    expect(dm).to_have_attribute("data-status", "sent")  # not read while Bob looks elsewhere
    conversation(b, f"dm:{alice.username}").click()
    expect(message(b, "psst, bob").locator("strong")).to_have_text("bob")
    expect(badge).to_have_count(0)
    expect(dm).to_have_attribute("data-status", "read")
    expect(dm.get_by_test_id("message-status")).to_have_text("Read")

    # DM typing shows only in the DM, and clears by itself when Alice stops typing.
    a.get_by_test_id("composer-input").press_sequentially("are you")
    expect(b.get_by_test_id("typing")).to_have_text(f"{alice.username} is typing…")
    expect(b.get_by_test_id("typing")).to_have_text("")
    # Bob answers; Alice is in the DM, so she reads it at once.
    send(b, "yes?")
    expect(message(a, "yes?")).to_have_count(1)
    expect(message(b, "yes?")).to_have_attribute("data-status", "read")

    # Alice closes her page: Bob sees her go offline.
    a.context.close()
    expect(
        b.locator(f'[data-testid="person"][data-username="{alice.username}"]')
    ).to_have_attribute("data-online", "false")


def test_unread_badge_counts_room_messages_while_away(
    own_server: LiveServer, people: People
) -> None:
    server = own_server
    alice, bob = server.register(), server.register()
    b = people.open(server, bob)
    b.locator(f'[data-testid="person"][data-username="{alice.username}"]').click()
    a = people.open(server, alice)
    for n in range(3):
        send(a, f"while you were away {n}")
    room_badge = conversation(b, "room").get_by_test_id("unread-badge")
    expect(room_badge).to_have_text("3")
    conversation(b, "room").click()
    expect(room_badge).to_have_count(0)
    expect(message(a, "while you were away 2")).to_have_attribute("data-status", "read")


def test_wrong_key_is_refused_with_a_message(server: LiveServer, browser) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.http_url + "/")
        page.get_by_test_id("signin-key").fill("not-a-key")
        page.get_by_test_id("signin-submit").click()
        expect(page.get_by_test_id("signin-error")).to_have_text("That API key was not accepted.")
        expect(page.get_by_test_id("chat")).to_be_hidden()
    finally:
        context.close()


def test_badges_follow_counts_pushed_after_a_mark_made_elsewhere(
    own_server: LiveServer, people: People
) -> None:
    alice, bob = own_server.register(), own_server.register()
    b = people.open(own_server, bob)
    b.locator(f'[data-testid="person"][data-username="{alice.username}"]').click()
    with httpx.Client(base_url=own_server.http_url) as http:
        sent = [
            http.post(
                "/messages", json={"content": f"n{n}"}, headers={"X-API-Key": alice.api_key}
            ).json()
            for n in range(3)
        ]
        room_badge = conversation(b, "room").get_by_test_id("unread-badge")
        expect(room_badge).to_have_text("3")
        # Bob reads the oldest on another device: the pushed count says 2, and so does the page.
        read = http.post(f"/messages/{sent[0]['id']}/read", headers={"X-API-Key": bob.api_key})
        assert read.status_code == 204
        expect(room_badge).to_have_text("2")
        http.post("/messages/mark-all-read", headers={"X-API-Key": bob.api_key})
        expect(room_badge).to_have_count(0)
