"""User accounts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import RowMapping, insert, select, update
from sqlalchemy.exc import IntegrityError

from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.errors import Conflict
from token_bowl_chat_server.domain.permissions import Action, roles_allowed
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.tables import read_states, users

USER_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.role,
    users.c.logo,
    users.c.emoji,
    users.c.webhook_url,
    users.c.email,
    users.c.api_key_hint,
    users.c.created_at,
)


def user_from_row(row: RowMapping) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        role=Role(row["role"]),
        logo=row["logo"],
        emoji=row["emoji"],
        webhook_url=row["webhook_url"],
        email=row["email"],
        api_key_hint=row["api_key_hint"],
        created_at=row["created_at"],
    )


def _taken(username: str) -> Conflict:
    return Conflict(f"Username {username} already exists")


class SqlUserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, user: User, api_key_hash: str) -> User:
        """Insert a user and their read state. Raises Conflict when the name is taken."""
        values = {
            "id": user.id,
            "username": user.username,
            "role": user.role.value,
            "api_key_hash": api_key_hash,
            "api_key_hint": user.api_key_hint,
            "email": user.email,
            "webhook_url": user.webhook_url,
            "logo": user.logo,
            "emoji": user.emoji,
            "created_at": user.created_at,
        }
        try:
            async with self.db.write() as conn:
                await conn.execute(insert(users).values(values))
                await conn.execute(insert(read_states).values(user_id=user.id))
        except IntegrityError:
            # The unique index decides, so two racing registrations cannot both win.
            raise _taken(user.username) from None
        return user

    async def _one(self, *where: Any) -> User | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(*USER_COLUMNS).where(*where))).mappings().first()
        return user_from_row(row) if row else None

    async def by_id(self, user_id: str) -> User | None:
        return await self._one(users.c.id == user_id)

    async def by_username(self, username: str) -> User | None:
        return await self._one(users.c.username == username)

    async def by_key_hash(self, api_key_hash: str) -> tuple[User, str] | None:
        async with self.db.read() as conn:
            row = (
                (
                    await conn.execute(
                        select(*USER_COLUMNS, users.c.api_key_hash).where(
                            users.c.api_key_hash == api_key_hash
                        )
                    )
                )
                .mappings()
                .first()
            )
        return (user_from_row(row), row["api_key_hash"]) if row else None

    async def list_chat_users(self) -> list[User]:
        """Everyone but viewers, oldest account first."""
        listed = [role.value for role in roles_allowed(Action.LISTED_AS_CHAT_USER)]
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(*USER_COLUMNS)
                .where(users.c.role.in_(listed))
                .order_by(users.c.created_at, users.c.id)
            )
            return [user_from_row(row) for row in rows.mappings()]

    async def with_webhooks(self) -> list[User]:
        """Users with a webhook URL (any role; the caller applies the delivery rules)."""
        async with self.db.read() as conn:
            rows = await conn.execute(select(*USER_COLUMNS).where(users.c.webhook_url.is_not(None)))
            return [user_from_row(row) for row in rows.mappings()]

    async def by_ids(self, user_ids: Sequence[str]) -> dict[str, User]:
        if not user_ids:
            return {}
        async with self.db.read() as conn:
            rows = await conn.execute(select(*USER_COLUMNS).where(users.c.id.in_(user_ids)))
            return {row["id"]: user_from_row(row) for row in rows.mappings()}

    async def update(self, user_id: str, **values: Any) -> User | None:
        """Set profile columns. Raises Conflict when a new username is taken."""
        try:
            async with self.db.write() as conn:
                await conn.execute(update(users).where(users.c.id == user_id).values(**values))
        except IntegrityError:
            raise _taken(str(values.get("username"))) from None
        return await self.by_id(user_id)
