"""A throwaway PostgreSQL cluster on 127.0.0.1 for tests that run against PostgreSQL.

Uses Debian's ``postgresql`` binaries (``/usr/lib/postgresql/<v>/bin``). PostgreSQL refuses to
run as root, so as root the cluster belongs to the ``postgres`` system user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.serverproc import free_port


def postgres_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed: apt-get install postgresql (make test does this as root)"
        )
    return Path(found[-1]).parent


class PostgresCluster:
    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.port = free_port()
        # Outside pytest's tmp (0700 for root), so the postgres user can reach it.
        self.root = Path(tempfile.mkdtemp(prefix="tbc-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        self._databases = 0
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> list[str]:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return cmd

    def start(self, timeout: float = 30.0) -> None:
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            self._run(
                str(self.bindir / "initdb"),
                "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
        )  # fmt: skip
        self.launch(timeout)

    def launch(self, timeout: float = 30.0) -> None:
        """Start the postgres server on the existing data directory and wait until ready."""
        log = (self.root / "postgres.log").open("ab")
        self.proc = subprocess.Popen(
            self._run(
                str(self.bindir / "postgres"),
                "-D", str(self.data), "-p", str(self.port), "-h", "127.0.0.1",
                "-k", str(self.root), "-c", "fsync=off", "-c", "max_connections=300",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("PostgreSQL did not start: " + (self.root / "postgres.log").read_text())

    def create_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy async URL."""
        self._databases += 1
        name = f"tbc{self._databases}"
        subprocess.run(
            [
                str(self.bindir / "psql"),
                "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q",
                "-c", f"CREATE DATABASE {name}",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"

    def shut_down(self, timeout: float = 30.0) -> None:
        """Fast shutdown, as an operator's restart does: open sessions are terminated, the
        data stays. :meth:`launch` starts it again on the same port."""
        if self.proc is None or self.proc.poll() is not None:
            return
        # pg_ctl signals the postmaster itself (runuser, our child, would not pass SIGINT on)
        # and waits until it has exited.
        subprocess.run(
            self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                "-t", str(int(timeout)), "stop",
            ),
            check=True,
            capture_output=True,
        )  # fmt: skip
        self.proc.wait(timeout)

    def restart(self, timeout: float = 30.0) -> None:
        self.shut_down(timeout)
        self.launch(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # smart shutdown
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)


@contextlib.contextmanager
def running_cluster() -> Iterator[PostgresCluster]:
    """A started throwaway cluster, stopped when the block ends (for fixtures)."""
    cluster = PostgresCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
