"""A client that stops reading: the others still get everything, the server closes it as a
slow consumer and forgets it (offline), and when it reads again its SDK resumes without loss
or duplicates."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from tests.conftest import LiveServer
from tests.e2e.test_metrics import scrape
from tests.faults.ledger import Ledger, sdk
from tests.tcpproxy import TcpProxy
from tests.waiting import eventually

TOKEN = "scrape-me"


def online(server: LiveServer, api_key: str) -> set[str]:
    resp = httpx.get(f"{server.http_url}/users/online", headers={"X-API-Key": api_key})
    return {user["username"] for user in resp.json()}


async def test_a_client_that_stops_reading_is_cut_off_then_resumes_without_loss(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(TOKEN_BOWL_OUTBOX_SIZE="32", TOKEN_BOWL_METRICS_TOKEN=TOKEN)
    # The stuck client's path: a small buffer towards the server, so its backlog is felt.
    proxy = TcpProxy(server.proc.port, upstream_rcvbuf=4096)
    await proxy.start()
    writer_acct, fast_acct, slow_acct = (server.register() for _ in range(3))
    ledger = Ledger()
    fast = sdk(server.http_url, fast_acct.api_key, ledger.receiver(fast_acct.username).on_message)
    slow_receiver = ledger.receiver(slow_acct.username)
    slow = sdk(proxy.http_url, slow_acct.api_key, slow_receiver.on_message)
    writer = sdk(server.http_url, writer_acct.api_key)
    for ws in (fast, slow, writer):
        await ws.connect()
    await ledger.send(writer, writer_acct.username, "before")
    await eventually(lambda: len(slow_receiver.counts) == 1, 10, "the slow client never read")

    proxy.pause_downstream()  # from here the slow client reads nothing
    filler = "z" * 8000
    total = 600
    for i in range(total):
        await ledger.send(writer, writer_acct.username, f"m{i}", content=f"m{i} {filler}")
    # Everyone else got everything while the slow one was stuck ...
    await eventually(
        lambda: len(ledger.receivers[0].counts) == total + 1, 30, "the fast client fell behind"
    )
    # ... the server closed the stuck connection (4001) and forgot it, though the peer never
    # read the close frame: no connection and no presence left behind.
    await eventually(
        lambda: scrape(server, TOKEN)["tbc_slow_consumer_closes_total"] >= 1,
        20,
        "the stuck client was never closed as a slow consumer",
    )
    await eventually(
        lambda: slow_acct.username not in online(server, fast_acct.api_key),
        20,
        "the closed slow consumer stayed online",
    )
    assert len(slow_receiver.counts) < total + 1, "the pause did not hold anything back"

    proxy.resume_downstream()  # it reads again: its SDK reconnects and resumes
    await ledger.wait_delivered()
    await asyncio.sleep(0.3)  # a late duplicate would show up now
    stored = ledger.stored_ids(server, fast_acct.api_key)
    assert slow_acct.username in online(server, fast_acct.api_key)
    for ws in (fast, slow, writer):
        await ws.disconnect()
    await proxy.close()
    ledger.report("a client that stops reading", stored)
