"""``TokenBowlWebSocket`` against a real server and an unlucky network: a hello that comes
late, callbacks that await the client, consumers that fall behind, a server that goes away
for good, requests caught by restarts. Each test names the issue-7 defect it guards."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import Account, LiveServer
from tests.waiting import eventually
from token_bowl_chat import AsyncTokenBowlClient, NetworkError, TokenBowlWebSocket
from token_bowl_chat import websocket as ws_module
from token_bowl_chat.events import DisconnectedEvent, ErrorEvent, Event, MessageEvent
from token_bowl_chat.models import MessageResponse, UnreadCountResponse


class SlowHelloProxy:
    """A TCP proxy on 127.0.0.1 that holds back the first WebSocket frame the server sends
    on each of the first ``slow_connections`` connections (the hello) by ``delay`` seconds,
    as a loaded server or a slow network would. It can also cut every connection and keep
    new ones waiting (``hold``) until ``release``."""

    def __init__(self, target_port: int, delay: float, slow_connections: int = 1) -> None:
        self.target_port = target_port
        self.delay = delay
        self.slow_left = slow_connections
        self.port = 0
        self.connections = 0
        self.open = asyncio.Event()
        self.open.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._muted: set[int] = set()  # connections whose server->client data is swallowed

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        up_writer: asyncio.StreamWriter | None = None
        try:
            await self.open.wait()
            self.connections += 1
            number = self.connections
            slow = self.slow_left > 0
            self.slow_left -= 1
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            self._writers.add(up_writer)
            await asyncio.gather(
                self._pipe(reader, up_writer, 0.0),
                self._pipe(up_reader, writer, self.delay if slow else 0.0, number),
            )
        except OSError:
            pass
        finally:
            for w in (writer, up_writer):
                if w is not None:
                    w.transport.abort()
                    self._writers.discard(w)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        delay: float,
        number: int = 0,
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            if delay:
                # The handshake response goes through at once; what follows it (the first
                # frame) waits.
                head = await reader.readuntil(b"\r\n\r\n")
                writer.write(head)
                await writer.drain()
                first = await reader.read(65536)
                await asyncio.sleep(delay)
                writer.write(first)
            while data := await reader.read(65536):
                if number in self._muted:
                    continue  # a black hole: the peer hears nothing, and no close either
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

    def mute_open_connections(self) -> None:
        """From now on, nothing the server sends on the open connections arrives (the
        client's frames still reach the server): a link that died without a FIN or RST."""
        self._muted.update(range(1, self.connections + 1))

    def hold(self) -> None:
        """Keep new connections waiting, and cut the open ones."""
        self.open.clear()
        for writer in list(self._writers):
            writer.transport.abort()

    def release(self) -> None:
        self.open.set()

    async def close(self) -> None:
        self.release()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def stored_contents(server: LiveServer, account: Account) -> list[str]:
    resp = httpx.get(
        f"{server.http_url}/messages",
        params={"limit": 1000},
        headers={"X-API-Key": account.api_key},
    )
    assert resp.status_code == 200, resp.text
    return [m["content"] for m in resp.json()["messages"]]


async def send_all(server: LiveServer, account: Account, contents: list[str]) -> None:
    async with AsyncTokenBowlClient(api_key=account.api_key, base_url=server.http_url) as rest:
        for content in contents:
            await rest.send_message(content)


# --- defect 6: a late hello -------------------------------------------------------------------


async def test_a_late_hello_still_turns_resume_on_and_nothing_is_lost(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server()
    receiver, sender = server.register(), server.register()
    await send_all(server, sender, ["before"])  # so that hello carries a last_seq
    proxy = SlowHelloProxy(server.proc.port, delay=ws_module.HELLO_TIMEOUT + 0.8)
    await proxy.start()
    seen: list[str] = []
    ws = TokenBowlWebSocket(
        api_key=receiver.api_key,
        base_url=proxy.http_url,
        on_message=lambda m: seen.append(m.content),
        reconnect_initial_delay=0.05,
        reconnect_max_delay=0.2,
    )
    await ws.connect()  # gives up waiting for the hello after HELLO_TIMEOUT
    # The hello arrives afterwards: it must still set the resume point ...
    await eventually(lambda: ws.last_seq is not None, 10, "the late hello was ignored")
    # ... so that messages sent while the client is cut off are replayed on reconnect.
    proxy.hold()
    await eventually(lambda: not ws.is_connected, 10, "the drop went unnoticed")
    missed = [f"while away {i}" for i in range(5)]
    await send_all(server, sender, missed)
    proxy.release()
    await eventually(lambda: len(seen) >= 5, 15, f"lost while disconnected: {seen}")
    await send_all(server, sender, ["live again"])
    await eventually(lambda: "live again" in seen, 10)
    assert seen == [*missed, "live again"]
    await ws.disconnect()
    await proxy.close()


# --- defect 7: on_connect may await the client ------------------------------------------------


async def test_on_connect_can_send_and_ask_for_counts_promptly(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server()
    me = server.register()
    proxy = SlowHelloProxy(server.proc.port, delay=0.0, slow_connections=0)
    await proxy.start()
    results: list[Any] = []
    ws: TokenBowlWebSocket

    async def on_connect() -> None:
        n = sum(1 for r in results if isinstance(r, MessageResponse))
        results.append(await ws.send_message(f"hello from on_connect {n}"))
        results.append(await ws.get_unread_count())

    ws = TokenBowlWebSocket(
        api_key=me.api_key,
        base_url=proxy.http_url,
        on_connect=on_connect,
        request_timeout=60,  # a hang would show as the bounded wait below, not a timeout
        reconnect_initial_delay=0.05,
    )
    async with asyncio.timeout(10):
        await ws.connect()  # returns once on_connect has run
    assert isinstance(results[0], MessageResponse) and results[0].seq is not None
    assert isinstance(results[1], UnreadCountResponse)
    # On a reconnect the callback runs again, on the dispatcher, and completes as well.
    proxy.hold()
    proxy.release()
    await eventually(lambda: len(results) == 4, 10, f"on_connect stuck after reconnect: {results}")
    assert isinstance(results[2], MessageResponse) and isinstance(results[3], UnreadCountResponse)
    await ws.disconnect()
    stored = stored_contents(server, me)
    assert sorted(stored) == ["hello from on_connect 0", "hello from on_connect 1"]  # once each
    await proxy.close()


# --- defect 10: slow consumers lose nothing ---------------------------------------------------


async def test_a_slow_events_consumer_receives_every_message_in_order(
    live_server: LiveServer,
) -> None:
    alice, bob = live_server.register(), live_server.register()
    total = 300
    got: list[str] = []
    sent_all = asyncio.Event()
    async with TokenBowlWebSocket(
        api_key=bob.api_key, base_url=live_server.http_url, event_buffer=10
    ) as ws:

        async def consume() -> None:
            async for event in ws.events():
                if isinstance(event, MessageEvent):
                    got.append(event.message.content)
                    if len(got) == 1:
                        await sent_all.wait()  # stalls while the whole burst arrives

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0)
        await send_all(live_server, alice, [f"m{i}" for i in range(total)])
        sent_all.set()
        await eventually(lambda: len(got) >= total, 60, f"only {len(got)} of {total}")
        await ws.disconnect()
        await asyncio.wait_for(consumer, 10)
    assert got == [f"m{i}" for i in range(total)]


async def test_consumers_that_await_the_client_while_behind_neither_deadlock_nor_lose(
    live_server: LiveServer,
) -> None:
    """The seed document's pattern (mark each message read from its handler) with a buffer far
    smaller than the burst: replies must still arrive, and every message be handled once."""
    alice, bob = live_server.register(), live_server.register()
    total = 200
    handled: list[str] = []
    streamed: list[str] = []
    errors: list[Exception] = []
    sent_all = asyncio.Event()
    ws: TokenBowlWebSocket

    async def on_message(message: MessageResponse) -> None:
        await sent_all.wait()  # the handler falls behind the whole burst first
        await ws.mark_message_read(message.id)  # awaits a reply while the buffer is full
        handled.append(message.content)

    connects: list[str] = []
    ws = TokenBowlWebSocket(
        api_key=bob.api_key,
        base_url=live_server.http_url,
        on_message=on_message,
        on_error=errors.append,
        on_connect=lambda: connects.append("up"),
        event_buffer=5,
        request_timeout=30,
        reconnect_initial_delay=0.05,
    )
    await ws.connect()
    await ws.mark_all_messages_read()

    async def consume() -> None:
        async for event in ws.events():
            if isinstance(event, MessageEvent):
                streamed.append(event.message.content)
                await ws.get_unread_count()  # a stream consumer awaiting the client too

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)
    await send_all(live_server, alice, [f"b{i}" for i in range(total)])
    sent_all.set()
    expected = [f"b{i}" for i in range(total)]
    await eventually(lambda: len(handled) >= total, 90, f"handled {len(handled)} of {total}")
    await eventually(lambda: len(streamed) >= total, 30, f"streamed {len(streamed)}")
    print(f"awaiting consumers, buffer 5: {total} messages, {len(connects)} connection(s)")
    assert handled == expected and streamed == expected
    assert len(connects) > 1  # set-aside messages were fetched again by resuming
    count = await ws.get_unread_count()
    assert count is not None and count.total_unread == 0
    await ws.disconnect()
    await asyncio.wait_for(consumer, 10)
    assert all(getattr(e, "code", None) == "events_skipped" for e in errors), errors


# --- defect 11: giving up is reported ---------------------------------------------------------


async def test_giving_up_reconnecting_calls_on_error_and_ends_events(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server()
    me = server.register()
    errors: list[Exception] = []
    streamed: list[Event] = []
    ws = TokenBowlWebSocket(
        api_key=me.api_key,
        base_url=server.http_url,
        on_error=errors.append,
        reconnect_initial_delay=0.05,
        reconnect_max_delay=0.1,
        max_reconnect_attempts=2,
    )
    await ws.connect()

    async def consume() -> None:
        async for event in ws.events():
            streamed.append(event)

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)
    await asyncio.to_thread(server.proc.stop)  # gone for good
    await eventually(lambda: len(errors) == 1, 20, "giving up was not reported to on_error")
    error = errors[0]
    assert isinstance(error, NetworkError) and error.code == "reconnect_failed"
    assert "2 attempt" in str(error)
    await asyncio.wait_for(consumer, 10)  # the stream ends after telling why
    assert isinstance(streamed[0], DisconnectedEvent) and streamed[0].will_reconnect
    assert isinstance(streamed[-1], ErrorEvent) and streamed[-1].error is error
    assert not ws.is_connected
    try:
        await ws.send_message("too late")
    except ValueError:
        pass
    else:
        raise AssertionError("a send after giving up must raise")
    await ws.disconnect()  # harmless


# --- an unlucky network: requests caught by restarts ------------------------------------------


async def test_requests_made_during_a_server_restart_complete_once(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server()
    me = server.register()
    ws = TokenBowlWebSocket(
        api_key=me.api_key,
        base_url=server.http_url,
        reconnect_initial_delay=0.05,
        reconnect_max_delay=0.3,
        request_timeout=30,
    )
    await ws.connect()
    await ws.mark_all_messages_read()
    await asyncio.to_thread(server.proc.stop)
    await eventually(lambda: not ws.is_connected, 10)
    # Asked while there is no server at all: they wait for the reconnect, then go out once.
    sends = [asyncio.create_task(ws.send_message(f"r{i}")) for i in range(5)]
    count = asyncio.create_task(ws.get_unread_count())
    await asyncio.sleep(0.2)
    assert not any(task.done() for task in sends)
    await asyncio.to_thread(server.proc.start)
    stored = await asyncio.wait_for(asyncio.gather(*sends), 30)
    assert [m.content for m in stored] == [f"r{i}" for i in range(5)]
    assert isinstance(await asyncio.wait_for(count, 30), UnreadCountResponse)
    assert sorted(stored_contents(server, me)) == [f"r{i}" for i in range(5)]
    await ws.disconnect()


async def test_a_reply_lost_on_a_dead_link_is_recovered_by_reconnecting(
    make_server: Callable[..., LiveServer],
) -> None:
    """The server stores a send but its reply never arrives, and the link gives no sign of
    death (no FIN, no RST). The client must find out while the reply is due, reconnect and
    resend (idempotently), instead of timing out and inviting a duplicating retry."""
    server = make_server()
    me, other = server.register(), server.register()
    proxy = SlowHelloProxy(server.proc.port, delay=0.0, slow_connections=0)
    await proxy.start()
    seen: list[str] = []
    ws = TokenBowlWebSocket(
        api_key=me.api_key,
        base_url=proxy.http_url,
        on_message=lambda m: seen.append(m.content),
        reconnect_initial_delay=0.05,
    )
    await ws.connect()
    proxy.mute_open_connections()
    stored = await ws.send_message("into the void")  # raised TimeoutError before the fix
    assert stored.content == "into the void"
    await send_all(server, other, ["after the dead link"])
    await eventually(lambda: "after the dead link" in seen, 10)
    assert stored_contents(server, me).count("into the void") == 1
    assert proxy.connections == 2
    await ws.disconnect()
    await proxy.close()


async def test_disconnect_from_inside_a_full_events_loop_returns(live_server: LiveServer) -> None:
    """A consumer that disconnects from its own loop while its stream is full must not wait
    for itself; the events received before still come out, then the stream ends."""
    alice, bob = live_server.register(), live_server.register()
    ws = TokenBowlWebSocket(api_key=bob.api_key, base_url=live_server.http_url, event_buffer=3)
    await ws.connect()
    sent_all = asyncio.Event()
    got: list[str] = []

    async def consume() -> None:
        async for event in ws.events():
            if isinstance(event, MessageEvent):
                got.append(event.message.content)
                if len(got) == 1:
                    await sent_all.wait()
                    await asyncio.wait_for(ws.disconnect(), 10)

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)
    await send_all(live_server, alice, [f"d{i}" for i in range(20)])
    await eventually(lambda: ws._buffered() >= 3, 10, "the buffer never filled")
    sent_all.set()
    await asyncio.wait_for(consumer, 15)
    assert got == [f"d{i}" for i in range(len(got))] and len(got) >= 3
    assert not ws.is_connected


async def test_a_connect_abandoned_while_on_connect_runs_leaves_nothing_behind(
    live_server: LiveServer,
) -> None:
    me = live_server.register()
    never = asyncio.Event()
    ws = TokenBowlWebSocket(
        api_key=me.api_key, base_url=live_server.http_url, on_connect=never.wait
    )
    try:
        async with asyncio.timeout(1.5):
            await ws.connect()
    except TimeoutError:
        pass
    else:
        raise AssertionError("connect() returned before on_connect finished")
    assert not ws.is_connected
    with contextlib.suppress(ValueError):
        await ws.send_message("nobody is connected")
        raise AssertionError("the client still accepts requests")
    ws.on_connect = None
    async with ws:  # and it can be used again
        assert (await ws.send_message("second try")).content == "second try"


async def test_a_stalled_consumer_is_cut_off_by_the_server_and_resumes_without_loss(
    make_server: Callable[..., LiveServer],
) -> None:
    """Backpressure reaches the server: its small outbox overflows, it closes the connection
    as a slow consumer (4001), and the client resumes where its consumer stopped."""
    server = make_server(TOKEN_BOWL_OUTBOX_SIZE="16")
    alice, bob = server.register(), server.register()
    total = 1000
    body = "x" * 9900  # ~10 MB: more than the socket buffers hold, so the outbox overflows
    got: list[str] = []
    drops: list[int | None] = []
    sent_all = asyncio.Event()
    ws = TokenBowlWebSocket(
        api_key=bob.api_key,
        base_url=server.http_url,
        event_buffer=10,
        reconnect_initial_delay=0.05,
    )
    await ws.connect()

    async def consume() -> None:
        async for event in ws.events():
            if isinstance(event, DisconnectedEvent):
                drops.append(event.code)
            if isinstance(event, MessageEvent):
                got.append(event.message.content[:8])
                if len(got) == 1:
                    await sent_all.wait()

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)
    async with TokenBowlWebSocket(api_key=alice.api_key, base_url=server.http_url) as sender:
        for i in range(total):
            await sender.send_message(f"{i:08d}{body}")
    sent_all.set()
    await eventually(lambda: len(got) >= total, 60, f"only {len(got)} of {total}")
    await asyncio.sleep(0.2)  # anything more would be a duplicate
    print(f"stalled consumer: {total} messages, closes seen: {drops}")
    assert got == [f"{i:08d}" for i in range(total)]
    # The server did cut it off (4001, or no close frame at all when its bounded close gave
    # up on a peer that was not reading), so the resume path was taken.
    assert drops
    await ws.disconnect()
    await asyncio.wait_for(consumer, 10)
