"""Presence across nodes, in Redis: one sorted set per node, and a directory of live nodes.

``tbc:presence:node:<id>`` holds the users with a connection on that node, scored by when
they came online there (ms); ``tbc:presence:nodes`` holds every node, scored by when it
stops counting (ms). A node rewrites both every ``interval`` seconds, with the expiry
``timeout`` ahead, so a node that dies without a word (SIGKILL, a lost machine) drops out
within ``timeout``; its set also expires by itself. Between rewrites, one writer task applies
each change as it happens, so the others see a new connection at once.

``presence_changed`` frames are cluster-wide: a user coming online on this node is announced
only when no other node has them, and going offline only when no other node still does.
While Redis is away the node answers from its own connections and announces locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.realtime.audience import Audience
from token_bowl_chat_server.realtime.hub import Hub
from token_bowl_chat_server.realtime.presence_frames import presence_frame

logger = logging.getLogger(__name__)

NODES_KEY = "tbc:presence:nodes"


def node_key(node_id: str) -> str:
    return f"tbc:presence:node:{node_id}"


def _now_ms() -> int:
    return int(time.time() * 1000)


class RedisPresenceStore:
    def __init__(
        self,
        hub: Hub,
        redis: Redis,
        node_id: str,
        publish: Callable[[Audience, str], None],
        interval: float,
        timeout: float,
        connected: Callable[[], bool],
    ) -> None:
        self.hub = hub
        self.redis = redis
        self.node_id = node_id
        # The broker's publish: this node's hub now, the other nodes through Redis.
        self.publish = publish
        self.interval = interval
        self.timeout = timeout
        self.connected = connected
        self._key = node_key(node_id)
        self._since: dict[str, int] = {}  # local users -> when they came online here (ms)
        self._changes: list[tuple[User, bool]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    # --- the PresenceStore port ---------------------------------------------------------------

    def user_online(self, user: User) -> None:
        self._since.setdefault(user.id, _now_ms())
        self._changes.append((user, True))
        self._wake.set()

    def user_offline(self, user: User) -> None:
        self._since.pop(user.id, None)
        self._changes.append((user, False))
        self._wake.set()

    async def online_user_ids(self) -> list[str]:
        local = self.hub.online_user_ids()
        if not self.connected():
            return local
        try:
            others = await self._other_nodes()
            async with self.redis.pipeline(transaction=False) as pipe:
                for node in others:
                    pipe.zrange(node_key(node), 0, -1, withscores=True)
                listed: list[list[tuple[bytes, float]]] = await pipe.execute()
        except (RedisError, OSError):
            return local
        first_seen: dict[str, float] = {user_id: self._since.get(user_id, 0) for user_id in local}
        for entries in listed:
            for raw, score in entries:
                user_id = raw.decode()
                first_seen[user_id] = min(score, first_seen.get(user_id, score))
        return sorted(first_seen, key=lambda user_id: first_seen[user_id])

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._write_forever(), name="presence")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(NODES_KEY, self.node_id)
                pipe.delete(self._key)
                await pipe.execute()

    async def register(self) -> None:
        """Write this node's whole state (at every tick, and after Redis comes back)."""
        now = _now_ms()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key)
            if self._since:
                pipe.zadd(self._key, {user: float(ms) for user, ms in self._since.items()})
            pipe.pexpire(self._key, int(self.timeout * 1000))
            pipe.zadd(NODES_KEY, {self.node_id: float(now + int(self.timeout * 1000))})
            pipe.zremrangebyscore(NODES_KEY, "-inf", now)
            await pipe.execute()

    # --- internals ----------------------------------------------------------------------------

    async def _other_nodes(self) -> list[str]:
        live = await self.redis.zrangebyscore(NODES_KEY, _now_ms(), "+inf")
        nodes = [raw.decode() if isinstance(raw, bytes) else str(raw) for raw in live]
        return [node for node in nodes if node != self.node_id]

    async def _write_forever(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_tick - loop.time()))
            self._wake.clear()
            changes, self._changes = self._changes, []
            try:
                for user, online in changes:
                    await self._apply(user, online)
                if loop.time() >= next_tick:
                    next_tick = loop.time() + self.interval
                    await self._tick()
            except Exception:  # a bug must not end presence for the life of the process
                logger.exception("presence: writing failed")

    async def _tick(self) -> None:
        if not self.connected():
            return
        try:
            await self.register()
        except (RedisError, OSError) as exc:
            self._fail(exc)
        else:
            self._failing = False

    async def _apply(self, user: User, online: bool) -> None:
        """Write one change and announce it if it changes what the cluster sees."""
        if self.hub.presence.is_online(user.id) != online:
            return  # undone since: the change that undid it is queued behind this one
        announce = True
        if self.connected():
            try:
                if online:
                    since = self._since.get(user.id, _now_ms())
                    await self.redis.zadd(self._key, {user.id: float(since)})
                else:
                    await self.redis.zrem(self._key, user.id)
                announce = not await self._elsewhere(user.id)
                self._failing = False
            except (RedisError, OSError) as exc:
                self._fail(exc)
        if announce:
            self.publish(*presence_frame(user, online=online))

    async def _elsewhere(self, user_id: str) -> bool:
        others = await self._other_nodes()
        if not others:
            return False
        async with self.redis.pipeline(transaction=False) as pipe:
            for node in others:
                pipe.zscore(node_key(node), user_id)
            scores: list[float | None] = await pipe.execute()
        return any(score is not None for score in scores)

    def _fail(self, exc: BaseException) -> None:
        if not self._failing:
            logger.warning("presence: Redis unavailable (%s); answering for this node only", exc)
        self._failing = True
