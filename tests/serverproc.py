"""Run the real server as a child process on a free 127.0.0.1 port, for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One ``python -m token_bowl_chat_server`` child. Stop it only through this object."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, database_url: str | None = None
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url or f"sqlite+aiosqlite:///{data_dir / 'chat.db'}"
        self.port = free_port()
        self.log_path = data_dir / "server.log"
        self.extra_env = env or {}
        # Every test server has an admin (registration never grants the role); tests reach it
        # through LiveServer.admin.
        self.admin_username = "admin"
        self.admin_key = secrets.token_hex(32)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, timeout: float = 90.0, *, wait: bool = True) -> None:
        """Start the process and (``wait``) return once it answers ``/health``."""
        # A bound, not a wait: start returns as soon as /health answers. A loaded 2-core
        # machine running several test workers has taken over 20 s to start a server (and
        # the bot tests, which start several, once waited up to 90 s on their own).
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "TOKEN_BOWL_LOG_LEVEL": "info",
            # Tests send in bursts; the rate limit has a test of its own that lowers this.
            "TOKEN_BOWL_SEND_RATE": "100000",
            "TOKEN_BOWL_SEND_BURST": "100000",
            "TOKEN_BOWL_REGISTER_RATE": "100000",
            "TOKEN_BOWL_REGISTER_BURST": "100000",
            # Bots' own send limit and the room's bot-turn cap are global to a server (the
            # cap to the whole room), so tests sharing one must not trip them; tests/e2e/
            # test_bots.py sets them on servers of its own.
            "TOKEN_BOWL_BOT_SEND_RATE": "100000",
            "TOKEN_BOWL_BOT_SEND_BURST": "100000",
            "TOKEN_BOWL_BOT_TURN_CAP": "0",
            # Likewise the inbound frame budget and the connection caps (tests/e2e/
            # test_lifecycle.py lowers them).
            "TOKEN_BOWL_WS_FRAME_RATE": "100000",
            "TOKEN_BOWL_WS_FRAME_BURST": "100000",
            "TOKEN_BOWL_WS_MAX_CONNECTIONS_PER_USER": "100000",
            "TOKEN_BOWL_WS_MAX_CONNECTIONS_PER_ADDRESS": "100000",
            "TOKEN_BOWL_BOOTSTRAP_ADMIN_USERNAME": self.admin_username,
            "TOKEN_BOWL_BOOTSTRAP_ADMIN_KEY": self.admin_key,
            **self.extra_env,
        }
        self._env = env
        self._port_retries = 3
        self._launch()
        if wait:
            self.wait_healthy(timeout)

    def _launch(self) -> None:
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "token_bowl_chat_server",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def _lost_its_port(self) -> bool:
        """Whether the process just exited because its port was taken: free_port() only
        finds a port free, and a client socket of another test may take it before the
        server binds it."""
        return b"address already in use" in self.log_path.read_bytes()[self._log_start :]

    def wait_healthy(self, timeout: float = 90.0) -> None:
        """Until the started process answers ``/health`` (stopped again if it never does)."""
        assert self.proc is not None, "not started"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if self._port_retries > 0 and self._lost_its_port():
                    self._port_retries -= 1
                    self.port = free_port()
                    self._launch()
                    continue
                raise RuntimeError(f"server exited early:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.http_url}/health", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        self.stop(signal.SIGKILL)
