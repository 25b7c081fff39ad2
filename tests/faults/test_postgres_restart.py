"""PostgreSQL restarted under load, twice (fast shutdown: every session is cut): acknowledged
messages survive, sends during the outage get a clear error (503 / an error frame with
``storage_unavailable``) and are retried with the same client id, and the same server
process recovers by itself.

The test brings its own throwaway cluster whatever ``--database`` says.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.conftest import LiveServer
from tests.faults.ledger import Ledger, sdk
from tests.pgcluster import PostgresCluster, running_cluster
from tests.serverproc import ServerProcess
from tests.waiting import eventually
from tests.wsclient import ws_url_for


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    with running_cluster() as cluster:
        yield cluster


async def test_postgres_restarted_under_load_loses_nothing_and_recovers(
    cluster: PostgresCluster, tmp_path: Path
) -> None:
    proc = ServerProcess(tmp_path, database_url=cluster.create_database())
    proc.start()
    try:
        await _restart_under_load(LiveServer(proc), cluster)
        assert proc.proc is not None and proc.proc.poll() is None, "the server died"
    finally:
        proc.stop()


async def _restart_under_load(server: LiveServer, cluster: PostgresCluster) -> None:
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
    streams, per_stream = 4, 120
    outage_errors: list[tuple[str, object]] = []

    async def stream(index: int) -> None:
        writer, account = writers[index % 2], senders[index % 2]
        for i in range(per_stream):
            await ledger.send(writer, account.username, f"p{index}-{i}", deadline=90)

    async def operator() -> None:
        started = time.monotonic()

        def mark(what: str) -> None:
            print(f"\n{time.monotonic() - started:6.1f} s  {what} ({len(ledger.acked)} acked)")

        await eventually(lambda: len(ledger.acked) >= 100, 60, "stream stalled")
        mark("restart")
        await asyncio.to_thread(cluster.restart)
        mark("restarted")
        await eventually(lambda: len(ledger.acked) >= 250, 60, "no recovery after a restart")
        # A longer outage, probed on purpose: a clear refusal, no hang, no 500.
        mark("shut down")
        await asyncio.to_thread(cluster.shut_down)
        outage_errors.extend(await asyncio.to_thread(_probe_outage, server, senders[0].api_key))
        mark("probed")
        await asyncio.to_thread(cluster.launch)
        mark("launched")
        await eventually(lambda: len(ledger.acked) >= 300, 60, "no recovery after a restart")
        mark("recovered")

    await asyncio.wait_for(
        asyncio.gather(operator(), *(stream(i) for i in range(streams))), timeout=240
    )
    # A connect is refused with 503, or, when its account was still cached (for up to a
    # second) so the upgrade passed, closed at once with 1013 (try again later): both tell the
    # client to come back, neither is a 500 or a hang.
    assert outage_errors[:2] == [
        ("rest send", (503, "storage_unavailable")),
        ("rest read", (503, "storage_unavailable")),
    ]
    assert outage_errors[2:] in (
        [("ws connect", (503, "storage_unavailable"))],
        [("ws connect", ("closed", 1013))],
    ), outage_errors
    # Whatever was refused during the outages was refused clearly, and retried.
    assert set(ledger.refused) <= {"storage_unavailable"}, ledger.refused
    await ledger.wait_delivered()
    await asyncio.sleep(0.3)  # a late duplicate would show up now
    stored = ledger.stored_ids(server, listeners[0].api_key)
    for ws in (*receivers, *writers):
        await ws.disconnect()
    assert len(ledger.acked) == streams * per_stream
    ledger.report("PostgreSQL restarted twice under load", stored)


def _probe_outage(server: LiveServer, api_key: str) -> list[tuple[str, object]]:
    """What a client meets while the database is down: each answer as (status, code)."""
    seen: list[tuple[str, object]] = []
    with httpx.Client(base_url=server.http_url, headers={"X-API-Key": api_key}, timeout=20) as http:
        resp = http.post("/messages", json={"content": "while down"})
        seen.append(("rest send", (resp.status_code, resp.json().get("code"))))
        resp = http.get("/messages/unread/count")
        seen.append(("rest read", (resp.status_code, resp.json().get("code"))))
    seen.append(("ws connect", asyncio.run(_ws_refusal(server, api_key))))
    return seen


async def _ws_refusal(server: LiveServer, api_key: str) -> object:
    """A refused upgrade as (status, code); an accepted one as ("closed", close code) when
    the server closes it before its first frame, else "accepted"."""
    try:
        async with websockets.connect(ws_url_for(server.ws_url, api_key), open_timeout=20) as conn:
            try:
                async with asyncio.timeout(20):
                    await conn.recv()
            except websockets.ConnectionClosed:
                return ("closed", conn.close_code)
            return "accepted"
    except websockets.InvalidStatus as exc:
        body = exc.response.body or b""
        code = json.loads(body).get("code") if body else None
        return (exc.response.status_code, code)
