"""Gap-free reconnect through real drops: every message exactly once, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.conftest import LiveServer
from tests.tcpproxy import TcpProxy
from tests.waiting import eventually
from token_bowl_chat import AsyncTokenBowlClient, NetworkError, TokenBowlWebSocket
from token_bowl_chat.models import MessageResponse


async def test_receiver_sees_each_message_once_across_drops_and_a_server_restart(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server()
    proxy = TcpProxy(server.proc.port)
    await proxy.start()
    receiver, sender = server.register(), server.register()
    seen: list[str] = []
    lifecycle: list[str] = []

    def on_message(message: MessageResponse) -> None:
        seen.append(message.content)

    ws = TokenBowlWebSocket(
        api_key=receiver.api_key,
        base_url=proxy.http_url,
        on_message=on_message,
        on_connect=lambda: lifecycle.append("connect"),
        on_disconnect=lambda: lifecycle.append("disconnect"),
        reconnect_initial_delay=0.05,
        reconnect_max_delay=0.5,
    )
    await ws.connect()
    total = 1000

    async def stream() -> None:
        async with AsyncTokenBowlClient(api_key=sender.api_key, base_url=server.http_url) as rest:
            for i in range(total):
                while True:  # retry through the restart; the client id keeps it one message
                    try:
                        await rest.send_message(f"n{i}", client_message_id=f"s{i}")
                        break
                    except NetworkError:
                        await asyncio.sleep(0.05)

    async def chaos() -> None:
        for threshold in (120, 300):
            await eventually(lambda t=threshold: len(seen) >= t, 30, "stream stalled")
            proxy.drop_all()
        await eventually(lambda: len(seen) >= 450, 30, "stream stalled")
        await asyncio.to_thread(server.proc.stop)  # SIGTERM: the server closes with 1012
        await asyncio.to_thread(server.proc.start)
        for threshold in (650, 850):
            await eventually(lambda t=threshold: len(seen) >= t, 30, "stream stalled")
            proxy.drop_all()

    await asyncio.gather(stream(), chaos())
    await eventually(lambda: len(seen) >= total, 30, f"only {len(seen)} of {total} arrived")
    await asyncio.sleep(0.2)  # anything extra would be a duplicate
    assert seen == [f"n{i}" for i in range(total)]
    assert proxy.drops == 4
    # One connect for the start and one per recovery; one disconnect per drop.
    assert lifecycle.count("connect") == lifecycle.count("disconnect") + 1 == 6
    await ws.disconnect()
    assert lifecycle[-1] == "disconnect"
    await proxy.close()


async def test_a_send_interrupted_by_a_drop_is_stored_once(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server()
    proxy = TcpProxy(server.proc.port)
    await proxy.start()
    alice, bob = server.register(), server.register()
    received: list[MessageResponse] = []
    async with (
        TokenBowlWebSocket(
            api_key=alice.api_key, base_url=proxy.http_url, reconnect_initial_delay=0.05
        ) as a,
        TokenBowlWebSocket(
            api_key=bob.api_key, base_url=server.http_url, on_message=received.append
        ) as b,
    ):
        sends = [asyncio.create_task(a.send_message(f"m{i}")) for i in range(20)]
        await asyncio.sleep(0)
        proxy.drop_all()  # some sends are in flight, some not yet written
        stored = await asyncio.gather(*sends)
        assert [m.content for m in stored] == [f"m{i}" for i in range(20)]
        await eventually(lambda: len(received) >= 20, 10, "deliveries missing")
        await asyncio.sleep(0.2)
        assert sorted(m.id for m in received) == sorted(m.id for m in stored)
        assert b.is_connected
    await proxy.close()


async def test_an_unknown_resume_point_is_reported_to_on_error(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server()
    proxy = TcpProxy(server.proc.port)
    await proxy.start()
    me = server.register()
    errors: list[Exception] = []
    connects: list[str] = []
    ws = TokenBowlWebSocket(
        api_key=me.api_key,
        base_url=proxy.http_url,
        on_error=errors.append,
        on_connect=lambda: connects.append("up"),
        reconnect_initial_delay=0.05,
    )
    await ws.connect()
    ws._last_seq = 10**9  # as if the server's database had been replaced meanwhile
    proxy.drop_all()
    await eventually(lambda: len(errors) == 1 and len(connects) == 2, 10, "no gap reported")
    assert isinstance(errors[0], NetworkError) and errors[0].code == "resume_gap"
    assert ws.last_seq is not None and ws.last_seq < 10**9  # resynchronised to the server
    await ws.disconnect()
    await proxy.close()
