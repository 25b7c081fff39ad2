"""Presence across nodes, in Redis: one sorted set per node, and a directory of live nodes.

``tbc:presence:node:<id>`` holds the users with a connection on that node, scored by when
they came online there (ms), and ``tbc:presence:names:<id>`` their usernames;
``tbc:presence:nodes`` holds every node, scored by when it stops counting (ms). A node
rewrites all three every ``interval`` seconds, with the expiry ``timeout`` ahead, so a node
that dies without a word (SIGKILL, a lost machine) drops out within ``timeout``. Between
rewrites, one writer task applies each change as it happens, so the others see a new
connection at once.

``presence_changed`` frames are cluster-wide: a user coming online on this node is announced
only when no other node has them, and going offline only when no other node still does.
Each change and its "anywhere else?" question run as one Lua script, which Redis runs alone:
of two nodes whose last connections of a user close at once, exactly one sees the other's
removal and announces the user offline (and of two first connections, exactly one
announces online). A node's sets outlive its directory entry by one more ``timeout``, so
the first live node to tick after a node died reaps it, atomically too: it announces offline
the dead node's users that no live node holds. While Redis is away the node answers from its
own connections and announces locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.realtime.audience import Audience
from token_bowl_chat_server.realtime.hub import Hub
from token_bowl_chat_server.realtime.presence_frames import presence_frame

logger = logging.getLogger(__name__)

NODES_KEY = "tbc:presence:nodes"
NODE_PREFIX = "tbc:presence:node:"
NAMES_PREFIX = "tbc:presence:names:"


def node_key(node_id: str) -> str:
    return NODE_PREFIX + node_id


def names_key(node_id: str) -> str:
    return NAMES_PREFIX + node_id


# KEYS: directory, this node's set, this node's names. ARGV: "1" online / "0" offline, user
# id, username, since (ms), now (ms), node prefix, this node's id, expiry (ms).
# Returns 1 when no other live node holds the user: the change is the cluster's to announce.
_APPLY = """
local user = ARGV[2]
if ARGV[1] == '1' then
  redis.call('ZADD', KEYS[2], ARGV[4], user)
  redis.call('HSET', KEYS[3], user, ARGV[3])
else
  redis.call('ZREM', KEYS[2], user)
  redis.call('HDEL', KEYS[3], user)
end
redis.call('PEXPIRE', KEYS[2], ARGV[8])
redis.call('PEXPIRE', KEYS[3], ARGV[8])
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[5], '+inf')) do
  if node ~= ARGV[7] and redis.call('ZSCORE', ARGV[6] .. node, user) then
    return 0
  end
end
return 1
"""

# KEYS: directory. ARGV: now (ms), node prefix, names prefix. Removes every node whose entry
# lapsed, with its sets; returns [user id, username, ...] for its users no live node holds,
# each once.
_REAP = """
local live = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
local gone, seen = {}, {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])) do
  redis.call('ZREM', KEYS[1], node)
  for _, user in ipairs(redis.call('ZRANGE', ARGV[2] .. node, 0, -1)) do
    local held = seen[user]
    for _, other in ipairs(live) do
      if held then break end
      held = redis.call('ZSCORE', ARGV[2] .. other, user) ~= false
    end
    if not held then
      seen[user] = true
      table.insert(gone, user)
      table.insert(gone, redis.call('HGET', ARGV[3] .. node, user) or '')
    end
  end
  redis.call('DEL', ARGV[2] .. node, ARGV[3] .. node)
end
return gone
"""


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
        self._names_key = names_key(node_id)
        # The node's sets live a timeout longer than its directory entry, for the reaper.
        self._expiry_ms = int(2 * timeout * 1000)
        self._apply_script = redis.register_script(_APPLY)
        self._reap_script = redis.register_script(_REAP)
        self._since: dict[str, float] = {}  # local users -> when they came online here (ms)
        self._last_since = 0.0
        self._names: dict[str, str] = {}  # local users -> username
        self._changes: list[tuple[User, bool]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    # --- the PresenceStore port ---------------------------------------------------------------

    def user_online(self, user: User) -> None:
        if user.id not in self._since:
            self._since[user.id] = self._next_since()
        self._names[user.id] = user.username
        self._changes.append((user, True))
        self._wake.set()

    def user_offline(self, user: User) -> None:
        self._since.pop(user.id, None)
        self._names.pop(user.id, None)
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
            # Leave as a dead node is reaped, but at once: the reap removes this node and
            # announces offline its users that no other node holds, changes still queued
            # here included (their sockets were closed for the shutdown).
            await self.redis.zadd(NODES_KEY, {self.node_id: 0.0})
            await self.reap()

    async def register(self) -> None:
        """Write this node's whole state (at every tick, and after Redis comes back)."""
        now = _now_ms()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key, self._names_key)
            if self._since:
                pipe.zadd(self._key, dict[Any, Any](self._since))
                pipe.hset(self._names_key, mapping=dict[Any, Any](self._names))
            pipe.pexpire(self._key, self._expiry_ms)
            pipe.pexpire(self._names_key, self._expiry_ms)
            pipe.zadd(NODES_KEY, {self.node_id: float(now + int(self.timeout * 1000))})
            await pipe.execute()

    async def reap(self) -> None:
        """Remove the nodes that stopped renewing, announcing offline their users that no
        live node holds (exactly one node gets each dead node's users: the script is atomic)."""
        gone = await self._reap_script(
            keys=[NODES_KEY], args=[_now_ms(), NODE_PREFIX, NAMES_PREFIX]
        )
        for user_id, username in zip(gone[::2], gone[1::2], strict=True):
            self.publish(*presence_frame(_text(user_id), _text(username), online=False))

    # --- internals ----------------------------------------------------------------------------

    def _next_since(self) -> float:
        # Milliseconds to the microsecond, strictly increasing here: users who come online
        # in the same millisecond on this node still list in the order they came.
        self._last_since = max(time.time_ns() / 1e6, self._last_since + 0.001)
        return self._last_since

    async def _other_nodes(self) -> list[str]:
        live = await self.redis.zrangebyscore(NODES_KEY, _now_ms(), "+inf")
        nodes = [_text(raw) for raw in live]
        return [node for node in nodes if node != self.node_id]

    async def _write_forever(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that lands as
            # the event is set, and stop() would then wait for this loop forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_tick - loop.time())):
                    await self._wake.wait()
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
            await self.reap()
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
                announce = bool(
                    await self._apply_script(
                        keys=[NODES_KEY, self._key, self._names_key],
                        args=[
                            "1" if online else "0",
                            user.id,
                            user.username,
                            self._since.get(user.id, self._last_since),
                            _now_ms(),
                            NODE_PREFIX,
                            self.node_id,
                            self._expiry_ms,
                        ],
                    )
                )
                self._failing = False
            except (RedisError, OSError) as exc:
                self._fail(exc)
        if announce:
            self.publish(*presence_frame(user.id, user.username, online=online))

    def _fail(self, exc: BaseException) -> None:
        if not self._failing:
            logger.warning("presence: Redis unavailable (%s); answering for this node only", exc)
        self._failing = True


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
