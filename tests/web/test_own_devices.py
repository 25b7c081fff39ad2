"""One person on two pages (two tabs, or a phone and a laptop): what they send on one shows
on the other live, and after the other was offline, once each."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.conftest import LiveServer
from tests.web.conftest import People, message, send


def conversation(page: Page, key: str):  # type: ignore[no-untyped-def]
    return page.locator(f'[data-testid="conversation"][data-key="{key}"]')


def test_what_i_send_on_one_page_shows_on_my_other_page(server: LiveServer, people: People) -> None:
    alice, bob = server.register(), server.register()
    laptop = people.open(server, alice)
    phone = people.open(server, alice, width=390, height=844)
    tag = server.unique("t")

    send(laptop, f"room from the laptop {tag}")
    on_phone = message(phone, f"room from the laptop {tag}")
    expect(on_phone).to_have_count(1)
    expect(on_phone).to_have_class("message mine")
    expect(on_phone).to_have_attribute("data-status", "sent")
    # The sending page shows it once: its pending send and the copy are the same message.
    expect(message(laptop, f"room from the laptop {tag}")).to_have_count(1)
    expect(message(laptop, f"room from the laptop {tag}")).to_have_attribute("data-status", "sent")

    # A DM from the laptop opens the conversation on the phone too.
    laptop.locator(f'[data-testid="person"][data-username="{bob.username}"]').click()
    send(laptop, f"dm from the laptop {tag}")
    phone.get_by_test_id("menu-toggle").click()
    conversation(phone, f"dm:{bob.username}").click()
    expect(message(phone, f"dm from the laptop {tag}")).to_have_count(1)
    expect(conversation(phone, f"dm:{bob.username}").get_by_test_id("unread-badge")).to_have_count(
        0
    )

    # The phone goes offline; meanwhile Alice writes from the laptop and from a script.
    phone.context.set_offline(True)
    expect(phone.get_by_test_id("connection-state")).to_have_attribute("data-state", "offline")
    send(laptop, f"while the phone was away {tag}")
    expect(message(laptop, f"while the phone was away {tag}")).to_have_attribute(
        "data-status", "sent"
    )
    with httpx.Client(base_url=server.http_url) as http:
        resp = http.post(
            "/messages",
            json={"content": f"from a script {tag}", "to_username": bob.username},
            headers={"X-API-Key": alice.api_key},
        )
        assert resp.status_code == 201
    expect(message(laptop, f"from a script {tag}")).to_have_count(1)
    phone.context.set_offline(False)
    expect(phone.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
    expect(message(phone, f"while the phone was away {tag}")).to_have_count(1)
    expect(message(phone, f"from a script {tag}")).to_have_count(1)
    bodies = [t for t in phone.get_by_test_id("message-body").all_inner_texts() if t.endswith(tag)]
    assert bodies == [
        f"dm from the laptop {tag}",
        f"while the phone was away {tag}",
        f"from a script {tag}",
    ]
