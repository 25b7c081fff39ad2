"""Conversations: titled lists of message ids (PROTOCOL.md 4.7).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_by_id", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("created_by_username", sa.String(50), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_conversations_creator", "conversations", ["created_by_id", "created_at"])
    op.create_index("ix_conversations_created", "conversations", ["created_at"])
    op.create_table(
        "conversation_messages",
        sa.Column(
            "conversation_id",
            sa.String(36),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column(
            "message_seq",
            sa.BigInteger,
            sa.ForeignKey("messages.seq", ondelete="CASCADE"),
            nullable=False,
        ),
    )
    op.create_index("ix_conversation_messages_message", "conversation_messages", ["message_seq"])


def downgrade() -> None:
    op.drop_index("ix_conversation_messages_message", table_name="conversation_messages")
    op.drop_table("conversation_messages")
    op.drop_index("ix_conversations_created", table_name="conversations")
    op.drop_index("ix_conversations_creator", table_name="conversations")
    op.drop_table("conversations")
