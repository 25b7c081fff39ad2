"""Per-user webhook secrets and the delivery log.

``users.webhook_secret`` keys the HMAC of every request to that user's webhook (NULL: no
webhook, or one set before this revision, sent unsigned until the owner sets or rotates it).
``webhook_deliveries`` keeps each user's newest deliveries and their outcome.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("webhook_secret", sa.String(64), nullable=True))
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("message_id", sa.String(36), nullable=False),
        sa.Column("url", sa.String(2083), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_webhook_deliveries_user", "webhook_deliveries", ["user_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_user", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+, PostgreSQL), no table copy.
    op.drop_column("users", "webhook_secret")
