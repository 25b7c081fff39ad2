"""Setting a webhook: its URL, its signing secret, and the owner's view of its deliveries.

Every path that gives a user a webhook URL goes through :meth:`WebhookSetup.set_webhook`
(``PATCH /users/me/webhook``, registration, ``POST /bots`` and bot updates), so a URL is
always checked the same way and stored together with a fresh secret. The secret is returned
to that caller once and never again: only :meth:`WebhookSetup.rotate_secret` shows a new one.

A new URL gets a new secret, so a receiver that was told the old secret cannot sign for the
new URL's owner, and an old URL that was leaked with its secret stops being trusted.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.errors import InvalidField, InvalidInput, NotFound
from token_bowl_chat_server.domain.webhook_policy import DeliveryRecord, url_refusal
from token_bowl_chat_server.services.ports import Sessions

SECRET_PREFIX = "whsec_"  # noqa: S105 (a label, not a secret)


def new_secret() -> str:
    """256 random bits, prefixed so secret scanners and people can tell what it is."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class WebhookStore(Protocol):
    async def set_webhook(self, user_id: str, url: str | None, secret: str | None) -> bool: ...
    async def set_secret(self, user_id: str, secret: str) -> bool: ...
    async def recent(self, user_id: str, limit: int) -> list[DeliveryRecord]: ...


class UserLookup(Protocol):
    async def by_id(self, user_id: str) -> User | None: ...


@dataclass(frozen=True, slots=True)
class WebhookSet:
    user: User  # as stored now, with the new ``webhook_url``
    secret: str | None  # None when the webhook was cleared


class WebhookSetup:
    def __init__(
        self,
        store: WebhookStore,
        users: UserLookup,
        sessions: Sessions,
        *,
        allow_private: bool,
    ) -> None:
        self.store = store
        self.users = users
        self.sessions = sessions
        self.allow_private = allow_private

    def check_url(self, url: str | None, field: str = "webhook_url") -> None:
        """Raise :class:`InvalidField` (422) for a URL that can never be delivered to under
        this server's settings: see :func:`url_refusal`. ``url`` is already a valid http(s)
        URL (the request schema checks that)."""
        if url is None:
            return
        reason = url_refusal(url, self.allow_private)
        if reason is not None:
            raise InvalidField(reason, field, url, "webhook_url_refused")

    async def set_webhook(self, user_id: str, url: str | None) -> WebhookSet:
        """Give ``user_id`` the webhook ``url`` with a new secret, or clear both (``None``).

        The one way to set a webhook URL: callers (profile, registration, bots) show the
        returned secret to the owner once. Permissions are the caller's business. Raises
        :class:`InvalidField` for a refused URL (nothing changes) and :class:`NotFound` when
        the user does not exist.
        """
        self.check_url(url)
        secret = new_secret() if url is not None else None
        if not await self.store.set_webhook(user_id, url, secret):
            raise NotFound(f"User {user_id} not found")
        user = await self.users.by_id(user_id)
        if user is None:
            raise NotFound(f"User {user_id} not found")
        self.sessions.refresh(user)
        return WebhookSet(user, secret)

    async def rotate_secret(self, user_id: str) -> str:
        """A new secret for the user's current webhook; the old one stops signing at once.
        Raises :class:`InvalidInput` when the user has no webhook."""
        secret = new_secret()
        if not await self.store.set_secret(user_id, secret):
            raise InvalidInput("No webhook URL is set; set one with PATCH /users/me/webhook")
        return secret

    async def deliveries(self, user_id: str, limit: int) -> list[DeliveryRecord]:
        """The user's newest webhook deliveries (at most ``limit``), newest first."""
        return await self.store.recent(user_id, limit)
