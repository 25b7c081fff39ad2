"""Registration, authentication, profiles and API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable

from token_bowl_chat.protocol.close_codes import CloseCode
from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.models import Role, UserRegistration
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    RateLimited,
)
from token_bowl_chat_server.domain.permissions import (
    Action,
    allowed,
    check_can_update_own_profile,
)
from token_bowl_chat_server.services.account_cache import AccountCache
from token_bowl_chat_server.services.clock import WallClock, now_micros
from token_bowl_chat_server.services.ports import RateLimit, Sessions, UserStore

MIN_KEY_LENGTH = 32
MAX_KEY_LENGTH = 128


def hash_key(api_key: str) -> str:
    """Keys are 256 random bits, so one SHA-256 is as strong as a slow KDF here."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_key() -> str:
    return secrets.token_hex(32)


def new_account(
    username: str,
    role: Role,
    api_key: str,
    created_at: int,
    *,
    logo: str | None = None,
    emoji: str | None = None,
    webhook_url: str | None = None,
) -> User:
    """The record of an account about to be created with ``api_key`` (stored hashed)."""
    return User(
        id=str(uuid.uuid4()),
        username=username,
        role=role,
        logo=logo,
        emoji=emoji,
        webhook_url=webhook_url,
        email=None,
        api_key_hint=api_key[-4:],
        created_at=created_at,
    )


def _unauthenticated() -> NotAuthenticated:
    return NotAuthenticated("Invalid or missing authentication credentials")


