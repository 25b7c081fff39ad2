"""The WebSocket client's bookkeeping, free of I/O: URLs, backoff, request matching,
duplicate suppression, typing expiry, bulk receipts and error-frame mapping. ``websocket.py``
drives it."""

from __future__ import annotations

import asyncio
import bisect
import random
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from token_bowl_chat.exceptions import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TokenBowlError,
    ValidationError,
)
from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.version import PROTOCOL_VERSION, VERSION_PARAM

_HTTP_TO_WS = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def websocket_url(base_url: str, since_seq: int | None = None) -> str:
    """``ws(s)://host[/prefix]/ws?...``, from an http(s) or ws(s) base URL (``/ws`` optional).

    The query asks for the extended protocol (``protocol_version``): without it our server
    sends none of ``hello``, ``resumed``, pushed counts, ``read_up_to``, because a legacy
    client would misread them; an upstream server ignores it. On a resume it carries
    ``since_seq``. The API key goes in the ``X-API-Key`` header, never in the URL, which the
    websockets library logs at debug level.
    """
    parts = urlsplit(base_url.strip())
    scheme = _HTTP_TO_WS.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(f"base_url must be an http(s):// or ws(s):// URL: {base_url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/ws"):
        path += "/ws"
    params: dict[str, str | int] = {VERSION_PARAM: PROTOCOL_VERSION}
    if since_seq is not None:
        params["since_seq"] = since_seq
    return urlunsplit((scheme, parts.netloc, path, urlencode(params), ""))


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: somewhere in [d/2, d], d = min(maximum, initial·2^n).

    The jitter spreads out clients that all lost the same server at the same moment.
    """
    ceiling = min(maximum, initial * 2.0 ** min(attempt, 30))
    return ceiling / 2 + rng.random() * ceiling / 2


# Every code this protocol version knows (a test checks none is missing). A code from a newer
# server is a plain TokenBowlError: guessing "your input was wrong" could send an app to fix
# input that was fine.
_ERRORS_BY_CODE: dict[str, type[TokenBowlError]] = {
    ErrorCode.AUTHENTICATION_REQUIRED: AuthenticationError,
    ErrorCode.PERMISSION_DENIED: PermissionDeniedError,
    ErrorCode.ADMIN_REQUIRED: PermissionDeniedError,
    ErrorCode.ADMIN_REGISTRATION_FORBIDDEN: PermissionDeniedError,
    ErrorCode.VALIDATION_ERROR: ValidationError,
    ErrorCode.INVALID_JSON: ValidationError,
    ErrorCode.INVALID_FRAME: ValidationError,
    ErrorCode.UNKNOWN_TYPE: ValidationError,
    ErrorCode.MISSING_FIELD: ValidationError,
    ErrorCode.CONTENT_TOO_LONG: ValidationError,
    ErrorCode.FRAME_TOO_LARGE: ValidationError,
    ErrorCode.RECIPIENT_IS_VIEWER: BadRequestError,
    ErrorCode.INVALID_TIMESTAMP: BadRequestError,
    ErrorCode.INVALID_ID: BadRequestError,
    ErrorCode.BOT_REGISTRATION_FORBIDDEN: BadRequestError,
    ErrorCode.NOT_FOUND: NotFoundError,
    ErrorCode.USER_NOT_FOUND: NotFoundError,
    ErrorCode.MESSAGE_NOT_FOUND: NotFoundError,
    ErrorCode.MESSAGE_DELETED: NotFoundError,
    ErrorCode.BOT_NOT_FOUND: NotFoundError,
    ErrorCode.CONVERSATION_NOT_FOUND: NotFoundError,
    ErrorCode.NOT_FOUND_ROUTE: NotFoundError,
    ErrorCode.METHOD_NOT_ALLOWED: TokenBowlError,
    ErrorCode.USERNAME_TAKEN: ConflictError,
    ErrorCode.CLIENT_MESSAGE_ID_CONFLICT: ConflictError,
    ErrorCode.LAST_ADMIN: ConflictError,
    ErrorCode.RATE_LIMITED: RateLimitError,
    ErrorCode.TOO_MANY_CONNECTIONS: RateLimitError,
    ErrorCode.BOT_TURN_LIMIT: RateLimitError,
    ErrorCode.INTERNAL_ERROR: ServerError,
    # The server cannot serve this now; the input was fine, so never a ValidationError.
    ErrorCode.STORAGE_UNAVAILABLE: ServerError,
    ErrorCode.NOT_READY: ServerError,
    ErrorCode.NOT_CONFIGURED: ServerError,
}


def error_from_frame(frame: dict[str, Any]) -> TokenBowlError:
    """The exception an ``error`` frame stands for, by its stable ``code``.

    Input problems (missing field, bad frame, too long) are ``ValidationError``; an upstream
    server's frame has no code, and a newer server's code is unknown here: both become a
    plain ``TokenBowlError``.
    """
    message = str(frame.get("error") or "Unknown error")
    code = frame.get("code") if isinstance(frame.get("code"), str) else None
    if code is None:
        return TokenBowlError(message, detail=message)
    return _ERRORS_BY_CODE.get(code, TokenBowlError)(message, code=code, detail=message)


@dataclass
class Pending:
    request_id: str
    frame: dict[str, Any]
    future: asyncio.Future[dict[str, Any]]
    resend: bool  # safe to send again on a new connection


@dataclass
class PendingRequests:
    """Requests waiting for a reply. A reply that echoes ``request_id`` resolves its request;
    one without (an upstream server) resolves the oldest, because a server answers one
    connection's frames in order."""

    _by_id: OrderedDict[str, Pending] = field(default_factory=OrderedDict)

    def add(self, pending: Pending) -> None:
        self._by_id[pending.request_id] = pending

    def discard(self, request_id: str) -> None:
        self._by_id.pop(request_id, None)

    def resolve(self, frame: dict[str, Any], in_order: bool) -> bool:
        """Hand ``frame`` to the request it answers. False when none is waiting for it.

        ``in_order``: the server does not echo ids (upstream), so a frame without one answers
        the oldest request. Otherwise such a frame is a push, not a reply.
        """
        request_id = frame.get("request_id")
        if request_id is not None:
            pending = self._by_id.pop(str(request_id), None)
        elif in_order and self._by_id:
            _, pending = self._by_id.popitem(last=False)
        else:
            pending = None
        if pending is None or pending.future.done():
            return False
        pending.future.set_result(frame)
        return True

    def __iter__(self) -> Iterator[Pending]:
        return iter(list(self._by_id.values()))

    def fail_all(self, error: Exception) -> None:
        for pending in self:
            if not pending.future.done():
                pending.future.set_exception(error)
        self._by_id.clear()

    def __len__(self) -> int:
        return len(self._by_id)


