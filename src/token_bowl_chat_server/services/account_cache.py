"""Accounts remembered between requests: the account of each API key hash, and the users
with a webhook, so that a request or a stored message does not cost a database read.

Exact within this process. Every change of an account already tells the live sessions
(``refresh`` for a new record, ``close_user`` for a dead key or a deleted account), because
open sockets must act under the new record at once; the sessions
(``realtime/sessions.py``) call :meth:`AccountCache.forget` first, synchronously, before the
change is answered, for changes made here and for those another node relays. A lookup that
read the database before such a forget and finishes after it is not remembered (the
generation moved on), so a record older than the last change can never be put back.

Changes that reach no process's sessions (``token-bowl admin create`` writes the database
from a process of its own) take effect when the entry expires, after ``ttl`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from token_bowl_chat_server.domain.entities import User

# Keys remembered at most; beyond that the oldest entry goes (a dict keeps insertion order).
MAX_ACCOUNTS = 10_000


class AccountCache:
    """``ttl`` 0 turns the cache off (every lookup reads the database)."""

    def __init__(
        self,
        ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
        max_accounts: int = MAX_ACCOUNTS,
    ) -> None:
        self.ttl = ttl
        self.monotonic = monotonic
        self.max_accounts = max_accounts
        self._by_key_hash: dict[str, tuple[User, float]] = {}
        self._key_hash_of: dict[str, str] = {}  # user id -> key hash, to forget by user
        self._webhook_users: tuple[list[User], float] | None = None
        # Moves on at every forget: a read that began under an older generation may have
        # seen a record from before that change, so it is not remembered.
        self.generation = 0
        self.hits = 0
        self.misses = 0

    # ------------------------------------------------------------------ accounts by key

    def account(self, key_hash: str) -> User | None:
        """The remembered account holding this key hash, or ``None``: read it, then
        :meth:`remember` it with the generation taken before the read."""
        entry = self._by_key_hash.get(key_hash)
        if entry is not None and entry[1] > self.monotonic():
            self.hits += 1
            return entry[0]
        self.misses += 1
        return None

    def remember(self, key_hash: str, user: User, generation: int) -> None:
        if self.ttl <= 0 or generation != self.generation:
            return
        old = self._key_hash_of.get(user.id)
        if old is not None and old != key_hash:
            self._by_key_hash.pop(old, None)
        self._by_key_hash.pop(key_hash, None)  # re-inserted last: the newest entry
        while len(self._by_key_hash) >= self.max_accounts:
            oldest = next(iter(self._by_key_hash))
            gone = self._by_key_hash.pop(oldest)[0]
            self._key_hash_of.pop(gone.id, None)
        self._by_key_hash[key_hash] = (user, self.monotonic() + self.ttl)
        self._key_hash_of[user.id] = key_hash

    # ------------------------------------------------------------------ webhook users

    def webhook_users(self) -> list[User] | None:
        """The remembered users with a webhook URL, or ``None``: read them, then
        :meth:`remember_webhook_users` with the generation taken before the read."""
        entry = self._webhook_users
        if entry is not None and entry[1] > self.monotonic():
            return entry[0]
        return None

    def remember_webhook_users(self, found: list[User], generation: int) -> None:
        if self.ttl > 0 and generation == self.generation:
            self._webhook_users = (found, self.monotonic() + self.ttl)

    # ------------------------------------------------------------------ invalidation

    def forget(self, user_id: str) -> None:
        """The account changed (key, role, name, profile, webhook) or is gone."""
        self.generation += 1
        key_hash = self._key_hash_of.pop(user_id, None)
        if key_hash is not None:
            self._by_key_hash.pop(key_hash, None)
        # Any change may add or remove a webhook user, or rename one: read the list again.
        self._webhook_users = None

    def forget_all(self) -> None:
        self.generation += 1
        self._by_key_hash.clear()
        self._key_hash_of.clear()
        self._webhook_users = None


class WebhookUserSource(Protocol):
    async def by_id(self, user_id: str) -> User | None: ...
    async def with_webhooks(self) -> list[User]: ...


class CachedWebhookDirectory:
    """Who has a webhook (services/webhooks.py asks for every room message), from the cache."""

    def __init__(self, users: WebhookUserSource, cache: AccountCache) -> None:
        self.users = users
        self.cache = cache

    async def by_id(self, user_id: str) -> User | None:
        return await self.users.by_id(user_id)

    def nobody_has_a_webhook(self) -> bool:
        """True when the cache knows that no user has a webhook (False: unknown, or some)."""
        return self.cache.webhook_users() == []

    async def with_webhooks(self) -> list[User]:
        found = self.cache.webhook_users()
        if found is None:
            generation = self.cache.generation
            found = await self.users.with_webhooks()
            self.cache.remember_webhook_users(found, generation)
        return found
