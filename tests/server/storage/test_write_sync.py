"""``Database.write_sync`` on SQLite: a transaction handed to the writer thread runs to its end
even when its caller is cancelled, and holds the write lock until then, whether it was already
running or still queued behind another."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from token_bowl_chat_server.storage.database import Database


async def _database(path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    async with db.write() as conn:
        await conn.exec_driver_sql("CREATE TABLE probe (n INTEGER)")
    return db


def _insert(n: int, gate: threading.Event | None = None) -> Callable[[Connection], int]:
    def work(conn: Connection) -> int:
        if gate is not None:
            assert gate.wait(30), "the test never opened the gate"
        conn.execute(text("INSERT INTO probe VALUES (:n)"), {"n": n})
        return n

    return work


async def _stored(db: Database) -> list[int]:
    async with db.read() as conn:
        rows = await conn.exec_driver_sql("SELECT n FROM probe ORDER BY n")
        return [row[0] for row in rows]


async def test_a_cancelled_caller_leaves_its_transaction_to_commit(tmp_path: Path) -> None:
    db = await _database(tmp_path / "w.db")
    gate = threading.Event()
    try:
        first = asyncio.create_task(db.write_sync(_insert(1, gate)))
        for _ in range(10):
            await asyncio.sleep(0)
        first.cancel()  # while its transaction runs (held at the gate)
        for _ in range(10):
            await asyncio.sleep(0)
        # The caller stays until its transaction has ended, holding the write lock.
        assert not first.done()
        assert db._write_lock is not None and db._write_lock.locked()
        gate.set()
        async with asyncio.timeout(30):
            await asyncio.wait({first})
        assert first.cancelled()
        assert await _stored(db) == [1]
    finally:
        gate.set()
        await db.close()


async def test_a_transaction_still_queued_for_its_thread_runs_though_cancelled(
    tmp_path: Path,
) -> None:
    db = await _database(tmp_path / "q.db")
    gate = threading.Event()
    assert db._sync_thread is not None
    busy = db._sync_thread.submit(gate.wait, 30)  # the writer thread is busy elsewhere
    try:
        queued = asyncio.create_task(db.write_sync(_insert(2)))
        for _ in range(10):
            await asyncio.sleep(0)
        queued.cancel()
        for _ in range(10):
            await asyncio.sleep(0)
        gate.set()
        async with asyncio.timeout(30):
            await asyncio.wait({queued})
        assert busy.result() is True
        assert await _stored(db) == [2]  # a transaction handed over is never dropped
    finally:
        gate.set()
        await db.close()


async def test_a_transaction_that_fails_reports_its_error(tmp_path: Path) -> None:
    db = await _database(tmp_path / "e.db")

    def fail(conn: Connection) -> None:
        conn.execute(text("INSERT INTO probe VALUES (7)"))
        raise LookupError("refused by the work itself")

    try:
        try:
            await db.write_sync(fail)
        except LookupError as exc:
            assert "refused" in str(exc)
        else:
            raise AssertionError("the error was lost")
        assert await _stored(db) == []  # rolled back
        assert await db.write_sync(_insert(3)) == 3
    finally:
        await db.close()
