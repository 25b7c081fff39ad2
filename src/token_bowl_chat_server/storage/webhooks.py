"""Webhook secrets and the delivery log.

The secret lives in ``users.webhook_secret`` beside the URL it signs for, so a URL and its
secret are always written together, in one statement, and read together by the workers. It
is never part of :class:`~token_bowl_chat_server.domain.entities.User`: nothing but the
webhook code can leak it into a response or a log.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import RowMapping, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from token_bowl_chat_server.domain.webhook_policy import DeliveryOutcome, DeliveryRecord
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.tables import users, webhook_deliveries

_d = webhook_deliveries


def _record(row: RowMapping) -> DeliveryRecord:
    return DeliveryRecord(
        id=row["id"],
        user_id=row["user_id"],
        message_id=row["message_id"],
        url=row["url"],
        outcome=DeliveryOutcome(row["outcome"]),
        attempts=row["attempts"],
        status_code=row["status_code"],
        error=row["error"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )


class SqlWebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def set_webhook(self, user_id: str, url: str | None, secret: str | None) -> bool:
        """Replace the user's URL and secret together; False if there is no such user."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(webhook_url=url, webhook_secret=secret)
            )
        return bool(result.rowcount)

    async def set_secret(self, user_id: str, secret: str) -> bool:
        """Replace the secret of a user that has a webhook URL; False if none is set."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(users)
                .where(users.c.id == user_id, users.c.webhook_url.is_not(None))
                .values(webhook_secret=secret)
            )
        return bool(result.rowcount)

    async def endpoints(self, user_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """``user_id -> (url, secret)`` for those of ``user_ids`` that have a webhook now."""
        if not user_ids:
            return {}
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(users.c.id, users.c.webhook_url, users.c.webhook_secret).where(
                    users.c.id.in_(user_ids), users.c.webhook_url.is_not(None)
                )
            )
            return {row.id: (row.webhook_url, row.webhook_secret) for row in rows}

    async def record(self, records: Sequence[DeliveryRecord], keep: int) -> int:
        """Store finished deliveries in one transaction and trim each user's log to its
        newest ``keep``. Records of users deleted meanwhile are skipped. Returns how many
        were stored."""
        if not records:
            return 0
        user_ids = sorted({r.user_id for r in records})
        try:
            async with self.db.write() as conn:
                existing = set(
                    (
                        await conn.execute(select(users.c.id).where(users.c.id.in_(user_ids)))
                    ).scalars()
                )
                rows = [_values(r) for r in records if r.user_id in existing]
                if rows:
                    await conn.execute(insert(_d), rows)
                for user_id in existing:
                    newest = (
                        select(_d.c.id)
                        .where(_d.c.user_id == user_id)
                        .order_by(_d.c.created_at.desc(), _d.c.id.desc())
                        .limit(keep)
                    )
                    await conn.execute(
                        delete(_d).where(_d.c.user_id == user_id, _d.c.id.not_in(newest))
                    )
        except IntegrityError:
            # A user deleted between the check and the insert (PostgreSQL): this batch of
            # log lines is lost, nothing else is affected.
            return 0
        return len(rows)

    async def recent(self, user_id: str, limit: int) -> list[DeliveryRecord]:
        """The user's newest deliveries, newest first."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(_d)
                .where(_d.c.user_id == user_id)
                .order_by(_d.c.created_at.desc(), _d.c.id.desc())
                .limit(limit)
            )
            return [_record(row) for row in rows.mappings()]


def _values(record: DeliveryRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "user_id": record.user_id,
        "message_id": record.message_id,
        "url": record.url[:2083],
        "outcome": record.outcome.value,
        "attempts": record.attempts,
        "status_code": record.status_code,
        "error": record.error[:64] if record.error else None,
        "created_at": record.created_at,
        "finished_at": record.finished_at,
    }
