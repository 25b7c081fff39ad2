"""Edits and deletes reach open pages live: new text marked edited, a deleted message gone
with its unread badge, and both still right after a reload."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.web.conftest import People, message


def test_edits_and_deletes_show_live_and_after_a_reload(server: LiveServer, people: People) -> None:
    alice, bob = server.register(), server.register()
    b = people.open(server, bob)
    headers = {"X-API-Key": alice.api_key}
    with httpx.Client(base_url=server.http_url, headers=headers) as http:
        said = f"first draft {alice.username}"
        room = http.post("/messages", json={"content": said}).json()
        expect(message(b, said)).to_have_count(1)

        fixed = f"second draft {alice.username}"
        assert http.patch(f"/messages/{room['id']}", json={"content": fixed}).status_code == 200
        edited = message(b, fixed)
        expect(edited).to_have_count(1)
        expect(edited.get_by_test_id("message-edited")).to_have_text("(edited)")
        expect(message(b, said)).to_have_count(0)

        # A DM while Bob looks at the room: a badge, which the delete takes away.
        secret = f"oops {alice.username}"
        dm = http.post("/messages", json={"content": secret, "to_username": bob.username}).json()
        badge = b.locator(
            f'[data-testid="conversation"][data-key="dm:{alice.username}"]'
        ).get_by_test_id("unread-badge")
        expect(badge).to_have_text("1")
        assert http.delete(f"/messages/{dm['id']}").status_code == 204
        expect(badge).to_have_count(0)

    # The page's history agrees after a reload: edited text, marked, and no deleted DM.
    b.reload()
    expect(b.get_by_test_id("connection-state")).to_have_attribute("data-state", "connected")
    expect(message(b, fixed).get_by_test_id("message-edited")).to_have_text("(edited)")
    # Its only DM was deleted, so there is no conversation with Alice to show.
    expect(
        b.locator(f'[data-testid="conversation"][data-key="dm:{alice.username}"]')
    ).to_have_count(0)
    expect(message(b, secret)).to_have_count(0)