class RecentIds:
    """The last ``size`` message ids seen, to drop a message delivered twice."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first_time(self, message_id: str) -> bool:
        if message_id in self._ids:
            return False
        self._ids[message_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


TypingKey = tuple[str, str | None]  # (typist, target username or None for the room)


class TypingState:
    """Who is typing, as this client saw it. Entries expire by themselves after ``timeout``
    seconds without a renewal, even if the server's stop never arrives."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._until: dict[TypingKey, float] = {}

    def start(self, key: TypingKey, now: float) -> bool:
        """Returns True when ``key`` was not typing before."""
        new = key not in self._until
        self._until[key] = now + self.timeout
        return new

    def stop(self, key: TypingKey) -> bool:
        return self._until.pop(key, None) is not None

    def stop_typist(self, username: str, target: str | None) -> list[TypingKey]:
        """A message from ``username`` to ``target`` ends that indicator."""
        key = (username, target)
        return [key] if self.stop(key) else []

    def expire(self, now: float) -> list[TypingKey]:
        gone = [key for key, until in self._until.items() if until <= now]
        for key in gone:
            del self._until[key]
        return gone

    def next_deadline(self) -> float | None:
        return min(self._until.values(), default=None)

    def users(self) -> frozenset[str]:
        return frozenset(typist for typist, _ in self._until)

    def clear(self) -> list[TypingKey]:
        gone = list(self._until)
        self._until.clear()
        return gone


@dataclass(frozen=True, slots=True)
class SentMessage:
    id: str
    seq: int
    to_username: str | None  # None: a room message


class OwnMessages:
    """The newest ``size`` messages this client sent, to turn a bulk receipt into the
    per-message ``on_read_receipt(message_id, read_by)`` calls of the documented API.

    A bulk mark (mark all / room / a user's DMs) reaches the author as one ``read_up_to``
    frame ("``read_by`` has read your messages in ``scope`` up to ``up_to_seq``"), not one
    receipt per message, so that no reader can flood an author. :meth:`read_up_to` lists the
    messages of ours that frame covers. A (message, reader) pair is reported once: a message
    read singly and then again by a bulk mark is not reported twice.
    """

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._seqs: list[int] = []  # sorted; _sent[i] has seq _seqs[i]
        self._sent: list[SentMessage] = []
        self._reported: OrderedDict[tuple[str, str], None] = OrderedDict()
        # (reader, "room" | "direct") -> every such message up to this seq is reported.
        self._through: dict[tuple[str, str], int] = {}

    def add(self, message_id: str, seq: int, to_username: str | None) -> None:
        at = bisect.bisect_right(self._seqs, seq)  # replies may arrive slightly out of order
        if at > 0 and self._seqs[at - 1] == seq:
            return  # the same message again (a resent send)
        self._seqs.insert(at, seq)
        self._sent.insert(at, SentMessage(message_id, seq, to_username))
        if len(self._sent) > 2 * self.size:  # trim in batches: O(1) amortised
            del self._seqs[: self.size], self._sent[: self.size]

    def first_report(self, message_id: str, reader: str) -> bool:
        """True the first time a receipt for ``message_id`` by ``reader`` is seen."""
        key = (message_id, reader)
        if key in self._reported:
            return False
        self._reported[key] = None
        if len(self._reported) > self.size:
            self._reported.popitem(last=False)
        return True

    def read_up_to(
        self, reader: str, scope: str, up_to_seq: int, last_message_id: str
    ) -> list[str]:
        """Ids of our messages newly reported read by a ``read_up_to`` frame, in seq order.
        ``last_message_id`` (the newest one covered) is included even if we did not send it
        from this client."""
        kinds = {"room": ("room",), "direct": ("direct",)}.get(scope, ("room", "direct"))
        start = min(self._through.get((reader, kind), -1) for kind in kinds)
        ids: list[str] = []
        for sent in self._sent[bisect.bisect_right(self._seqs, start) :]:
            if sent.seq > up_to_seq:
                break
            kind = "room" if sent.to_username is None else "direct"
            if kind not in kinds or (kind == "direct" and sent.to_username != reader):
                continue
            if sent.seq <= self._through.get((reader, kind), -1):
                continue
            if self.first_report(sent.id, reader):
                ids.append(sent.id)
        for kind in kinds:
            key = (reader, kind)
            self._through[key] = max(self._through.get(key, -1), up_to_seq)
        if last_message_id not in ids and self.first_report(last_message_id, reader):
            ids.append(last_message_id)
        return ids
