"""Bot accounts: create, list one's own, update, delete, rotate the key (PROTOCOL.md 4.6).

A bot is a user with role ``bot`` and an owner (``created_by_id``). Members and admins create
bots (``bots:create``); the owner manages them (``bots:update:own``), an admin any of them
(``bots:update:any``). Deleting a bot or rotating its key acts on its open sockets at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Protocol

from token_bowl_chat.protocol.close_codes import CloseCode
from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.models import CreateBotRequest, Role, UpdateBotRequest
from token_bowl_chat_server.domain.bots import Bot
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.errors import InvalidInput, NotFound
from token_bowl_chat_server.domain.permissions import Action, allowed, require
from token_bowl_chat_server.services.accounts import hash_key, new_account, new_key
from token_bowl_chat_server.services.clock import WallClock, now_micros
from token_bowl_chat_server.services.ports import Sessions, UserStore
from token_bowl_chat_server.services.webhook_setup import WebhookSet


class BotStore(Protocol):
    async def create(self, bot: User, api_key_hash: str, owner_id: str) -> None: ...
    async def by_id(self, bot_id: str) -> Bot | None: ...
    async def owned_by(self, owner_id: str) -> list[Bot]: ...
    async def delete(self, bot_id: str) -> bool: ...


class Webhooks(Protocol):
    """services/webhook_setup.py: the one way a webhook URL is set (with a new secret)."""

    def check_url(self, url: str | None, field: str = "webhook_url") -> None: ...
    async def set_webhook(self, user_id: str, url: str | None) -> WebhookSet: ...


class BotService:
    def __init__(
        self,
        users: UserStore,
        bots: BotStore,
        sessions: Sessions,
        webhooks: Webhooks,
        clock: WallClock = now_micros,
        admit_new_account: Callable[[str | None], Awaitable[None]] | None = None,
    ) -> None:
        # Takes one account creation from the caller's address; raises RateLimited.
        self.admit_new_account = admit_new_account
        self.users = users
        self.bots = bots
        self.sessions = sessions
        self.webhooks = webhooks
        self.clock = clock

    async def create(
        self, owner: User, request: CreateBotRequest, client: str | None = None
    ) -> tuple[Bot, str, str | None]:
        """Create a bot owned by ``owner``. Returns it with its plaintext key and, when it
        got a webhook, the webhook's signing secret: both are shown this once.

        Raises Forbidden for a role without ``bots:create``, Conflict for a taken name,
        InvalidField for a webhook URL this server refuses (nothing is created then),
        RateLimited when ``client`` (the caller's address) creates accounts too fast.
        """
        require(owner, Action.CREATE_BOTS)
        if self.admit_new_account is not None:
            await self.admit_new_account(client)
        self.webhooks.check_url(request.webhook_url)
        key = new_key()
        # No logo (bots use emoji); the webhook is set below, with its secret.
        account = new_account(request.username, Role.BOT, key, self.clock(), emoji=request.emoji)
        await self.bots.create(account, hash_key(key), owner.id)
        secret = None
        if request.webhook_url is not None:
            hooked = await self.webhooks.set_webhook(account.id, request.webhook_url)
            account, secret = hooked.user, hooked.secret
        return Bot(account, owner.id, owner.username), key, secret

    async def mine(self, owner: User) -> list[Bot]:
        """The caller's bots, oldest first; admins too see only their own. A role that may
        not manage bots (viewer, bot) has none."""
        if not allowed(owner.role, Action.MANAGE_OWN_BOTS):
            return []
        return await self.bots.owned_by(owner.id)

    async def update(
        self, caller: User, raw_id: str, request: UpdateBotRequest
    ) -> tuple[Bot, str | None]:
        """Set the bot's emoji and/or webhook; ``None`` leaves a field as it is. Returns the
        bot and, when a webhook URL was set, its new signing secret (shown this once)."""
        bot = await self._managed(caller, raw_id, "update bot")
        self.webhooks.check_url(request.webhook_url)
        account, secret = bot.user, None
        if request.emoji is not None:
            updated = await self.users.update(bot.user.id, emoji=request.emoji)
            if updated is None:  # deleted meanwhile
                raise _not_found(raw_id)
            self.sessions.refresh(updated)
            account = updated
        if request.webhook_url is not None:
            try:
                hooked = await self.webhooks.set_webhook(bot.user.id, request.webhook_url)
            except NotFound:  # deleted meanwhile
                raise _not_found(raw_id) from None
            account, secret = hooked.user, hooked.secret
        return replace(bot, user=account), secret

    async def delete(self, caller: User, raw_id: str) -> None:
        """Remove the bot; its open sockets are closed (1008) and its key stops working."""
        bot = await self._managed(caller, raw_id, "delete bot")
        if not await self.bots.delete(bot.user.id):
            raise _not_found(raw_id)
        self.sessions.close_user(bot.user.id, CloseCode.POLICY_VIOLATION, "account deleted")

    async def rotate_key(self, caller: User, raw_id: str) -> str:
        """A new key for the bot. The old one stops at once, for requests and open sockets."""
        bot = await self._managed(caller, raw_id, "regenerate API key for bot")
        key = new_key()
        updated = await self.users.update(
            bot.user.id, api_key_hash=hash_key(key), api_key_hint=key[-4:]
        )
        if updated is None:
            raise _not_found(raw_id)
        self.sessions.close_user(bot.user.id, CloseCode.POLICY_VIOLATION, "API key rotated")
        return key

    async def _managed(self, caller: User, raw_id: str, doing: str) -> Bot:
        """The bot ``raw_id`` if ``caller`` may act on it, checked in upstream's order:
        400 for an id that is not a UUID, 404 for no such bot, then 403."""
        try:
            bot_id = str(uuid.UUID(raw_id))
        except ValueError:
            raise InvalidInput(f"Invalid bot ID format: {raw_id}", ErrorCode.INVALID_ID) from None
        bot = await self.bots.by_id(bot_id)
        if bot is None:
            raise _not_found(raw_id)
        if not (bot.owned_by(caller) and allowed(caller.role, Action.MANAGE_OWN_BOTS)):
            require(
                caller,
                Action.MANAGE_ANY_BOT,
                f"You don't have permission to {doing} {bot.user.username}",
            )
        return bot


def _not_found(raw_id: str) -> NotFound:
    return NotFound(f"Bot {raw_id} not found", ErrorCode.BOT_NOT_FOUND)
