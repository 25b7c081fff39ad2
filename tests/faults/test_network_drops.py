"""Hundreds of random connection drops between the SDKs and the server (a seeded chaos loop
on a TCP proxy), while room messages and DMs stream: every receiver's ``on_message`` sees
each message meant for it exactly once."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from tests.conftest import LiveServer
from tests.faults.ledger import Ledger, sdk
from tests.tcpproxy import TcpProxy

SEED = 20261201
DROPS = 300  # at most, and at most CHAOS_SECONDS of them
CHAOS_SECONDS = 90.0


async def test_hundreds_of_random_drops_lose_and_duplicate_nothing(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server()
    proxy = TcpProxy(server.proc.port)
    await proxy.start()
    rng = random.Random(SEED)
    alice, bob, carol, dave = (server.register() for _ in range(4))
    ledger = Ledger()
    # Everyone goes through the proxy: senders lose requests in flight, receivers lose
    # deliveries in flight, and both resume.
    carol_ws = sdk(proxy.http_url, carol.api_key, ledger.receiver(carol.username).on_message)
    dave_ws = sdk(proxy.http_url, dave.api_key, ledger.receiver(dave.username).on_message)
    alice_ws, bob_ws = sdk(proxy.http_url, alice.api_key), sdk(proxy.http_url, bob.api_key)
    clients = (carol_ws, dave_ws, alice_ws, bob_ws)
    for ws in clients:
        await ws.connect()
    chaos_over = asyncio.Event()

    async def stream(ws_index: int, lane: int) -> None:
        ws, account = ((alice_ws, alice), (bob_ws, bob))[ws_index]
        for i in range(2000):  # bounded; normally the chaos ends first
            if chaos_over.is_set():
                return
            to = (None, carol.username, dave.username)[(lane + i) % 3]  # room and DMs
            await ledger.send(ws, account.username, f"{account.username}-{lane}-{i}", to)

    async def chaos() -> None:
        deadline = time.monotonic() + CHAOS_SECONDS
        while proxy.drops < DROPS and time.monotonic() < deadline:
            await asyncio.sleep(rng.uniform(0.005, 0.08))
            proxy.drop_random(rng)
        chaos_over.set()

    await asyncio.wait_for(
        asyncio.gather(chaos(), *(stream(w, lane) for w in range(2) for lane in range(3))),
        timeout=CHAOS_SECONDS + 90,
    )
    await ledger.wait_delivered()
    await asyncio.sleep(0.3)  # a late duplicate would show up now
    stored = ledger.stored_ids(server, carol.api_key, dm_keys=(carol.api_key, dave.api_key))
    for ws in clients:
        await ws.disconnect()
    await proxy.close()
    print(f"\n{proxy.drops} drops, seed {SEED}")
    assert proxy.drops >= 200, "too few drops to mean anything"
    ledger.report(f"{proxy.drops} random TCP drops", stored)
