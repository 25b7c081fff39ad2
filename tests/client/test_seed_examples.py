"""The flows of the complete examples in the user's websocket-features.md, run against our
server with ``TOKEN_BOWL_CHAT_API_KEY`` / ``TOKEN_BOWL_CHAT_BASE_URL`` set as its readers do.

Each test follows one example: the same calls, in the same order, with the same callback
shapes (plain functions, bound methods, tasks created from callbacks); the minute-long sleeps
become bounded waits for what the example prints.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

import pytest

from tests.conftest import Account, LiveServer
from tests.waiting import eventually
from token_bowl_chat import TokenBowlWebSocket
from token_bowl_chat.models import MessageResponse, UnreadCountResponse


@pytest.fixture
def as_user(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Callable[[Account], None]:
    monkeypatch.setenv("TOKEN_BOWL_CHAT_BASE_URL", live_server.http_url)

    def use(account: Account) -> None:
        monkeypatch.setenv("TOKEN_BOWL_CHAT_API_KEY", account.api_key)

    return use


async def test_smart_message_reader(live_server: LiveServer, as_user: Callable[..., None]) -> None:
    """Example 1: mark incoming messages read from a task started in on_message, and report
    the read receipts of what we sent."""
    me, peer = live_server.register(), live_server.register()

    class SmartMessageReader:
        def __init__(self) -> None:
            self.ws: TokenBowlWebSocket | None = None
            self.printed: list[str] = []
            self.tasks: set[asyncio.Task[None]] = set()

        def on_message(self, msg: MessageResponse) -> None:
            stamp = datetime.fromisoformat(msg.timestamp.replace("Z", "+00:00"))
            self.printed.append(f"[{stamp:%H:%M:%S}] {msg.from_username}: {msg.content}")
            if self.ws and self.ws.is_connected:
                task = asyncio.create_task(self._mark_read(msg.id))
                self.tasks.add(task)

        async def _mark_read(self, message_id: str) -> None:
            assert self.ws is not None
            await self.ws.mark_message_read(message_id)
            self.printed.append(f"marked {message_id}")

        def on_read_receipt(self, message_id: str, read_by: str) -> None:
            self.printed.append(f"{read_by} read {message_id}")

    reader = SmartMessageReader()
    as_user(me)
    async with TokenBowlWebSocket(
        on_message=reader.on_message, on_read_receipt=reader.on_read_receipt
    ) as ws:
        reader.ws = ws
        sent = await ws.send_message("Hello! This is a test message.")
        as_user(peer)
        async with TokenBowlWebSocket() as other:
            await other.mark_message_read(sent.id)
            incoming = await other.send_message("hi reader")
        await eventually(lambda: f"{peer.username} read {sent.id}" in reader.printed)
        await eventually(lambda: f"marked {incoming.id}" in reader.printed)
        assert any(line.endswith(f"{peer.username}: hi reader") for line in reader.printed)


async def test_typing_indicator_chat(live_server: LiveServer, as_user: Callable[..., None]) -> None:
    """Example 2: typing shown before each send; '@user text' is a DM; typists are cleared
    when their message arrives."""
    me, peer = live_server.register(), live_server.register()

    class TypingChat:
        def __init__(self) -> None:
            self.ws: TokenBowlWebSocket | None = None
            self.typing_users: set[str] = set()
            self.lines: list[str] = []

        def on_message(self, msg: MessageResponse) -> None:
            self.typing_users.discard(msg.from_username)
            self.lines.append(f"{msg.from_username}: {msg.content}")

        def on_typing(self, username: str, to_username: str | None) -> None:
            self.typing_users.add(username)

        async def send_with_typing(self, content: str, to_username: str | None = None) -> None:
            assert self.ws is not None
            await self.ws.send_typing_indicator(to_username=to_username)
            await asyncio.sleep(0.05)
            await self.ws.send_message(content, to_username=to_username)

        async def handle(self, line: str) -> bool:
            if line.startswith("/quit"):
                return False
            if line.startswith("@"):
                parts = line[1:].split(" ", 1)
                if len(parts) == 2:
                    await self.send_with_typing(parts[1], to_username=parts[0])
            else:
                await self.send_with_typing(line)
            return True

    mine, theirs = TypingChat(), TypingChat()
    as_user(peer)
    async with TokenBowlWebSocket(on_message=theirs.on_message, on_typing=theirs.on_typing) as p:
        theirs.ws = p
        as_user(me)
        async with TokenBowlWebSocket(on_message=mine.on_message, on_typing=mine.on_typing) as m:
            mine.ws = m
            for line in ("hello room", f"@{peer.username} a secret", "/quit", "never sent"):
                if not await mine.handle(line):
                    break
            await eventually(lambda: len(theirs.lines) == 2)
            assert theirs.lines == [f"{me.username}: hello room", f"{me.username}: a secret"]
            assert theirs.typing_users == set()  # cleared by the messages that followed


async def test_unread_tracker_and_dashboard(
    live_server: LiveServer, as_user: Callable[..., None]
) -> None:
    """The unread tracking example and example 3: initial count, mark room read, count again;
    on_message asks for a fresh count from a task."""
    me, peer = live_server.register(), live_server.register()
    as_user(peer)
    async with TokenBowlWebSocket() as other:
        for i in range(3):
            await other.send_message(f"room {i}")
        await other.send_message("for you", to_username=me.username)

    class Dashboard:
        def __init__(self) -> None:
            self.ws: TokenBowlWebSocket | None = None
            self.counts: list[UnreadCountResponse] = []
            self.recent: list[MessageResponse] = []

        def on_message(self, msg: MessageResponse) -> None:
            self.recent = [*self.recent, msg][-10:]
            if self.ws and self.ws.is_connected:
                asyncio.create_task(self.ws.get_unread_count())  # noqa: RUF006 (as the example)

        def on_unread_count(self, count: UnreadCountResponse) -> None:
            self.counts.append(count)

    board = Dashboard()
    as_user(me)
    async with TokenBowlWebSocket(
        on_message=board.on_message, on_unread_count=board.on_unread_count
    ) as ws:
        board.ws = ws
        initial = await ws.get_unread_count()
        await eventually(lambda: initial in board.counts)
        assert initial is not None and initial.unread_direct_messages == 1
        assert initial.unread_room_messages >= 3
        await ws.mark_room_messages_read()
        await ws.get_unread_count()
        await eventually(lambda: board.counts[-1].unread_room_messages == 0)
        assert board.counts[-1].total_unread == 1
        await ws.mark_all_messages_read()
        as_user(peer)
        async with TokenBowlWebSocket() as other:
            await other.send_message("new one")
        # on_message asked for a fresh count: one new room message is unread.
        await eventually(lambda: board.counts[-1].unread_room_messages == 1)
        assert board.recent[-1].content == "new one"


async def test_typing_manager_renews_until_stopped(
    live_server: LiveServer, as_user: Callable[..., None]
) -> None:
    """The smart typing example: a task renews the indicator until stopped, then the message
    goes out; the watcher sees typing the whole time and a stop with the message."""
    me, peer = live_server.register(), live_server.register()
    events: list[tuple[str, str]] = []
    as_user(peer)
    watcher = TokenBowlWebSocket(
        on_typing=lambda who, to: events.append(("typing", who)),
        on_typing_stopped=lambda who, to: events.append(("stopped", who)),
        on_message=lambda msg: events.append(("message", msg.content)),
    )
    await watcher.connect()
    as_user(me)
    async with TokenBowlWebSocket() as ws:

        async def typing_loop() -> None:
            while True:
                await ws.send_typing_indicator()
                await asyncio.sleep(0.2)

        task = asyncio.create_task(typing_loop())
        await asyncio.sleep(1.0)
        assert watcher.typing_users == {me.username}
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ws.send_message("Hello!")
    await eventually(lambda: ("message", "Hello!") in events)
    await eventually(lambda: ("stopped", me.username) in events)
    assert events.index(("typing", me.username)) < events.index(("message", "Hello!"))
    assert watcher.typing_users == frozenset()
    await watcher.disconnect()
