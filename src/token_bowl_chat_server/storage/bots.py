"""Bot accounts: users with role ``bot`` and the user who created them (``created_by_id``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping, delete, insert, select
from sqlalchemy.exc import IntegrityError

from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.bots import Bot
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.errors import Conflict
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.tables import read_states, users
from token_bowl_chat_server.storage.users import USER_COLUMNS, user_from_row

_owner = users.alias("owner")


def _select_bots() -> Any:
    return (
        select(*USER_COLUMNS, users.c.created_by_id, _owner.c.username.label("owner_username"))
        .select_from(users.outerjoin(_owner, _owner.c.id == users.c.created_by_id))
        .where(users.c.role == Role.BOT.value)
    )


def _bot(row: RowMapping) -> Bot:
    return Bot(
        user=user_from_row(row), owner_id=row["created_by_id"], owner_username=row["owner_username"]
    )


class SqlBotStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, bot: User, api_key_hash: str, owner_id: str) -> None:
        """Insert the bot's account and read state. Raises Conflict when the name is taken."""
        values = {
            "id": bot.id,
            "username": bot.username,
            "role": Role.BOT.value,
            "api_key_hash": api_key_hash,
            "api_key_hint": bot.api_key_hint,
            "email": None,
            "webhook_url": bot.webhook_url,
            "logo": None,
            "emoji": bot.emoji,
            "created_by_id": owner_id,
            "created_at": bot.created_at,
        }
        try:
            async with self.db.write() as conn:
                await conn.execute(insert(users).values(values))
                await conn.execute(insert(read_states).values(user_id=bot.id))
        except IntegrityError:
            # The unique index decides, so a bot and a registration racing for one name
            # cannot both win.
            raise Conflict(f"Username {bot.username} already exists") from None

    async def by_id(self, bot_id: str) -> Bot | None:
        """The bot with this id; None for an unknown id or a user who is not a bot."""
        async with self.db.read() as conn:
            row = (await conn.execute(_select_bots().where(users.c.id == bot_id))).mappings()
            found = row.first()
        return _bot(found) if found else None

    async def owned_by(self, owner_id: str) -> list[Bot]:
        """The bots ``owner_id`` created, oldest first."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                _select_bots()
                .where(users.c.created_by_id == owner_id)
                .order_by(users.c.created_at, users.c.id)
            )
            return [_bot(row) for row in rows.mappings()]

    async def delete(self, bot_id: str) -> bool:
        """Remove the bot's account. Its messages stay (author id cleared, name kept); its
        read state and receipts go with it. False when there was no such bot."""
        async with self.db.write() as conn:
            result = await conn.execute(
                delete(users).where(users.c.id == bot_id, users.c.role == Role.BOT.value)
            )
        return bool(result.rowcount)
