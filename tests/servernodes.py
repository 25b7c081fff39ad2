"""Server processes that share one PostgreSQL database and one Redis, as several nodes behind
a load balancer are: what the two-node pass of the end-to-end suite runs every server as.

:class:`ServerNodes` answers what tests ask of a :class:`ServerProcess` (``start``, ``stop``,
``kill``, ``log``, ``port``, the admin), for all of its nodes at once, so a test that restarts
or kills "the server" restarts or kills every node.
"""

from __future__ import annotations

import secrets
import signal
from pathlib import Path

from tests.redisserver import RedisServer
from tests.serverproc import ServerProcess


class ServerNodes:
    """``count`` server processes on ``database_url`` (PostgreSQL) and a Redis of their own.

    Each group gets its own Redis: pub/sub channels are global to a Redis server (database
    numbers do not separate them), so two groups on one Redis would hear each other.
    """

    def __init__(
        self,
        data_dir: Path,
        database_url: str,
        env: dict[str, str] | None = None,
        count: int = 2,
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.redis = RedisServer(data_dir / "redis")
        admin_key = secrets.token_hex(32)
        self.nodes: list[ServerProcess] = []
        for index in range(count):
            node_dir = data_dir / f"node{index}"
            node_dir.mkdir(parents=True, exist_ok=True)
            node = ServerProcess(
                node_dir,
                env={**(env or {}), "REDIS_URL": self.redis.url},
                database_url=database_url,
            )
            node.admin_key = admin_key  # one admin for the whole deployment
            self.nodes.append(node)
        self.admin_username = self.nodes[0].admin_username
        self.admin_key = admin_key
        self._merged_log = ""
        self._log_read = [0] * count

    @property
    def port(self) -> int:
        """The first node's port (what a test that puts a proxy before "the server" uses)."""
        return self.nodes[0].port

    @property
    def http_url(self) -> str:
        return self.nodes[0].http_url

    @property
    def ws_url(self) -> str:
        return self.nodes[0].ws_url

    def start(self, timeout: float = 90.0) -> None:
        """Redis (when it is not running), then the nodes all at once, as a deployment
        starts them: they take turns to migrate the schema (a PostgreSQL lock)."""
        if not self.redis.running:
            self.redis.start()
        try:
            for node in self.nodes:
                node.start(timeout, wait=False)
            for node in self.nodes:
                node.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Every node; Redis keeps running, so a stopped group starts again as it was."""
        for node in self.nodes:
            node.stop(sig, timeout)

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()

    def close(self) -> None:
        """Every node, then Redis."""
        self.stop()
        self.redis.stop()

    def log(self) -> str:
        """Every node's log, each new part appended as it is first read: earlier offsets
        stay valid, so ``log()[len(earlier):]`` is what was written since."""
        for index, node in enumerate(self.nodes):
            text = node.log()
            new = text[self._log_read[index] :]
            if new:
                self._log_read[index] = len(text)
                self._merged_log += f"\n--- node{index} ---\n{new}"
        return self._merged_log
