from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

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

    def unique(self, prefix: str = "user") -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def register(self, username: str | None = None, **fields: object) -> Account:
        name = username or self.unique()
        resp = httpx.post(f"{self.http_url}/register", json={"username": name, **fields})
        assert resp.status_code == 201, resp.text
        body = resp.json()
        return Account(id=body["id"], username=body["username"], api_key=body["api_key"])


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real uvicorn server for the session, on a free 127.0.0.1 port and a fresh SQLite file.

    Tests share it, so each must register its own users (``live_server.register()``).
    """
    proc = ServerProcess(tmp_path_factory.mktemp("server"))
    proc.start()
    try:
        yield LiveServer(proc)
    finally:
        proc.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start servers of the test's own (settings as env vars), for tests that restart, kill
    or reconfigure them. Every one started is stopped at the end of the test."""
    started: list[ServerProcess] = []

    def start(**env: str) -> LiveServer:
        proc = ServerProcess(tmp_path / f"server{len(started)}", env=env)
        proc.data_dir.mkdir()
        started.append(proc)
        proc.start()
        return LiveServer(proc)

    try:
        yield start
    finally:
        for proc in started:
            proc.stop()
