"""Sending messages and reading history."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.events import encode_event
from token_bowl_chat.protocol.models import MAX_CONTENT_LENGTH, MessageResponse
from token_bowl_chat_server import render
from token_bowl_chat_server.domain.entities import Message, User, to_micros
from token_bowl_chat_server.domain.errors import (
    InvalidInput,
    NotFound,
    RateLimited,
    StorageUnavailable,
)
from token_bowl_chat_server.domain.ids import is_message_id
from token_bowl_chat_server.domain.permissions import Action, allowed, can_see, check_can_send
from token_bowl_chat_server.realtime.audience import Audience, Room, Users
from token_bowl_chat_server.services.batching import Batcher
from token_bowl_chat_server.services.clock import WallClock, now_micros
from token_bowl_chat_server.services.own_copies import publish_own_copy
from token_bowl_chat_server.services.ports import MessageStore, Publisher, RateLimit, UserStore
from token_bowl_chat_server.services.recipients import direct_recipient
from token_bowl_chat_server.services.typing import TypingService
from token_bowl_chat_server.storage.messages import Appended, NewMessage, Refused

logger = logging.getLogger(__name__)

# How many messages of failed commits are remembered as possibly stored (see _unconfirmed).
_UNCONFIRMED_LIMIT = 10_000


def parse_since(since: str | None) -> int | None:
    """An ISO-8601 instant as epoch microseconds. ``Z`` is accepted; a naive value is UTC."""
    if since is None:
        return None
    try:
        moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            "Invalid timestamp format. Use ISO 8601 format.", ErrorCode.INVALID_TIMESTAMP
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return to_micros(moment)


@dataclass(frozen=True, slots=True)
class Published:
    """A message the send stored and delivered, with the wire form it was delivered in: the
    sender's reply carries the same message, and rendering and encoding it again cost a
    send over REST a tenth of its CPU time."""

    message: Message
    wire: MessageResponse
    text: str  # ``wire`` as JSON (``encode_event``: a lone surrogate is sent as U+FFFD)


# What the group commit made of one send: stored and delivered, found stored by an earlier
# send (a retry), or refused by a rule.
SendOutcome = Published | Appended | Refused


def stored_message(outcome: SendOutcome) -> Message:
    """The message a send stored, or the error of the rule that refused it."""
    if isinstance(outcome, Refused):
        raise outcome.error
    return outcome.message


def reply_wire(outcome: SendOutcome) -> MessageResponse:
    """The stored message as the sender's reply carries it (raises as ``stored_message``)."""
    if isinstance(outcome, Published):
        return outcome.wire
    return render.message(stored_message(outcome))


def _ignore(_: Message) -> None:
    return None


def audience_of(message: Message) -> Audience:
    """Room: everyone but the sender's connections. DM: the recipient's connections only."""
    if message.to_user_id is None:
        return Room(exclude_user_id=message.from_user_id)
    return Users(frozenset({message.to_user_id}))


