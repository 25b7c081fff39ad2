"""``Database.read_sync`` on SQLite: the hot point reads run on the event loop's own
connection, and one that would have to wait for a lock goes to a reader thread instead, so
the event loop never waits on SQLite (issue 10: unread counts in a fraction of a thread trip).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from token_bowl_chat_server.storage.database import Database


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def _fresh(path: Path) -> None:
    """A migrated database file with one table of our own, and no connection left open."""
    db = Database(_url(path))
    await db.migrate()
    async with db.write() as conn:
        await conn.exec_driver_sql("CREATE TABLE probe (n INTEGER)")
        await conn.exec_driver_sql("INSERT INTO probe VALUES (1)")
    await db.close()


def _count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM probe")).scalar_one())


async def test_point_reads_see_every_commit_and_run_on_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "point.db"
    await _fresh(path)
    db = Database(_url(path))
    threads: list[threading.Thread] = []
    counted = counted_thread(threads)
    try:
        assert await db.read_sync(counted) == 1
        for expected in range(2, 6):
            async with db.write() as conn:
                await conn.exec_driver_sql("INSERT INTO probe VALUES (1)")
            # No snapshot is held between reads: each one sees the commit just made.
            assert await db.read_sync(counted) == expected
    finally:
        await db.close()
    assert set(threads) == {threading.current_thread()}


def _sqlite_error(code: int, message: str) -> OperationalError:
    orig = sqlite3.OperationalError(message)
    orig.sqlite_errorcode = code  # as SQLite sets it
    return OperationalError("SELECT count(*) FROM probe", {}, orig)


@pytest.mark.parametrize(
    ("code", "keeps_connection"),
    [(5, True), (6, True), (10, False)],  # SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR
)
async def test_a_point_read_that_cannot_run_at_once_runs_on_a_reader_thread(
    tmp_path: Path, code: int, keeps_connection: bool
) -> None:
    """In WAL mode a read waits for a lock only in rare moments (another program holding the
    file exclusively, a recovery); the loop's connection has no busy timeout, so SQLite
    reports busy at once, and the read runs again on a reader thread, which may wait."""
    path = tmp_path / "busy.db"
    await _fresh(path)
    db = Database(_url(path))
    loop_thread = threading.current_thread()
    ran_on: list[threading.Thread] = []

    def busy_on_the_loop(conn: Connection) -> int:
        ran_on.append(threading.current_thread())
        if threading.current_thread() is loop_thread:
            conn.execute(text("SELECT 1"))  # a statement was under way
            raise _sqlite_error(code, "database is locked")
        return _count(conn)

    try:
        assert await db.read_sync(_count) == 1
        loop_connection = db._inline_conn
        assert loop_connection is not None
        assert await db.read_sync(busy_on_the_loop) == 1
        assert ran_on[0] is loop_thread and ran_on[1] is not loop_thread
        assert len(ran_on) == 2
        # Busy: the same connection serves the next read; another error: a new one does.
        assert (db._inline_conn is loop_connection) is keeps_connection
        ran_on.clear()
        assert await db.read_sync(counted_thread(ran_on)) == 1
        assert ran_on == [loop_thread]
    finally:
        await db.close()


def counted_thread(ran_on: list[threading.Thread]) -> Callable[[Connection], int]:
    def read(conn: Connection) -> int:
        ran_on.append(threading.current_thread())
        return _count(conn)

    return read


@pytest.mark.parametrize("concurrent", [1, 8])
async def test_first_reads_at_once_open_one_loop_connection(
    tmp_path: Path, concurrent: int
) -> None:
    path = tmp_path / "first.db"
    await _fresh(path)
    db = Database(_url(path))
    try:
        results = await asyncio.gather(*(db.read_sync(_count) for _ in range(concurrent)))
        assert results == [1] * concurrent
        assert db._sync_reader is not None
        # The loop's connection, and none left checked out by the first reads.
        assert db._sync_reader.pool.checkedout() == 1  # type: ignore[attr-defined]
    finally:
        await db.close()
