"""Account changes an admin makes: every user listed, a profile or role changed, a user
deleted.

A change that could take the admin role away (a demotion, a deletion) locks every admin row
first, in id order, then decides inside the same transaction whether an admin remains
(``domain/admins.py``). Two admins demoting each other at once therefore queue on the same
locks: on PostgreSQL the second one re-reads the admin rows after the first commits and
sees one admin left; on SQLite every write transaction runs alone anyway. Taking the admin
rows before the target row, always, keeps the lock order the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.admins import check_an_admin_remains
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.errors import Conflict
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.tables import users
from token_bowl_chat_server.storage.users import USER_COLUMNS, user_from_row

# Given the account as it is now (read under lock), the columns to set.
Decide = Callable[[User], Mapping[str, Any]]


async def _lock_admins(conn: AsyncConnection) -> list[str]:
    rows = await conn.execute(
        select(users.c.id)
        .where(users.c.role == Role.ADMIN.value)
        .order_by(users.c.id)
        .with_for_update()
    )
    return [row.id for row in rows]


async def _locked_user(conn: AsyncConnection, user_id: str) -> User | None:
    row = (
        (await conn.execute(select(*USER_COLUMNS).where(users.c.id == user_id).with_for_update()))
        .mappings()
        .first()
    )
    return user_from_row(row) if row else None


class SqlUserAdminStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list_all(self) -> list[User]:
        """Every account, viewers and bots included, oldest first."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(*USER_COLUMNS).order_by(users.c.created_at, users.c.id)
            )
            return [user_from_row(row) for row in rows.mappings()]

    async def change(self, user_id: str, decide: Decide) -> tuple[User, User] | None:
        """Apply ``decide(current)`` to the account; returns it before and after, or
        ``None`` when there is no such user.

        Raises ``Conflict``: ``last_admin`` when the change would leave no admin,
        ``username_taken`` for a taken name. Whatever ``decide`` raises rolls back.
        """
        values: Mapping[str, Any] = {}
        try:
            async with self.db.write() as conn:
                admins = await _lock_admins(conn)
                before = await _locked_user(conn, user_id)
                if before is None:
                    return None
                values = decide(before)
                role = values.get("role", before.role.value)
                check_an_admin_remains(admins, user_id, stays_admin=role == Role.ADMIN.value)
                if values:
                    await conn.execute(update(users).where(users.c.id == user_id).values(values))
                after = await _locked_user(conn, user_id)
                assert after is not None  # locked since it was read
        except IntegrityError:
            # The unique index decides, so a racing registration cannot take the name too.
            raise Conflict(f"Username {values.get('username')} already exists") from None
        return before, after

    async def delete(self, user_id: str) -> list[str] | None:
        """Delete the account and the bots it created; returns their ids (the account's
        first), or ``None`` when there is no such user. Raises ``Conflict`` (``last_admin``)
        for the only admin.

        Messages stay, under the name they were sent with; read state goes with the account.
        """
        async with self.db.write() as conn:
            admins = await _lock_admins(conn)
            target = await _locked_user(conn, user_id)
            if target is None:
                return None
            check_an_admin_remains(admins, user_id, stays_admin=False)
            gone = or_(
                users.c.id == user_id,
                and_(users.c.created_by_id == user_id, users.c.role == Role.BOT.value),
            )
            rows = await conn.execute(delete(users).where(gone).returning(users.c.id))
            deleted = [row.id for row in rows]
        return [user_id, *(i for i in deleted if i != user_id)]
