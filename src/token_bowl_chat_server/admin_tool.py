"""``token-bowl admin create``: make an admin on the server's machine, without the API.

It opens the server's own database (the same settings the server reads: ``DATABASE_URL``,
``.env``) through the storage layer, migrates it like a server start would, and creates the
user as an admin or promotes an existing one. Either way the account gets a new key, shown
once: keys are stored hashed, so an existing one cannot be shown again.

A server running on the same database notices at once for new requests (they read the
account fresh); sockets it already holds for that account keep their old role until they
reconnect (the old key no longer opens a new one), since this process cannot reach them.
"""

from __future__ import annotations

from dataclasses import dataclass

from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.realtime.connection import Connection
from token_bowl_chat_server.services.admin import AdminService
from token_bowl_chat_server.settings import Settings
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.user_admin import SqlUserAdminStore
from token_bowl_chat_server.storage.users import SqlUserStore


@dataclass(frozen=True, slots=True)
class MadeAdmin:
    user: User
    api_key: str
    created: bool  # False: an existing user was promoted (and given a new key)


class _NoSessions:
    """This process holds no sockets: there is nothing to close or refresh here."""

    async def online_user_ids(self) -> list[str]:
        return []

    def close_user(self, user_id: str, code: int, reason: str) -> None:
        return None

    def refresh(self, user: User) -> None:
        return None

    def all_connections(self) -> list[Connection]:
        return []


async def create_admin(settings: Settings, username: str) -> MadeAdmin:
    db = Database(settings.database_url)
    try:
        await db.migrate()
        none = _NoSessions()
        service = AdminService(
            SqlUserStore(db),
            SqlUserAdminStore(db),
            none,
            none,
            stale_after=settings.heartbeat_timeout,
        )
        user, key, created = await service.create_or_promote_admin(username)
        return MadeAdmin(user, key, created)
    finally:
        await db.close()
