"""Real failures under two server processes: Redis killed and started again, a node killed,
PostgreSQL restarted under load. Nothing acknowledged is lost, nothing crashes, and the
nodes recover by themselves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer
from tests.faults.ledger import Ledger, sdk
from tests.faults.test_postgres_restart import _restart_under_load
from tests.pgcluster import PostgresCluster, running_cluster
from tests.scaleout.conftest import Deployment, start_deployment
from tests.scaleout.test_cross_node import connect, listed, presence_of
from tests.waiting import eventually
from tests.wsclient import Frame


def alive(deployment: Deployment) -> bool:
    return all(
        node.proc is not None and node.proc.poll() is None for node in deployment.nodes.nodes
    )


def post(deployment: Deployment, node: int, api_key: str, content: str) -> int:
    resp = httpx.post(
        f"{deployment.node[node].http_url}/messages",
        json={"content": content},
        headers={"X-API-Key": api_key},
        timeout=20,
    )
    return resp.status_code


async def until_ready(deployment: Deployment, status: int, timeout: float, what: str) -> None:
    for node in (0, 1):
        await eventually(
            lambda node=node: deployment.ready(node) == status,  # type: ignore[misc]
            timeout,
            f"node {node}: {what}",
        )


async def test_redis_killed_each_node_keeps_serving_and_recovers_by_itself(
    make_deployment: Callable[..., Deployment],
) -> None:
    deployment = make_deployment()
    senders = [deployment.register("sender") for _ in range(2)]
    listeners = [deployment.register("listener") for _ in range(2)]
    ledger = Ledger()
    # One sender and one listener on each node.
    writers = [sdk(deployment.node[i].http_url, acct.api_key) for i, acct in enumerate(senders)]
    receivers = [
        sdk(deployment.node[i].http_url, acct.api_key, ledger.receiver(acct.username).on_message)
        for i, acct in enumerate(listeners)
    ]
    for ws in (*writers, *receivers):
        await ws.connect()
    per_stream = 150
    during_outage: dict[int, int] = {}

    async def stream(node: int) -> None:
        for i in range(per_stream):
            await ledger.send(writers[node], senders[node].username, f"n{node}-{i}", deadline=90)
            if not deployment.redis.running:
                during_outage[node] = during_outage.get(node, 0) + 1

    async def operator() -> None:
        started = time.monotonic()

        def mark(what: str) -> None:
            print(f"\n{time.monotonic() - started:6.1f} s  {what} ({len(ledger.acked)} acked)")

        await eventually(lambda: len(ledger.acked) >= 60, 60, "stream stalled")
        mark("kill Redis")
        await asyncio.to_thread(deployment.redis.kill)
        await until_ready(deployment, 503, 20, "/ready does not see Redis gone")
        mark("not ready")
        # Each node serves its own clients: WebSocket sends go on (the streams), and REST.
        await eventually(
            lambda: min(during_outage.get(0, 0), during_outage.get(1, 0)) >= 20,
            60,
            f"the nodes stopped serving sends without Redis: {during_outage}",
        )
        for node in (0, 1):
            assert post(deployment, node, senders[node].api_key, f"rest while away {node}") == 201
        assert alive(deployment), "a node died with Redis"
        mark(f"served without Redis {during_outage}")
        await asyncio.to_thread(deployment.redis.start)  # same port, empty
        await until_ready(deployment, 200, 30, "/ready does not see Redis back")
        mark("ready again")

    began = time.monotonic()
    await asyncio.wait_for(asyncio.gather(operator(), stream(0), stream(1)), timeout=180)
    assert len(ledger.acked) == 2 * per_stream
    print(f"\n{time.monotonic() - began:6.1f} s  streams done")
    # Nothing acknowledged is lost: every listener on either node had every message.
    await ledger.wait_delivered()

    # Cross-node delivery again, live, on connections opened before the outage.
    await ledger.send(writers[0], senders[0].username, "after redis came back")
    await ledger.wait_delivered(timeout=20)
    await asyncio.sleep(0.3)  # a late duplicate would show up now
    stored = ledger.stored_ids(deployment.node[1], listeners[0].api_key)
    for ws in (*writers, *receivers):
        await ws.disconnect()
    assert alive(deployment)
    ledger.report("Redis killed and started again under load", stored)


async def test_a_killed_node_drops_out_of_the_online_users(
    make_deployment: Callable[..., Deployment],
) -> None:
    deployment = make_deployment(
        TOKEN_BOWL_NODE_HEARTBEAT_INTERVAL="0.3", TOKEN_BOWL_NODE_HEARTBEAT_TIMEOUT="1.5"
    )
    alice, bob = deployment.register(), deployment.register()
    on_0 = await connect(deployment, 0, alice)
    await connect(deployment, 1, bob)  # its node is killed: nothing closes it
    await listed(deployment, 0, alice, {alice.username, bob.username})
    await asyncio.to_thread(deployment.nodes.nodes[1].kill)
    started = time.monotonic()
    # Bounded well above the 1.5 s heartbeat timeout (a loaded machine), never timed.
    await listed(deployment, 0, alice, {alice.username}, not_listed=bob.username)
    print(f"\nnode killed: its user left the online list after {time.monotonic() - started:.1f} s")
    # The survivor that reaped the dead node told the room, once.
    await on_0.recv_until(went_offline(bob.username), timeout=10)
    # The surviving node serves on.
    assert post(deployment, 0, alice.api_key, "still here") == 201
    await on_0.close()


async def test_a_stopped_node_announces_its_users_offline_at_once(
    make_deployment: Callable[..., Deployment],
) -> None:
    # A heartbeat timeout far above the wait below: the news comes from the stopping node.
    deployment = make_deployment(TOKEN_BOWL_NODE_HEARTBEAT_TIMEOUT="60")
    alice, bob, carol = deployment.register(), deployment.register(), deployment.register()
    on_0 = await connect(deployment, 0, alice)
    await connect(deployment, 1, bob)  # closed by the shutdown, never reconnected
    carol_0 = await connect(deployment, 0, carol)
    await connect(deployment, 1, carol)  # carol stays online on node 0
    await listed(deployment, 0, alice, {alice.username, bob.username, carol.username})
    await asyncio.to_thread(deployment.nodes.nodes[1].stop)
    await on_0.recv_until(went_offline(bob.username), timeout=10)
    await listed(deployment, 0, alice, {alice.username, carol.username}, not_listed=bob.username)
    await on_0.expect_silence(0.5, went_offline(carol.username))
    await on_0.close()
    await carol_0.close()


def went_offline(username: str) -> Callable[[Frame], bool]:
    return lambda f: presence_of(username)(f) and f["online"] is False


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    """A cluster of the test's own: it is restarted, and other deployments share theirs."""
    with running_cluster() as cluster:
        yield cluster


async def test_postgres_restarted_under_load_on_two_nodes_loses_nothing_and_recovers(
    own_cluster: PostgresCluster, tmp_path: Path
) -> None:
    deployment = start_deployment(own_cluster, tmp_path)
    try:
        # Senders, listeners and the outage probes spread over both nodes.
        await _restart_under_load(LiveServer(deployment.nodes), own_cluster)
        assert alive(deployment), "a node died"
    finally:
        deployment.nodes.close()
