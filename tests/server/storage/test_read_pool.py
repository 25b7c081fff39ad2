"""The read pool keeps its connections: concurrent requests reuse them instead of opening and
closing a connection each time (issue 10: on SQLite each new connection is a new aiosqlite
thread, a file open and the PRAGMAs; on PostgreSQL a new backend process)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event

from tests.conftest import NewDatabase
from token_bowl_chat_server.storage.database import Database

# Above SQLAlchemy's default of 5 kept connections, below its limit of 15 open at once (the
# issue's benchmark runs 16 REST clients; every one of them reads at least its user).
CONCURRENT_READS = 12
ROUNDS = 4


async def test_concurrent_reads_reuse_the_pooled_connections(
    tmp_path: Path, new_database: NewDatabase
) -> None:
    db = Database(new_database(tmp_path) or f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}")
    opened = 0

    @event.listens_for(db.engine.sync_engine, "connect")
    def _count(_dbapi_connection: Any, _record: Any) -> None:
        nonlocal opened
        opened += 1

    async def read(all_holding: asyncio.Barrier) -> None:
        async with db.read() as conn:
            await conn.exec_driver_sql("SELECT 1")
            await all_holding.wait()  # every read holds a connection at the same time

    try:
        for _ in range(ROUNDS):
            all_holding = asyncio.Barrier(CONCURRENT_READS)
            async with asyncio.timeout(60):
                await asyncio.gather(*(read(all_holding) for _ in range(CONCURRENT_READS)))
    finally:
        await db.close()
    # One connection per concurrent read, opened once: none closed and reopened per round.
    assert opened == CONCURRENT_READS
