"""Read marks that outlive the page, and other people's names and logos changing live."""

from __future__ import annotations

import time

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import Account, LiveServer
from tests.web.conftest import People, message, send


def conversation(page: Page, key: str):  # type: ignore[no-untyped-def]
    return page.locator(f'[data-testid="conversation"][data-key="{key}"]')


def person(page: Page, username: str):  # type: ignore[no-untyped-def]
    return page.locator(f'[data-testid="person"][data-username="{username}"]')


def post(server: LiveServer, who: Account, content: str, to: str | None = None) -> None:
    body = {"content": content} if to is None else {"content": content, "to_username": to}
    with httpx.Client(base_url=server.http_url) as http:
        resp = http.post("/messages", json=body, headers={"X-API-Key": who.api_key})
        assert resp.status_code == 201, resp.text


def test_read_marks_made_while_away_show_and_survive_a_reload(
    server: LiveServer, people: People
) -> None:
    alice, bob = server.register(), server.register()
    room_text = f"posted before anyone looked {server.unique()}"
    dm_text = f"a DM before anyone looked {server.unique()}"
    post(server, alice, room_text)
    post(server, alice, dm_text, to=bob.username)
    # Bob reads both while Alice has no page open: the receipts reach no one live.
    b = people.open(server, bob)
    expect(message(b, room_text)).to_have_count(1)
    # The room was read as it came into view; the server says when that mark is in.
    with httpx.Client(base_url=server.http_url) as http:
        deadline = time.monotonic() + 20
        while True:
            counts = http.get("/messages/unread/count", headers={"X-API-Key": bob.api_key}).json()
            if counts["unread_room_messages"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert counts["unread_room_messages"] == 0, counts
    dm_badge = conversation(b, f"dm:{alice.username}").get_by_test_id("unread-badge")
    expect(dm_badge).to_have_text("1")
    conversation(b, f"dm:{alice.username}").click()
    expect(message(b, dm_text)).to_have_count(1)
    expect(dm_badge).to_have_count(0)  # cleared by the mark's reply
    b.context.close()

    # Alice opens the page afterwards: her messages show as read, and still do after a reload.
    a = people.open(server, alice)
    for attempt in range(2):
        if attempt:
            a.reload()
            expect(a.get_by_test_id("connection-state")).to_have_attribute(
                "data-state", "connected"
            )
            conversation(a, "room").click()
        mine = message(a, room_text)
        expect(mine).to_have_attribute("data-status", "read")
        expect(mine.get_by_test_id("message-status")).to_have_text("Read by 1")
        conversation(a, f"dm:{bob.username}").click()
        expect(message(a, dm_text)).to_have_attribute("data-status", "read")
        expect(message(a, dm_text).get_by_test_id("message-status")).to_have_text("Read")


def test_a_rename_and_a_new_logo_show_live_on_every_page(
    server: LiveServer, people: People
) -> None:
    alice, bob = server.register(), server.register()
    a = people.open(server, alice)
    b = people.open(server, bob)
    text = f"hello from alice {server.unique()}"
    send(a, text)
    post(server, alice, "a DM to keep", to=bob.username)
    on_b = message(b, text)
    expect(on_b).to_have_count(1)
    expect(on_b.get_by_test_id("avatar")).not_to_have_attribute("data-logo", "gemini-color.png")
    expect(conversation(b, f"dm:{alice.username}").get_by_test_id("unread-badge")).to_have_text("1")

    # Alice picks a logo in her profile: both pages draw it at once.
    a.get_by_test_id("profile-open").click()
    expect(a.get_by_test_id("logo-select").locator("option")).not_to_have_count(0)
    a.get_by_test_id("logo-select").select_option("gemini-color.png")
    a.get_by_test_id("logo-submit").click()
    expect(a.get_by_test_id("profile-status")).to_have_text("Logo saved")
    for page in (a, b):
        avatar = message(page, text).get_by_test_id("avatar")
        expect(avatar).to_have_attribute("data-logo", "gemini-color.png")
        expect(avatar.locator("svg rect")).not_to_have_count(0)
    expect(person(b, alice.username).get_by_test_id("avatar")).to_have_attribute(
        "data-logo", "gemini-color.png"
    )

    # And a new name: Bob's page moves everything to it (message, people, DM and its badge).
    new_name = server.unique("renamed")
    a.get_by_test_id("rename-input").fill(new_name)
    a.get_by_test_id("rename-submit").click()
    expect(a.get_by_test_id("profile-status")).to_have_text("Username changed")
    a.get_by_test_id("profile-close").click()
    expect(on_b.get_by_test_id("message-author")).to_have_text(new_name)
    expect(person(b, new_name)).to_have_count(1)
    expect(person(b, alice.username)).to_have_count(0)
    expect(conversation(b, f"dm:{new_name}").get_by_test_id("unread-badge")).to_have_text("1")
    expect(conversation(b, f"dm:{alice.username}")).to_have_count(0)
    expect(message(a, text).get_by_test_id("message-author")).to_have_text(new_name)
    # The DM is still one conversation under the new name, and answering it works.
    conversation(b, f"dm:{new_name}").click()
    expect(message(b, "a DM to keep")).to_have_count(1)
    send(b, "got it")
    expect(message(b, "got it")).to_have_attribute("data-status", "sent")
    conversation(a, f"dm:{bob.username}").click()
    expect(message(a, "got it")).to_have_count(1)


def test_the_offline_state_is_shown_and_left_with_a_resume(
    server: LiveServer, people: People
) -> None:
    alice, bob = server.register(), server.register()
    a = people.open(server, alice)
    state = a.get_by_test_id("connection-state")
    a.context.set_offline(True)
    expect(state).to_have_attribute("data-state", "offline")
    expect(state).to_have_text("Offline")
    text = f"sent while you were offline {server.unique()}"
    post(server, bob, text)
    a.context.set_offline(False)
    expect(state).to_have_attribute("data-state", "connected")
    expect(message(a, text)).to_have_count(1)
