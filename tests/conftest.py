from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.pgcluster import PostgresCluster
from tests.serverproc import ServerProcess


@dataclass
class Account:
    id: str
    username: str
    api_key: str


class LiveServer:
    """A running server plus helpers to make accounts on it."""

    def __init__(self, proc: ServerProcess) -> None:
        self.proc = proc
        self.http_url = proc.http_url
        self.ws_url = proc.ws_url
        self._counter = 0

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--database") == "sqlite":
        return
    # The PostgreSQL pass runs what can differ on PostgreSQL: the tests whose servers or
    # stores get their database from ``new_database``. The rest (protocol, SDK units, the
    # fault tests with clusters of their own) would only repeat the SQLite pass. Tests that
    # inspect SQLite files have nothing to look at here.
    keep = [
        item
        for item in items
        if "new_database" in getattr(item, "fixturenames", ())
        and "sqlite_only" not in item.keywords
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


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, new_database: NewDatabase
) -> Iterator[LiveServer]:
    """One real uvicorn server for the session, on a free 127.0.0.1 port and a fresh database.

    Tests share it, so each must register its own users (``live_server.register()``).
    """
    data_dir = tmp_path_factory.mktemp("server")
    proc = ServerProcess(data_dir, database_url=new_database(data_dir))
    proc.start()
    try:
        yield LiveServer(proc)
    finally:
        proc.stop()


@pytest.fixture
def make_server(tmp_path: Path, new_database: NewDatabase) -> Iterator[Callable[..., LiveServer]]:
    """Start servers of the test's own (settings as env vars), for tests that restart, kill
    or reconfigure them. Every one started is stopped at the end of the test."""
    started: list[ServerProcess] = []

    def start(**env: str) -> LiveServer:
        data_dir = tmp_path / f"server{len(started)}"
        data_dir.mkdir()
        proc = ServerProcess(data_dir, env=env, database_url=new_database(data_dir))
        started.append(proc)
        proc.start()
        return LiveServer(proc)

    try:
        yield start
    finally:
        for proc in started:
            proc.stop()
