"""Bot accounts: ownership and loop limits.

``users.created_by_id`` (from 0001) names a bot's owner; an index lists one owner's bots
without reading every account. ``counters.bot_streak`` counts the room's bot messages since
its last message by a non-bot, kept in the transaction that stores messages (the bot-turn
cap, domain/bot_turns.py). ``messages.from_bot`` records whether the author was a bot when
it sent, so a deleted bot's messages stay flagged as automated.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_users_created_by", "users", ["created_by_id", "created_at"])
    op.add_column(
        "counters",
        sa.Column("bot_streak", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.add_column(
        "messages",
        sa.Column("from_bot", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.execute(
        "UPDATE messages SET from_bot = TRUE"
        " WHERE from_user_id IN (SELECT id FROM users WHERE role = 'bot')"
    )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("from_bot")
    with op.batch_alter_table("counters") as batch:
        batch.drop_column("bot_streak")
    op.drop_index("ix_users_created_by", table_name="users")
