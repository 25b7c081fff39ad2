"""AccountCache: what it remembers, and that nothing older than the last change comes back."""

from __future__ import annotations

import asyncio

from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.services.account_cache import AccountCache, CachedWebhookDirectory
from token_bowl_chat_server.services.accounts import Accounts, hash_key


def _user(user_id: str, role: Role = Role.MEMBER, webhook: str | None = None) -> User:
    return User(user_id, f"name-{user_id}", role, None, None, webhook, None, "abcd", 0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_remembered_until_forgotten_or_expired() -> None:
    clock = Clock()
    cache = AccountCache(ttl=10, monotonic=clock)
    alice = _user("a")
    assert cache.account("hash-a") is None
    cache.remember("hash-a", alice, cache.generation)
    assert cache.account("hash-a") is alice
    cache.forget("a")
    assert cache.account("hash-a") is None

    cache.remember("hash-a", alice, cache.generation)
    clock.now = 10.0
    assert cache.account("hash-a") is None  # expired: changes made elsewhere show by then

    cache.remember("hash-a", alice, cache.generation)
    cache.forget_all()
    assert cache.account("hash-a") is None


def test_a_read_from_before_a_change_is_not_remembered() -> None:
    cache = AccountCache(ttl=10)
    generation = cache.generation  # a lookup starts and reads the old record...
    cache.forget("a")  # ...the account changes meanwhile...
    cache.remember("hash-a", _user("a"), generation)  # ...and the stale read comes back
    assert cache.account("hash-a") is None


def test_a_new_key_replaces_the_old_one_and_the_oldest_entry_goes_first() -> None:
    cache = AccountCache(ttl=10, max_accounts=2)
    cache.remember("old", _user("a"), cache.generation)
    cache.remember("new", _user("a"), cache.generation)
    assert cache.account("old") is None and cache.account("new") is not None
    cache.remember("b", _user("b"), cache.generation)
    cache.remember("c", _user("c"), cache.generation)
    assert cache.account("new") is None
    assert cache.account("b") is not None and cache.account("c") is not None


def test_ttl_zero_remembers_nothing() -> None:
    cache = AccountCache(ttl=0)
    cache.remember("hash-a", _user("a"), cache.generation)
    assert cache.account("hash-a") is None


class Users:
    """A user store that counts its reads and can hold one read until released."""

    def __init__(self, user: User, key: str) -> None:
        self.user, self.key_hash = user, hash_key(key)
        self.reads = 0
        self.hold: asyncio.Event | None = None
        self.webhook_users = [_user("w", webhook="https://example.com/hook")]

    async def by_key_hash(self, key_hash: str) -> tuple[User, str] | None:
        self.reads += 1
        found = (self.user, self.key_hash) if key_hash == self.key_hash else None
        if self.hold is not None:
            await self.hold.wait()
        return found

    async def by_id(self, user_id: str) -> User | None:
        return self.user if user_id == self.user.id else None

    async def with_webhooks(self) -> list[User]:
        self.reads += 1
        return self.webhook_users


async def test_authenticate_reads_the_database_once_and_never_remembers_a_stale_read() -> None:
    key = "k" * 64
    users = Users(_user("a"), key)
    cache = AccountCache(ttl=60)
    accounts = Accounts(users, sessions=None, cache=cache)  # type: ignore[arg-type]
    assert (await accounts.authenticate(key)).id == "a"
    assert (await accounts.authenticate(key)).id == "a"
    assert users.reads == 1

    # A lookup that read before a change and returns after it is answered, not remembered.
    cache.forget("a")
    users.hold = asyncio.Event()
    lookup = asyncio.create_task(accounts.authenticate(key))
    while users.reads < 2:
        await asyncio.sleep(0)
    cache.forget("a")  # the change commits while the read is in flight
    users.hold.set()
    await lookup
    users.hold = None
    await accounts.authenticate(key)
    assert users.reads == 3  # read again: the in-flight result was not kept


async def test_webhook_users_are_read_once_until_an_account_changes() -> None:
    users = Users(_user("a"), "k" * 64)
    cache = AccountCache(ttl=60)
    directory = CachedWebhookDirectory(users, cache)
    assert [u.id for u in await directory.with_webhooks()] == ["w"]
    await directory.with_webhooks()
    assert users.reads == 1
    cache.forget("someone")  # any change may add, remove or rename a webhook user
    await directory.with_webhooks()
    assert users.reads == 2


async def test_nobody_has_a_webhook_only_when_the_cache_knows_the_list_is_empty() -> None:
    users = Users(_user("a"), "k" * 64)
    users.webhook_users = []
    clock = Clock()
    cache = AccountCache(ttl=60, monotonic=clock)
    directory = CachedWebhookDirectory(users, cache)
    assert not directory.nobody_has_a_webhook()  # not read yet: unknown
    assert await directory.with_webhooks() == []
    assert directory.nobody_has_a_webhook()
    cache.forget("a")  # e.g. someone just set a webhook URL
    assert not directory.nobody_has_a_webhook()
    users.webhook_users = [_user("w", webhook="https://example.com/hook")]
    await directory.with_webhooks()
    assert not directory.nobody_has_a_webhook()
    users.webhook_users = []
    cache.forget("w")
    await directory.with_webhooks()
    clock.now = 60.0  # expired: unknown again until read
    assert not directory.nobody_has_a_webhook()
