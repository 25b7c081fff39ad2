"""Alembic environment: migrates the connection the server hands in (see ``storage.migrate``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from token_bowl_chat_server.storage.tables import metadata

connection: Connection | None = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through token_bowl_chat_server.storage.migrate")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
