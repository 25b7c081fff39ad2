"""SIGKILL of the server in the middle of a stream, twice, then a restart on the same data
and port: the SDK receivers see every acknowledged message exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.conftest import LiveServer
from tests.faults.ledger import Ledger, sdk
from tests.waiting import eventually


async def test_sigkill_during_a_stream_loses_and_duplicates_nothing(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server()
    senders = [server.register() for _ in range(2)]
    listeners = [server.register() for _ in range(2)]
    ledger = Ledger()
    receivers = [
        sdk(server.http_url, acct.api_key, ledger.receiver(acct.username).on_message)
        for acct in listeners
    ]
    writers = [sdk(server.http_url, acct.api_key) for acct in senders]
    for ws in (*receivers, *writers):
        await ws.connect()
    streams, per_stream = 4, 150  # per sender: several sends in flight at each kill
    kills = 0

    async def stream(index: int) -> None:
        writer, account = writers[index % 2], senders[index % 2]
        for i in range(per_stream):
            await ledger.send(writer, account.username, f"k{index}-{i}")

    async def killer() -> None:
        nonlocal kills
        for threshold in (150, 400):
            await eventually(lambda t=threshold: len(ledger.acked) >= t, 60, "stream stalled")
            await asyncio.to_thread(server.proc.kill)  # no shutdown code runs
            kills += 1
            await asyncio.to_thread(server.proc.start)  # same data directory, same port

    await asyncio.wait_for(
        asyncio.gather(killer(), *(stream(i) for i in range(streams))), timeout=180
    )
    await ledger.wait_delivered()
    await asyncio.sleep(0.3)  # a late duplicate would show up now
    stored = ledger.stored_ids(server, listeners[0].api_key)
    for ws in (*receivers, *writers):
        await ws.disconnect()
    assert kills == 2
    assert len(ledger.acked) == streams * per_stream
    ledger.report("SIGKILL x2 during a stream", stored)
