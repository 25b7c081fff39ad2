"""The SDK and edits and deletes against a real server: callbacks and typed events live and
after a resume, the WebSocket and REST methods, errors as exceptions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.conftest import LiveServer
from tests.tcpproxy import TcpProxy
from tests.waiting import eventually
from token_bowl_chat import (
    AsyncTokenBowlClient,
    NotFoundError,
    PermissionDeniedError,
    TokenBowlClient,
    TokenBowlWebSocket,
)
from token_bowl_chat.events import (
    Event,
    MessageDeletedEvent,
    MessageEditedEvent,
    MessageEvent,
)
from token_bowl_chat.models import MessageResponse

Seen = list[tuple[str, str, str | None]]


def recorder(seen: Seen) -> dict[str, Callable[..., None]]:
    """Callbacks that note (kind, message id, content) in the order they fire."""
    return {
        "on_message": lambda m: seen.append(("message", m.id, m.content)),
        "on_message_edited": lambda m: seen.append(("edited", m.id, m.content)),
        "on_message_deleted": lambda message_id: seen.append(("deleted", message_id, None)),
    }


async def test_another_users_sdk_sees_edits_and_deletes_live_as_callbacks_and_events(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    seen: Seen = []
    events: list[Event] = []
    async with (
        TokenBowlWebSocket(
            api_key=bob.api_key, base_url=live_server.http_url, **recorder(seen)
        ) as bob_ws,
        TokenBowlWebSocket(api_key=alice.api_key, base_url=live_server.http_url) as alice_ws,
    ):

        async def collect() -> None:
            async for event in bob_ws.events():
                events.append(event)

        collector = asyncio.create_task(collect())
        await asyncio.sleep(0)  # the stream is registered before anything arrives
        sent = await alice_ws.send_message("helo")
        edited = await alice_ws.edit_message(sent.id, "hello")
        assert isinstance(edited, MessageResponse)
        assert (edited.id, edited.content) == (sent.id, "hello") and edited.edited_at
        deleted = await alice_ws.delete_message(sent.id)
        assert deleted == MessageDeletedEvent(sent.id, deleted.deleted_at)
        assert deleted.deleted_at

        want = [
            ("message", sent.id, "helo"),
            ("edited", sent.id, "hello"),
            ("deleted", sent.id, None),
        ]
        await eventually(lambda: seen == want, 10, f"bob saw {seen}")
        await eventually(lambda: len(events) >= 3, 10, f"events {events}")
        collector.cancel()
    assert [type(e) for e in events] == [MessageEvent, MessageEditedEvent, MessageDeletedEvent]
    assert isinstance(events[1], MessageEditedEvent) and events[1].message.edited_at
    assert isinstance(events[2], MessageDeletedEvent) and events[2].message_id == sent.id


async def test_edits_and_deletes_made_while_away_fire_after_the_resume_in_seq_order(
    live_server: LiveServer,
) -> None:
    server = live_server
    proxy = TcpProxy(server.proc.port)
    await proxy.start()
    me, alice = server.register(), server.register()
    seen: Seen = []
    connects: list[bool] = []

    async def on_connect() -> None:
        connects.append(True)

    ws = TokenBowlWebSocket(
        api_key=me.api_key,
        base_url=proxy.http_url,
        on_connect=on_connect,
        reconnect_initial_delay=0.05,
        reconnect_max_delay=0.2,
        **recorder(seen),
    )
    await ws.connect()
    async with AsyncTokenBowlClient(api_key=alice.api_key, base_url=server.http_url) as rest:
        kept = await rest.send_message("kept")
        doomed = await rest.send_message("doomed")
        dm = await rest.send_message("psst", to_username=me.username)
        await eventually(lambda: len(seen) == 3, 10, f"saw {seen}")

        proxy.pause_downstream()  # from here the client hears nothing
        await rest.edit_message(kept.id, "kept v2")
        await rest.delete_message(doomed.id)
        fresh = await rest.send_message("fresh")
        await rest.edit_message(dm.id, "psst v2")
        await rest.edit_message(fresh.id, "fresh v2")
        proxy.drop_all()  # what the server sent meanwhile is lost with the connection
        proxy.resume_downstream()

        want = [
            ("edited", kept.id, "kept v2"),
            ("deleted", doomed.id, None),
            ("message", fresh.id, "fresh v2"),
            ("edited", dm.id, "psst v2"),
            ("edited", fresh.id, "fresh v2"),
        ]
        await eventually(lambda: len(seen) >= 3 + len(want), 20, f"saw {seen}")
        await asyncio.sleep(0.2)  # anything more would be a duplicate
        assert seen[3:] == want
        assert len(connects) == 2 and ws.last_seq is not None
        # Live again: a later edit arrives once.
        await rest.edit_message(kept.id, "kept v3")
        await eventually(lambda: seen[-1] == ("edited", kept.id, "kept v3"), 10, f"{seen}")
    await ws.disconnect()
    await proxy.close()
    assert seen.count(("edited", kept.id, "kept v3")) == 1


async def test_sdk_errors_for_bad_edits_and_deletes(live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    async with (
        TokenBowlWebSocket(api_key=alice.api_key, base_url=live_server.http_url) as alice_ws,
        TokenBowlWebSocket(api_key=bob.api_key, base_url=live_server.http_url) as bob_ws,
    ):
        sent = await alice_ws.send_message("mine")
        with pytest.raises(PermissionDeniedError):
            await bob_ws.edit_message(sent.id, "yours")
        with pytest.raises(PermissionDeniedError):
            await bob_ws.delete_message(sent.id)
        with pytest.raises(ValueError):
            await alice_ws.edit_message(sent.id, "")
        with pytest.raises(NotFoundError) as unknown:
            await alice_ws.edit_message("00000000-0000-4000-8000-000000000000", "x")
        assert unknown.value.code == "message_not_found"
        await alice_ws.delete_message(sent.id)
        with pytest.raises(NotFoundError) as twice:
            await alice_ws.delete_message(sent.id)
        assert twice.value.code == "message_deleted"
        with pytest.raises(NotFoundError):
            await alice_ws.edit_message(sent.id, "back")


async def test_rest_clients_edit_and_delete_own_and_admin_methods(live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    admin = live_server.admin
    with TokenBowlClient(api_key=alice.api_key, base_url=live_server.http_url) as sync:
        message = sync.send_message("draft")
        edited = sync.edit_message(message.id, "final")
        assert edited.content == "final" and edited.edited_at
        sync.delete_message(message.id)
        with pytest.raises(NotFoundError):
            sync.delete_message(message.id)
    async with (
        AsyncTokenBowlClient(api_key=bob.api_key, base_url=live_server.http_url) as bob_rest,
        AsyncTokenBowlClient(api_key=admin.api_key, base_url=live_server.http_url) as moderator,
    ):
        posted = await bob_rest.send_message("rude")
        with pytest.raises(PermissionDeniedError):
            await bob_rest.admin_get_message(posted.id)
        assert (await moderator.admin_get_message(posted.id)).content == "rude"
        fixed = await moderator.admin_update_message(posted.id, "polite")
        assert fixed.content == "polite" and fixed.edited_at
        assert (await bob_rest.get_message(posted.id)).content == "polite"
        await moderator.admin_delete_message(posted.id)
        with pytest.raises(NotFoundError):
            await bob_rest.get_message(posted.id)
        with pytest.raises(NotFoundError):
            await moderator.admin_delete_message(posted.id)
