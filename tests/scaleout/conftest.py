"""Deployments of two server processes on one PostgreSQL database and one Redis, for the
cross-node and failure tests. They bring their own throwaway cluster whatever ``--database``
says (like ``tests/faults``), so they run in the default pass only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Account, LiveServer
from tests.pgcluster import PostgresCluster, running_cluster
from tests.redisserver import RedisServer
from tests.servernodes import ServerNodes

# Timers short enough that a test never waits long on one: typing expires after 0.6 s.
FAST_TIMERS = {
    "TOKEN_BOWL_TYPING_TIMEOUT": "0.6",
    "TOKEN_BOWL_TYPING_RELAY_INTERVAL": "0.2",
}


class Deployment:
    """Two nodes behind no load balancer: a test picks the node of every client."""

    def __init__(self, nodes: ServerNodes) -> None:
        self.nodes = nodes
        self.node = [LiveServer(proc) for proc in nodes.nodes]
        self.spread = LiveServer(nodes)  # round robin, as a load balancer would
        self._names = itertools.count(1)

    @property
    def redis(self) -> RedisServer:
        return self.nodes.redis

    def register(self, prefix: str = "u") -> Account:
        return self.node[0].register(f"{prefix}{next(self._names)}")

    def online(self, node: int, api_key: str) -> set[str]:
        resp = httpx.get(
            f"{self.node[node].http_url}/users/online", headers={"X-API-Key": api_key}, timeout=10
        )
        assert resp.status_code == 200, resp.text
        return {user["username"] for user in resp.json()}

    def ready(self, node: int) -> int:
        return httpx.get(f"{self.node[node].http_url}/ready", timeout=10).status_code


@pytest.fixture(scope="session")
def scaleout_cluster() -> Iterator[PostgresCluster]:
    with running_cluster() as cluster:
        yield cluster


def start_deployment(
    cluster: PostgresCluster, data_dir: Path, env: dict[str, str] | None = None
) -> Deployment:
    nodes = ServerNodes(data_dir, cluster.create_database(), env={**FAST_TIMERS, **(env or {})})
    try:
        nodes.start()
    except BaseException:
        nodes.close()
        raise
    return Deployment(nodes)


@pytest.fixture(scope="module")
def deployment(
    scaleout_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One deployment for a module's tests; each registers its own users."""
    deployment = start_deployment(scaleout_cluster, tmp_path_factory.mktemp("deployment"))
    try:
        yield deployment
    finally:
        deployment.nodes.close()


@pytest.fixture
def make_deployment(
    scaleout_cluster: PostgresCluster, tmp_path: Path
) -> Iterator[Callable[..., Deployment]]:
    """Deployments of the test's own (settings as env vars), for tests that break them."""
    started: list[Deployment] = []

    def start(**env: str) -> Deployment:
        deployment = start_deployment(scaleout_cluster, tmp_path / f"d{len(started)}", env)
        started.append(deployment)
        return deployment

    try:
        yield start
    finally:
        for deployment in started:
            deployment.nodes.close()
