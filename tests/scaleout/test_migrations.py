"""Nodes that start together on an empty PostgreSQL database: each brings the schema to the
newest revision at start, and only one of them may do it (the others wait, then find
nothing left to do) instead of failing on tables the first one just created."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from tests.pgcluster import PostgresCluster
from token_bowl_chat_server.storage.database import Database


async def test_concurrent_migrations_of_one_database_all_succeed(
    scaleout_cluster: PostgresCluster,
) -> None:
    for _ in range(3):
        url = scaleout_cluster.create_database()
        nodes = [Database(url) for _ in range(4)]
        try:
            # Without the lock they did not finish at all (each waited on the other's tables).
            async with asyncio.timeout(60):
                await asyncio.gather(*(db.migrate() for db in nodes))
            async with nodes[0].engine.connect() as conn:
                revisions = await conn.execute(text("SELECT version_num FROM alembic_version"))
                assert len(revisions.all()) == 1
        finally:
            for db in nodes:
                await db.close()
