"""Message edits and deletes, replayed in seq order.

``messages`` gains ``edited_at`` and ``deleted_at`` (a deleted message is kept as a
tombstone); ``message_events`` holds each edit and delete with its own ``seq``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("edited_at", sa.BigInteger, nullable=True))
    op.add_column("messages", sa.Column("deleted_at", sa.BigInteger, nullable=True))
    op.create_table(
        "message_events",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column(
            "message_seq",
            sa.BigInteger,
            sa.ForeignKey("messages.seq", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column(
            "actor_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("content", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_message_events_message", "message_events", ["message_seq"])


def downgrade() -> None:
    op.drop_index("ix_message_events_message", table_name="message_events")
    op.drop_table("message_events")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+, PostgreSQL): no table copy, which on
    # SQLite would drop and re-create ``messages`` under the receipts that reference it.
    op.drop_column("messages", "deleted_at")
    op.drop_column("messages", "edited_at")