class MessageService:
    def __init__(
        self,
        users: UserStore,
        messages: MessageStore,
        publisher: Publisher,
        typing: TypingService,
        max_batch: int,
        clock: WallClock = now_micros,
        webhooks: Callable[[Message, str], None] | None = None,
        limiter: RateLimit | None = None,
        bot_limiter: RateLimit | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.users = users
        self.messages = messages
        self.publisher = publisher
        self.typing = typing
        self.clock = clock
        # Called with each newly stored message and its encoded text; must not block.
        self.webhooks = webhooks
        self.limiter = limiter
        # Bots' own, stricter bucket, taken on top of the per-user one.
        self.bot_limiter = bot_limiter
        self.monotonic = monotonic
        self.on_queued: Callable[[Message], None] = _ignore  # metrics (observability.py)
        self.stored = 0  # messages stored since start (retries of a stored one not counted)
        self.commits = 0  # transactions those took: stored / commits is the group-commit size
        # Messages (by id) of flushes that failed with the database unavailable. The commit
        # may have happened all the same (the connection died after COMMIT reached the
        # database); if so, nobody delivered them, and the sender's retry with the same
        # client id, which finds one stored, must. Only the newest are kept.
        self._unconfirmed: OrderedDict[str, bool] = OrderedDict()
        # Held from a commit that takes seqs to the publishing of what it stored; edits and
        # deletes (services/edits.py), which take seqs too, hold it as well, so every
        # connection gets messages and edit events in seq order.
        self.publish_order = asyncio.Lock()
        self._writer: Batcher[NewMessage, SendOutcome] = Batcher(
            self._flush_in_order,
            max_batch,
            # An unavailable database fails every message alike: no use retrying them apart.
            isolate=lambda exc: not isinstance(exc, StorageUnavailable),
        )

    @property
    def commit_splits(self) -> int:
        """Failed group commits split in two to isolate the failing message (metrics)."""
        return self._writer.splits

    async def send(
        self,
        sender: User,
        content: str | None,
        to_username: str | None = None,
        client_message_id: str | None = None,
    ) -> Message:
        """Store a message and deliver it. Returns once it is durable.

        A retry with the same ``client_message_id`` from the same sender returns the message
        stored the first time and delivers nothing again (unless the first attempt was
        refused as ``StorageUnavailable`` after its commit: then the retry delivers it).
        """
        return stored_message(
            await self.send_for_reply(sender, content, to_username, client_message_id)
        )

    async def send_for_reply(
        self,
        sender: User,
        content: str | None,
        to_username: str | None = None,
        client_message_id: str | None = None,
    ) -> SendOutcome:
        """:meth:`send`, returning the outcome, for a caller that replies with the message
        (``reply_wire``); a refused send is an outcome here, not an exception."""
        return await (await self.queue(sender, content, to_username, client_message_id))

    async def queue(
        self,
        sender: User,
        content: str | None,
        to_username: str | None = None,
        client_message_id: str | None = None,
    ) -> asyncio.Future[SendOutcome]:
        """:meth:`send` for a pipelining caller: returns once the message is admitted and
        queued for the next group commit, with a future of its outcome (``stored_message``
        turns it into the message or the error).

        A caller that queues several without waiting has them admitted, stored and given
        their seqs in the order it queued them, in as few commits as they fit in. The message
        is stored (and delivered) whether or not anyone awaits the future.
        """
        new = await self._admit(sender, content, to_username, client_message_id)
        return self._writer.enqueue(new)

    async def _admit(
        self,
        sender: User,
        content: str | None,
        to_username: str | None,
        client_message_id: str | None,
    ) -> NewMessage:
        """The checks of a send (content, permission, rate limits, recipient), which must
        run in the order the sends arrive; raises the first that fails."""
        if not content:
            raise InvalidInput("Missing content field", ErrorCode.MISSING_FIELD)
        if len(content) > MAX_CONTENT_LENGTH:
            raise InvalidInput(
                f"Content must be at most {MAX_CONTENT_LENGTH} characters",
                ErrorCode.CONTENT_TOO_LONG,
            )
        check_can_send(sender, direct=to_username is not None)
        if self.limiter is not None:
            retry_after = await self.limiter.take(sender.id, self.monotonic())
            if retry_after:
                raise RateLimited(retry_after)
        if self.bot_limiter is not None and sender.is_bot:
            retry_after = await self.bot_limiter.take(sender.id, self.monotonic())
            if retry_after:
                raise RateLimited(retry_after)
        recipient = await direct_recipient(self.users, to_username)
        return NewMessage(
            id=str(uuid.uuid4()),
            sender=sender,
            recipient=recipient,
            content=content,
            created_at=self.clock(),
            client_message_id=client_message_id,
        )

    async def _commit_and_publish(self, batch: Sequence[NewMessage]) -> list[SendOutcome]:
        """The batcher's flush: one transaction, then delivery of what it stored.

        Only the transaction may raise (the batcher then retries the batch in halves to
        isolate the item at fault); once it has committed, nothing may, or a stored message
        would be stored again.
        """
        try:
            results = await self.messages.append_batch(batch)
        except StorageUnavailable:
            self._remember_unconfirmed(batch)
            raise
        self.commits += 1
        # Published here, in seq order, before any caller resumes: every connection receives
        # messages in the order they were stored.
        outcomes: list[SendOutcome] = []
        for result in results:
            outcome: SendOutcome = result
            if isinstance(result, Appended) and (
                result.created or self._unconfirmed.pop(result.message.id, False)
            ):
                self.stored += 1
                try:
                    outcome = self._publish(result.message)
                except Exception:
                    logger.exception("publishing stored message %s failed", result.message.id)
            outcomes.append(outcome)
        return outcomes

    async def _flush_in_order(self, batch: Sequence[NewMessage]) -> list[SendOutcome]:
        async with self.publish_order:
            return await self._commit_and_publish(batch)

    def _remember_unconfirmed(self, batch: Sequence[NewMessage]) -> None:
        # Without a client id a retry is a new message, so only these can be found again.
        for new in batch:
            if new.client_message_id is not None:
                self._unconfirmed[new.id] = True
        while len(self._unconfirmed) > _UNCONFIRMED_LIMIT:
            self._unconfirmed.popitem(last=False)

    def _publish(self, msg: Message) -> Published:
        wire = render.message(msg)
        text = encode_event(wire)
        self.publisher.publish(audience_of(msg), text, msg.seq)
        publish_own_copy(self.publisher, msg, text)
        self.on_queued(msg)
        if self.webhooks is not None:
            self.webhooks(msg, text)
        if msg.from_user_id is not None:
            self.typing.message_sent(msg.from_user_id, msg.from_username, msg.to_user_id)
        return Published(msg, wire, text)

    async def get(self, viewer: User, message_id: str) -> Message:
        """One message the caller may see; someone else's DM is reported as not found."""
        message = await self.messages.by_id(message_id) if is_message_id(message_id) else None
        if message is None or not can_see(viewer, message):
            raise NotFound(f"Message {message_id} not found", ErrorCode.MESSAGE_NOT_FOUND)
        return message

    async def room_history(
        self, limit: int, offset: int, since: str | None
    ) -> tuple[list[Message], int]:
        return await self.messages.room_history(limit, offset, parse_since(since))

    async def direct_history(
        self,
        user: User,
        limit: int,
        offset: int,
        since: str | None,
        *,
        all_if_allowed: bool = False,
    ) -> tuple[list[Message], int]:
        """The caller's DMs; with ``all_if_allowed`` (REST history: upstream's viewer rule)
        every user's DMs when the caller's role may read them all (Action.READ_ALL_DIRECT)."""
        everyone = all_if_allowed and allowed(user.role, Action.READ_ALL_DIRECT)
        of_user = None if everyone else user.id
        return await self.messages.direct_history(of_user, limit, offset, parse_since(since))

    async def drain(self) -> None:
        await self._writer.drain()
