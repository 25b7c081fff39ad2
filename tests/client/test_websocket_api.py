"""``TokenBowlWebSocket`` against the real server: every method and callback of the seed
document (websocket-features.md), with the improvements: replies, async callbacks, events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Account, LiveServer
from tests.waiting import eventually
from token_bowl_chat import (
    AuthenticationError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    TokenBowlWebSocket,
)
from token_bowl_chat.events import (
    ConnectedEvent,
    DisconnectedEvent,
    Event,
    MessageEvent,
    ReadReceiptEvent,
    TypingEvent,
    TypingStoppedEvent,
    UnreadCountEvent,
)
from token_bowl_chat.models import MessageResponse, UnreadCountResponse


def client(server: LiveServer, account: Account, **kwargs: Any) -> TokenBowlWebSocket:
    return TokenBowlWebSocket(api_key=account.api_key, base_url=server.http_url, **kwargs)


async def start_clean(server: LiveServer, account: Account, **kwargs: Any) -> TokenBowlWebSocket:
    """Connected, with everything already in the shared room marked read."""
    ws = client(server, account, **kwargs)
    await ws.connect()
    await ws.mark_all_messages_read()
    return ws


async def test_send_message_returns_the_stored_message(live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    received: list[MessageResponse] = []
    async with (
        client(live_server, alice) as a,
        client(live_server, bob, on_message=received.append),
    ):
        room = await a.send_message("Hello! Did you read this?")
        assert room.content == "Hello! Did you read this?" and room.from_username == alice.username
        assert room.message_type == "room" and room.seq is not None and room.id
        dm = await a.send_message("just you", to_username=bob.username)
        assert dm.to_username == bob.username and dm.message_type == "direct"
        assert dm.seq is not None and dm.seq > room.seq
        await eventually(lambda: len(received) == 2)
        assert [m.id for m in received] == [room.id, dm.id]


async def test_send_errors_raise(live_server: LiveServer) -> None:
    alice, viewer = live_server.register(), live_server.register(role="viewer")
    async with client(live_server, alice) as a, client(live_server, viewer) as v:
        with pytest.raises(NotFoundError) as missing:
            await a.send_message("hi", to_username="nobody-at-all")
        assert missing.value.code == "user_not_found"
        with pytest.raises(PermissionDeniedError):
            await v.send_message("viewers cannot post")
        for bad in ("", "x" * 10_001, 42):
            with pytest.raises(ValueError):
                await a.send_message(bad)  # type: ignore[arg-type]
        assert await a.send_message("still fine")


async def test_read_receipts_and_every_mark_method(live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    receipts: list[tuple[str, str]] = []
    counts: list[UnreadCountResponse] = []
    a = await start_clean(
        live_server, alice, on_read_receipt=lambda mid, who: receipts.append((mid, who))
    )
    b = await start_clean(live_server, bob, on_unread_count=counts.append)
    first = await a.send_message("one")
    room = [await a.send_message(f"room {i}") for i in range(3)]
    dms = [await a.send_message(f"dm {i}", to_username=bob.username) for i in range(2)]

    count = await b.get_unread_count()
    assert count is not None and (count.unread_room_messages, count.unread_direct_messages) == (
        4,
        2,
    )
    await eventually(lambda: count in counts)  # the documented callback fires too

    await b.mark_message_read(first.id)
    await eventually(lambda: (first.id, bob.username) in receipts)
    assert await b.mark_room_messages_read() == 3
    assert await b.mark_direct_messages_read(alice.username) == 2
    final = await b.get_unread_count()
    assert final is not None and final.total_unread == 0
    await eventually(lambda: len(receipts) == 6)
    assert {mid for mid, _ in receipts} == {first.id, *(m.id for m in room + dms)}
    assert {who for _, who in receipts} == {bob.username}
    assert await b.mark_all_messages_read() == 0
    # Each mark that changed something also pushed the new counts to bob's connections.
    await eventually(lambda: counts[-1].total_unread == 0)
    assert [c.total_unread for c in counts[-4:]] == [5, 2, 0, 0]
    await a.disconnect()
    await b.disconnect()


async def test_marking_an_unknown_message_reports_to_on_error(live_server: LiveServer) -> None:
    errors: list[Exception] = []
    async with client(live_server, live_server.register(), on_error=errors.append) as ws:
        await ws.mark_message_read("msg_123456789")  # the seed document's own example id
        await eventually(lambda: len(errors) == 1)
        assert isinstance(errors[0], NotFoundError)


async def test_typing_callbacks_and_local_expiry(live_server: LiveServer) -> None:
    alice, bob, carol = (live_server.register() for _ in range(3))
    seen: list[tuple[str, str, str | None]] = []
    a = client(live_server, alice)
    b = client(
        live_server,
        bob,
        on_typing=lambda who, to: seen.append(("typing", who, to)),
        on_typing_stopped=lambda who, to: seen.append(("stopped", who, to)),
        typing_timeout=0.5,  # shorter than the server's 5 s, so the client expires it first
    )
    c = client(live_server, carol, on_typing=lambda who, to: seen.append(("carol", who, to)))
    for ws in (a, b, c):
        await ws.connect()
    await a.send_typing_indicator()
    await eventually(lambda: ("typing", alice.username, None) in seen)
    assert b.typing_users == {alice.username}
    await eventually(lambda: ("stopped", alice.username, None) in seen, timeout=3)
    assert b.typing_users == frozenset()

    await a.send_typing_indicator(to_username=bob.username)
    await eventually(lambda: ("typing", alice.username, bob.username) in seen)
    await a.send_message("done", to_username=bob.username)
    await eventually(lambda: ("stopped", alice.username, bob.username) in seen)
    # Room typing reached carol; the DM typing did not.
    await eventually(lambda: ("carol", alice.username, None) in seen)
    assert ("carol", alice.username, bob.username) not in seen
    for ws in (a, b, c):
        await ws.disconnect()


async def test_async_callbacks_are_awaited_and_may_use_the_client(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    receipts: list[str] = []
    marked: list[str] = []
    b: TokenBowlWebSocket

    async def on_message(message: MessageResponse) -> None:
        await b.mark_message_read(message.id)  # awaiting the client from a callback
        marked.append(message.id)

    async with (
        client(live_server, alice, on_read_receipt=lambda mid, _: receipts.append(mid)) as a,
        client(live_server, bob, on_message=on_message) as b,
    ):
        sent = await a.send_message("mark me")
        await eventually(lambda: sent.id in receipts)
        # The receipt may reach alice before the mark's reply reaches bob's callback.
        await eventually(lambda: marked == [sent.id], what=f"callback did not finish: {marked}")


async def test_a_raising_callback_goes_to_on_error_and_receiving_goes_on(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    errors: list[Exception] = []
    contents: list[str] = []

    def on_message(message: MessageResponse) -> None:
        contents.append(message.content)
        if message.content == "boom":
            raise RuntimeError("callback failed")

    async with (
        client(live_server, alice) as a,
        client(live_server, bob, on_message=on_message, on_error=errors.append),
    ):
        await a.send_message("boom")
        await a.send_message("after")
        await eventually(lambda: contents == ["boom", "after"])
        assert len(errors) == 1 and str(errors[0]) == "callback failed"


async def test_events_iterator_yields_typed_events(live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    got: list[Event] = []
    async with client(live_server, alice) as a:
        b = client(live_server, bob)

        async def consume() -> None:
            async for event in b.events():
                got.append(event)

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0)
        await b.connect()
        await b.mark_all_messages_read()
        await a.send_typing_indicator()
        sent = await a.send_message("typed events")
        await b.mark_message_read(sent.id)
        await b.get_unread_count()
        # Wait for each kind asserted below: on two nodes alice's typing and message reach
        # bob through the other node (Redis), after bob's own replies.
        wanted = {UnreadCountEvent, TypingEvent, TypingStoppedEvent, MessageEvent}
        await eventually(lambda: wanted <= {type(e) for e in got})
        await b.disconnect()
        await asyncio.wait_for(consumer, 5)  # the stream ends with the connection
    kinds = [type(e) for e in got]
    assert kinds[0] is ConnectedEvent and kinds[-1] is DisconnectedEvent
    assert TypingEvent in kinds and TypingStoppedEvent in kinds
    message = next(e for e in got if isinstance(e, MessageEvent))
    assert message.message.id == sent.id
    assert not any(isinstance(e, ReadReceiptEvent) for e in got)  # receipts go to alice


async def test_connection_lifecycle(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = live_server.register()
    events: list[str] = []
    ws = TokenBowlWebSocket(
        base_url=live_server.http_url.replace("http://", "ws://") + "/ws",
        on_connect=lambda: events.append("connect"),
        on_disconnect=lambda: events.append("disconnect"),
    )
    with pytest.raises(ValueError):
        await ws.mark_all_messages_read()  # not connected yet
    monkeypatch.delenv("TOKEN_BOWL_CHAT_API_KEY", raising=False)
    with pytest.raises(AuthenticationError):
        await ws.connect()
    ws.api_key = alice.api_key
    await ws.connect()
    assert ws.is_connected and events == ["connect"]
    await ws.disconnect()
    await ws.disconnect()
    assert not ws.is_connected and events == ["connect", "disconnect"]
    with pytest.raises(ValueError):
        await ws.send_message("after disconnect")


async def test_key_from_environment_and_refused_keys(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = live_server.register()
    monkeypatch.setenv("TOKEN_BOWL_CHAT_API_KEY", alice.api_key)
    monkeypatch.setenv("TOKEN_BOWL_CHAT_BASE_URL", live_server.http_url)
    async with TokenBowlWebSocket() as ws:
        assert ws.is_connected
    with pytest.raises(AuthenticationError):
        await TokenBowlWebSocket(api_key="f" * 64).connect()


async def test_unreachable_server_is_a_network_error() -> None:
    from tests.serverproc import free_port

    ws = TokenBowlWebSocket(api_key="k" * 64, base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(NetworkError):
        await ws.connect()


async def test_rotated_key_stops_reconnecting(live_server: LiveServer) -> None:
    alice = live_server.register()
    from token_bowl_chat import AsyncTokenBowlClient

    errors: list[Exception] = []
    events: list[str] = []
    ws = client(
        live_server,
        alice,
        on_error=errors.append,
        on_disconnect=lambda: events.append("disconnect"),
        reconnect_initial_delay=0.05,
    )
    await ws.connect()
    async with AsyncTokenBowlClient(api_key=alice.api_key, base_url=live_server.http_url) as rest:
        await rest.regenerate_api_key()
    await eventually(lambda: events == ["disconnect"])
    # 1008: no retry with a dead key, and the application hears why it stopped.
    await eventually(lambda: len(errors) == 1, what="on_error not told of the dead key")
    assert isinstance(errors[0], AuthenticationError) and not ws.is_connected
    await asyncio.sleep(0.3)
    assert events == ["disconnect"] and len(errors) == 1
    with pytest.raises(ValueError):
        await ws.get_unread_count()
