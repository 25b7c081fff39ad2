"""``token-bowl admin create``: make an admin on the server's machine, without the API.

It opens the server's own database (the same settings the server reads: ``DATABASE_URL``,
``.env``) through the storage layer, migrates it like a server start would, and creates the
user as an admin or promotes an existing one. Either way the account gets a new key, shown
once: keys are stored hashed, so an existing one cannot be shown again.

A server running on the same database notices for new requests within its account cache
time (``TOKEN_BOWL_ACCOUNT_CACHE_SECONDS``). With ``REDIS_URL`` set, the change is also sent
to every node the way a node sends it to the others, so sockets already open for that
account are closed (its key changed) and every node forgets the cached account at once;
without Redis this process cannot reach them, and they keep their old role until they
reconnect (the old key no longer opens a new one).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from redis.asyncio import Redis

from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.realtime.broker_redis import CHANNEL
from token_bowl_chat_server.realtime.cluster_codec import encode_batch, encode_command
from token_bowl_chat_server.realtime.connection import Connection
from token_bowl_chat_server.realtime.sessions import CLOSE_USER, REFRESH, user_to_fields
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


class _NodesSessions(_NoSessions):
    """The sockets are on the server's nodes: the commands a node would broadcast, sent to
    all of them through Redis once the change is stored."""

    def __init__(self) -> None:
        self.sender = f"admin-tool-{uuid.uuid4().hex[:8]}"
        self.commands: list[str] = []

    def close_user(self, user_id: str, code: int, reason: str) -> None:
        self.commands.append(
            encode_command(self.sender, CLOSE_USER, user_id=user_id, code=code, reason=reason)
        )

    def refresh(self, user: User) -> None:
        self.commands.append(encode_command(self.sender, REFRESH, user=user_to_fields(user)))

    async def send(self, redis_url: str) -> None:
        if not self.commands:
            return
        redis = Redis.from_url(redis_url, socket_connect_timeout=5.0, socket_timeout=5.0)
        try:
            await redis.publish(CHANNEL, encode_batch(self.commands))
        finally:
            await redis.aclose()


async def create_admin(settings: Settings, username: str) -> MadeAdmin:
    db = Database(settings.database_url)
    try:
        await db.migrate()
        sessions = _NodesSessions() if settings.redis_url else _NoSessions()
        service = AdminService(
            SqlUserStore(db),
            SqlUserAdminStore(db),
            sessions,
            sessions,
            stale_after=settings.heartbeat_timeout,
        )
        user, key, created = await service.create_or_promote_admin(username)
        if isinstance(sessions, _NodesSessions) and settings.redis_url:
            await sessions.send(settings.redis_url)
        return MadeAdmin(user, key, created)
    finally:
        await db.close()
