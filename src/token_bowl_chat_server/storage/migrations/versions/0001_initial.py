"""Initial schema: users, read states, messages, receipts, counters.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("username", sa.String(50), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("api_key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("api_key_hint", sa.String(8), nullable=False),
        sa.Column("email", sa.String(255), nullable=True),
        sa.Column("webhook_url", sa.String(2083), nullable=True),
        sa.Column("logo", sa.String(64), nullable=True),
        sa.Column("emoji", sa.String(32), nullable=True),
        sa.Column("created_by_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "read_states",
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("room_cursor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("direct_cursor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("room_seen", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("direct_unread", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "messages",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("message_type", sa.String(8), nullable=False),
        sa.Column("from_user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("from_username", sa.String(50), nullable=False),
        sa.Column("to_user_id", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("to_username", sa.String(50), nullable=True),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("client_message_id", sa.String(128), nullable=True),
        sa.UniqueConstraint("from_user_id", "client_message_id", name="uq_messages_client_id"),
    )
    op.create_index("ix_messages_type_seq", "messages", ["message_type", "seq"])
    op.create_index("ix_messages_type_created", "messages", ["message_type", "created_at"])
    op.create_index("ix_messages_from_seq", "messages", ["from_user_id", "seq"])
    op.create_index("ix_messages_to_seq", "messages", ["to_user_id", "seq"])
    op.create_table(
        "receipts",
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "message_seq",
            sa.BigInteger,
            sa.ForeignKey("messages.seq", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("read_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_receipts_message", "receipts", ["message_seq"])
    op.create_table(
        "counters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("room_messages", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO counters (id, last_seq, room_messages) VALUES (1, 0, 0)")


def downgrade() -> None:
    op.drop_table("counters")
    op.drop_table("receipts")
    op.drop_table("messages")
    op.drop_table("read_states")
    op.drop_table("users")
