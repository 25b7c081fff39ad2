"""The Alembic migrations are the schema; the query-building tables must match them."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from tests.conftest import NewDatabase
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.tables import metadata


async def test_migrated_schema_matches_the_table_objects(
    tmp_path: Path, new_database: NewDatabase
) -> None:
    db = Database(new_database(tmp_path) or f"sqlite+aiosqlite:///{tmp_path / 'schema.db'}")
    await db.migrate()

    def diff(conn: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await db.close()
    assert {"users", "messages", "receipts", "read_states", "counters"} <= tables


async def test_migrating_twice_is_harmless(tmp_path: Path, new_database: NewDatabase) -> None:
    url = new_database(tmp_path) or f"sqlite+aiosqlite:///{tmp_path / 'twice.db'}"
    for _ in range(2):
        db = Database(url)
        await db.migrate()
        await db.close()
