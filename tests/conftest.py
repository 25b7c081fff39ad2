from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.pgcluster import PostgresCluster
from tests.servernodes import ServerNodes
from tests.serverproc import ServerProcess


@dataclass
class Account:
    id: str
    username: str
    api_key: str


class LiveServer:
    """A running server plus helpers to make accounts on it.

    On several nodes (``ServerNodes``), ``http_url`` and ``ws_url`` take the next node at
    every read, as a load balancer without sticky sessions would: the k-th WebSocket a test
    opens goes to node k mod n, so a sender and a receiver are on different nodes.
    """

    def __init__(self, proc: ServerProcess | ServerNodes) -> None:
        self.proc = proc
        self.nodes = proc.nodes if isinstance(proc, ServerNodes) else [proc]
        self._next_http = itertools.cycle(self.nodes)
        self._next_ws = itertools.cycle(self.nodes)
        self._counter = 0
        # While a ``single_node`` test runs on the shared server: every client on node 0.
        self.pinned = False

    @property
    def http_url(self) -> str:
        return (self.nodes[0] if self.pinned else next(self._next_http)).http_url

    @property
    def ws_url(self) -> str:
        return (self.nodes[0] if self.pinned else next(self._next_ws)).ws_url

    @functools.cached_property
    def admin(self) -> Account:
        """The admin every test server starts with (TOKEN_BOWL_BOOTSTRAP_ADMIN_*)."""
        resp = httpx.get(f"{self.http_url}/users/me", headers={"X-API-Key": self.proc.admin_key})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["role"] == "admin", body
        return Account(id=body["id"], username=body["username"], api_key=self.proc.admin_key)

    def unique(self, prefix: str = "user") -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def register(self, username: str | None = None, **fields: object) -> Account:
        name = username or self.unique()
        resp = httpx.post(f"{self.http_url}/register", json={"username": name, **fields})
        assert resp.status_code == 201, resp.text
        body = resp.json()
        return Account(id=body["id"], username=body["username"], api_key=body["api_key"])


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="the database every server under test uses (postgresql: a throwaway cluster)",
    )
    parser.addoption(
        "--topology",
        choices=["one-node", "two-nodes"],
        default="one-node",
        help="two-nodes: every server under test is two processes on one PostgreSQL database "
        "and a throwaway Redis (REDIS_URL), clients spread over both (needs --database "
        "postgresql)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if (
        config.getoption("--topology") == "two-nodes"
        and config.getoption("--database") != "postgresql"
    ):
        raise pytest.UsageError("--topology two-nodes needs --database postgresql")


_SQLITE_PASS_ONLY = ("tests/web/", "tests/cli/", "tests/fuzz/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--database") == "sqlite":
        return
    # The PostgreSQL pass runs what can differ on PostgreSQL: the tests whose servers or
    # stores get their database from ``new_database``. The rest (protocol, SDK units, the
    # fault tests with clusters of their own) would only repeat the SQLite pass. Tests that
    # inspect SQLite files have nothing to look at here, nor do the web page's, the CLI's and
    # the fuzzers' (what they drive is the same HTTP surface the end-to-end suite covers on
    # two nodes; they keep CI within its time).
    keep = [
        item
        for item in items
        if "new_database" in getattr(item, "fixturenames", ())
        and "sqlite_only" not in item.keywords
        and not item.nodeid.startswith(_SQLITE_PASS_ONLY)
    ]
    kept = set(map(id, keep))
    config.hook.pytest_deselected(items=[i for i in items if id(i) not in kept])
    items[:] = keep


NewDatabase = Callable[[Path], str | None]


@pytest.fixture(scope="session")
def new_database(request: pytest.FixtureRequest) -> Iterator[NewDatabase]:
    """``new_database(data_dir)``: the URL of a fresh database for one server (``None``: the
    server's default SQLite file in ``data_dir``)."""
    if request.config.getoption("--database") == "sqlite":
        yield lambda _data_dir: None
        return
    cluster = PostgresCluster()
    cluster.start()
    try:
        yield lambda _data_dir: cluster.create_database()
    finally:
        cluster.stop()


NewServer = Callable[..., ServerProcess | ServerNodes]


@pytest.fixture(scope="session")
def new_server(request: pytest.FixtureRequest, new_database: NewDatabase) -> NewServer:
    """``new_server(data_dir, env=None, single_node=False)``: a server, not yet started, on a
    fresh database; with ``--topology two-nodes`` two processes on it and a Redis of their
    own (``single_node``: one process all the same, for a test marked ``single_node``)."""
    two_nodes = request.config.getoption("--topology") == "two-nodes"

    def new(
        data_dir: Path, env: dict[str, str] | None = None, single_node: bool = False
    ) -> ServerProcess | ServerNodes:
        url = new_database(data_dir)
        if two_nodes and not single_node:
            assert url is not None, "two nodes share a PostgreSQL database"
            return ServerNodes(data_dir, url, env=env)
        return ServerProcess(data_dir, env=env, database_url=url)

    return new


def stop_server(proc: ServerProcess | ServerNodes) -> None:
    if isinstance(proc, ServerNodes):
        proc.close()
    else:
        proc.stop()


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, new_server: NewServer
) -> Iterator[LiveServer]:
    """One real uvicorn server for the session, on a free 127.0.0.1 port and a fresh database
    (with ``--topology two-nodes``: two, see ``new_server``).

    Tests share it, so each must register its own users (``live_server.register()``).
    """
    proc = new_server(tmp_path_factory.mktemp("server"))
    try:
        proc.start()
        yield LiveServer(proc)
    finally:
        stop_server(proc)


@pytest.fixture(autouse=True)
def _single_node_on_the_shared_server(request: pytest.FixtureRequest) -> Iterator[None]:
    """A ``single_node`` test on the shared ``live_server`` talks to one node of it only."""
    if "live_server" not in request.fixturenames or not request.node.get_closest_marker(
        "single_node"
    ):
        yield
        return
    server: LiveServer = request.getfixturevalue("live_server")
    server.pinned = True
    try:
        yield
    finally:
        server.pinned = False


@pytest.fixture
def make_server(
    request: pytest.FixtureRequest, tmp_path: Path, new_server: NewServer
) -> Iterator[Callable[..., LiveServer]]:
    """Start servers of the test's own (settings as env vars), for tests that restart, kill
    or reconfigure them. Every one started is stopped at the end of the test."""
    started: list[ServerProcess | ServerNodes] = []
    single_node = request.node.get_closest_marker("single_node") is not None

    def start(**env: str) -> LiveServer:
        data_dir = tmp_path / f"server{len(started)}"
        data_dir.mkdir()
        proc = new_server(data_dir, env=env, single_node=single_node)
        started.append(proc)
        proc.start()
        return LiveServer(proc)

    try:
        yield start
    finally:
        for proc in started:
            stop_server(proc)