class Accounts:
    def __init__(
        self,
        users: UserStore,
        sessions: Sessions,
        clock: WallClock = now_micros,
        registrations: RateLimit | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        profile_changed: Callable[[User, User], None] | None = None,
        cache: AccountCache | None = None,
    ) -> None:
        """``sessions`` must forget changed accounts in ``cache`` (:class:`ForgettingSessions`)."""
        self.users = users
        self.cache = cache
        self.sessions = sessions
        self.clock = clock
        self.registrations = registrations
        self.monotonic = monotonic
        # Called with the record before and after a change of one's own profile, to tell
        # open clients (realtime/profile_frames.py); must not block.
        self.profile_changed = profile_changed

    async def admit_new_account(self, client: str | None) -> None:
        """Take one account creation from ``client``'s bucket (registrations and bots share
        it, so creating bots is no way around the registration limit). Raises RateLimited."""
        if self.registrations is not None and client is not None:
            retry_after = await self.registrations.take(client, self.monotonic())
            if retry_after:
                raise RateLimited(retry_after)

    async def register(
        self, request: UserRegistration, client: str | None = None
    ) -> tuple[User, str]:
        """Create an account. Returns it with its plaintext key, which is never shown again.

        ``client`` (the caller's address) is rate limited: raises ``RateLimited`` when one
        address registers faster than the configured rate.
        """
        await self.admit_new_account(client)
        role = request.resolved_role()
        if role is Role.BOT:
            raise InvalidInput(
                "Bots cannot be created via /register. Please use POST /bots to create bots.",
                ErrorCode.BOT_REGISTRATION_FORBIDDEN,
            )
        if role is Role.ADMIN:
            # Upstream lets anyone self-register as admin (PROTOCOL.md section 8, gap 1).
            raise Forbidden(
                "The admin role cannot be granted by registration",
                ErrorCode.ADMIN_REGISTRATION_FORBIDDEN,
            )
        key = new_key()
        user = new_account(
            request.username,
            role,
            key,
            self.clock(),
            logo=request.logo,
            emoji=request.emoji,
            webhook_url=request.webhook_url,
        )
        return await self.users.create(user, hash_key(key)), key

    async def bootstrap_admin(self, username: str, api_key: str) -> User | None:
        """Create ``username`` as an admin holding ``api_key``, once: when that username
        exists already, nothing changes (so a later key rotation or role change survives
        restarts) and ``None`` is returned."""
        if not MIN_KEY_LENGTH <= len(api_key) <= MAX_KEY_LENGTH:
            raise InvalidInput(
                f"The bootstrap admin key must be {MIN_KEY_LENGTH} to {MAX_KEY_LENGTH} characters"
            )
        if await self.users.by_username(username) is not None:
            return None
        user = new_account(username, Role.ADMIN, api_key, self.clock())
        try:
            return await self.users.create(user, hash_key(api_key))
        except Conflict:
            return None  # another process of the same deployment created it first

    async def authenticate(self, api_key: str | None) -> User:
        """The user owning ``api_key``. Raises NotAuthenticated for a missing or unknown key."""
        if not api_key or not MIN_KEY_LENGTH <= len(api_key) <= MAX_KEY_LENGTH:
            raise _unauthenticated()
        digest = hash_key(api_key)
        cache = self.cache
        if cache is not None and (remembered := cache.account(digest)) is not None:
            return remembered
        generation = cache.generation if cache is not None else 0
        found = await self.users.by_key_hash(digest)
        if found is None or not hmac.compare_digest(found[1], digest):
            raise _unauthenticated()
        if cache is not None:
            cache.remember(digest, found[0], generation)
        return found[0]

    async def get(self, user_id: str) -> User:
        """The current record of an authenticated user (it may have been deleted since)."""
        user = await self.users.by_id(user_id)
        if user is None:
            raise _unauthenticated()
        return user

    async def by_username(self, username: str) -> User:
        user = await self.users.by_username(username)
        if user is None:
            raise NotFound(f"User {username} not found", ErrorCode.USER_NOT_FOUND)
        return user

    async def by_id(self, raw_id: str) -> User:
        try:
            user_id = str(uuid.UUID(raw_id))
        except ValueError:
            raise InvalidInput(f"Invalid user ID format: {raw_id}", ErrorCode.INVALID_ID) from None
        user = await self.users.by_id(user_id)
        if user is None:
            raise NotFound(f"User {raw_id} not found", ErrorCode.USER_NOT_FOUND)
        return user

    async def chat_users(self) -> list[User]:
        return await self.users.list_chat_users()

    async def online_users(self) -> list[User]:
        """Users with a live connection, in the order they came online."""
        ids = await self.sessions.online_user_ids()
        found = await self.users.by_ids(ids)
        return [found[user_id] for user_id in ids if user_id in found]

    async def set_logo(self, user: User, logo: str | None) -> User:
        check_can_update_own_profile(user)
        if logo is not None and not allowed(user.role, Action.USE_LOGO):
            # Upstream lets bots bypass "bots use emoji only" here (gap 24).
            raise InvalidInput("Bots can only use emoji for avatars, not logos")
        updated = await self._update(user, logo=logo)
        self.sessions.refresh(updated)
        self._announce(user, updated)
        return updated

    # Webhook URLs are set only through services/webhook_setup.py (checked, with a secret).

    async def rename(self, user: User, username: str) -> User:
        check_can_update_own_profile(user)
        if username == user.username:
            raise Conflict(f"Username {username} already exists")
        updated = await self._update(user, username=username)
        # Live sockets act under the new name at once (upstream kept the old one, gap 22).
        self.sessions.refresh(updated)
        self._announce(user, updated)
        return updated

    async def rotate_key(self, user: User) -> str:
        """Replace the key. The old one stops working now, for new requests and open sockets."""
        key = new_key()
        await self._update(user, api_key_hash=hash_key(key), api_key_hint=key[-4:])
        self.sessions.close_user(user.id, CloseCode.POLICY_VIOLATION, "API key rotated")
        return key

    def _announce(self, before: User, after: User) -> None:
        if self.profile_changed is not None:
            self.profile_changed(before, after)

    async def _update(self, user: User, **values: object) -> User:
        updated = await self.users.update(user.id, **values)
        if updated is None:
            raise _unauthenticated()
        return updated
