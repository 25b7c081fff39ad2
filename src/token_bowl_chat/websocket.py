"""``TokenBowlWebSocket``: the real-time connection, with callbacks or ``async for`` events.

What it adds to the upstream client, keeping that client's documented API:

* callbacks may be plain functions or coroutine functions (coroutines are awaited); they run
  in order on one dispatcher task, so a callback may itself ``await`` the client (``on_connect``
  included: the connection is already receiving when it runs), and one that raises goes to
  ``on_error`` without stopping anything;
* ``send_message`` returns the stored :class:`MessageResponse`, matched to the server's reply;
  every send carries a client message id, so a send retried after a reconnect is stored once;
* automatic reconnect with jittered exponential backoff, and a gap-free resume: the client
  remembers the last message ``seq`` it saw and the server replays what it missed, so
  ``on_message`` sees every message exactly once, in order; when it gives up (attempts used
  up, key refused) ``on_error`` hears why;
* typing indicators that expire by themselves (``typing_users``, ``on_typing_stopped``);
* backpressure instead of loss: callbacks and ``events()`` streams share a bounded buffer, and
  a full buffer stops reading from the socket (see :meth:`TokenBowlWebSocket.events`).

It asks for the extended protocol (``?protocol_version=1.1``). Against an upstream server (no
``hello`` frame, no ``seq``, no ``request_id``) it falls back to the upstream behaviour:
replies are matched in order, typing is not sent (that server rejects it), and a reconnect
cannot replay what was missed. A ``hello`` that comes late still switches the extensions on.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import inspect
import itertools
import json
import logging
import os
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from token_bowl_chat._base import API_KEY_ENV, API_KEY_HEADER, BASE_URL_ENV, DEFAULT_BASE_URL
from token_bowl_chat._ws_state import (
    OwnMessages,
    Pending,
    PendingRequests,
    RecentIds,
    TypingState,
    backoff_delay,
    error_from_frame,
    websocket_url,
)
from token_bowl_chat.events import (
    ConnectedEvent,
    DisconnectedEvent,
    ErrorEvent,
    Event,
    MessageDeletedEvent,
    MessageEditedEvent,
    MessageEvent,
    ReadReceiptEvent,
    TypingEvent,
    TypingStoppedEvent,
    UnreadCountEvent,
)
from token_bowl_chat.exceptions import (
    AuthenticationError,
    NetworkError,
    TimeoutError,
    TokenBowlError,
)
from token_bowl_chat.protocol.close_codes import CloseCode, should_reconnect
from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.models import (
    MAX_CONTENT_LENGTH,
    MessageResponse,
    MessageType,
    UnreadCountResponse,
)

__all__ = ["TokenBowlWebSocket"]

logger = logging.getLogger(__name__)

Callback = Callable[..., Any]

# Against a server that sends no hello, connect() waits this long before assuming upstream.
# Only the wait is bounded: a hello that arrives later is still honoured.
HELLO_TIMEOUT = 1.0
# With no frame at all for this long (the server pings every 30 s), the link is dead.
SILENCE_TIMEOUT = 75.0
# While frames are being set aside (see _make_room), how often the receiver looks whether
# every awaited reply is in, so that it can fetch the set-aside messages again.
_BEHIND_POLL = 0.05
_RECANCEL_AFTER = 0.2  # seconds a cancelled task may take to end before it is cancelled again
# How long closing a connection we are leaving may take before the socket is aborted.
_CLOSE_TIMEOUT = 2.0

_REPLY_TYPES = frozenset(
    {
        "message_sent",
        "marked_read",
        "marked_all_read",
        "unread_count",
        "messages",
        "direct_messages",
        "unread_messages",
        "unread_direct_messages",
        "users",
        "online_users",
        "user_profile",
        "pong",
        "error",
    }
)
# Frames the server pushes by itself, each becoming an event: these need buffer room.
_PUSH_TYPES = frozenset({"read_receipt", "read_up_to", "typing", "typing_stopped"})
# Both a reply (to edit_message / delete_message: it echoes the request_id) and, from our
# server, a push with its own seq (replayed on resume like a message).
_EDIT_TYPES = frozenset({"message_edited", "message_deleted"})


class _Dropped(Exception):
    """The connection ended; ``code`` is its close code (``None``: no close frame).
    ``resync``: we left it ourselves to fetch again the messages we had set aside."""

    def __init__(
        self, code: int | None, reason: str = "", *, resync: bool = False, dead: bool = False
    ) -> None:
        super().__init__(f"connection closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason
        self.resync = resync
        self.dead = dead  # the link answers nothing: abort it, a close handshake would hang


@dataclass(frozen=True, slots=True)
class _Barrier:
    """Put in the event queue; resolved once the dispatcher has handled everything before it."""

    reached: asyncio.Future[None]


_Item = Event | _Barrier | None  # None: the end of the events


class _Stream:
    """One ``events()`` consumer's queue. The dispatcher waits while it holds ``limit`` events
    (:meth:`TokenBowlWebSocket._publish`), so a slow consumer slows the client down instead of
    losing events."""

    def __init__(self, limit: int) -> None:
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.limit = limit
        self.room = asyncio.Event()  # set whenever the consumer takes an event or leaves
        self.left = False

    def full(self) -> bool:
        return self.queue.qsize() >= self.limit

    def leave(self) -> None:
        self.left = True
        self.room.set()


class TokenBowlWebSocket:
    """A WebSocket connection to a Token Bowl Chat server.

    ``api_key`` falls back to ``$TOKEN_BOWL_CHAT_API_KEY``; ``base_url`` (http(s):// or
    ws(s)://, with or without ``/ws``) to ``$TOKEN_BOWL_CHAT_BASE_URL``, then
    ``http://localhost:8000``. Callbacks receive the documented arguments:
    ``on_message(msg)``, ``on_read_receipt(message_id, read_by)``, ``on_unread_count(count)``,
    ``on_typing(username, to_username)``, ``on_typing_stopped(username, to_username)``,
    ``on_message_edited(msg)`` (the message as it now reads), ``on_message_deleted(message_id)``,
    ``on_connect()``, ``on_disconnect()``, ``on_error(error)``. ``on_connect`` and
    ``on_disconnect`` fire for every connection and every drop.

    ``reconnect``: reconnect after a drop (not after :meth:`disconnect`, a rotated key or a
    normal close), waiting ``reconnect_initial_delay`` doubling up to ``reconnect_max_delay``
    seconds, with jitter; ``max_reconnect_attempts`` (``None``: forever) bounds one outage.
    When the client stops for good by itself it calls ``on_error`` with the reason: a
    ``NetworkError`` with code ``reconnect_failed`` when the attempts are used up, an
    ``AuthenticationError`` when the key was rotated or refused.
    ``request_timeout`` bounds each request that waits for a reply, reconnects included.
    ``typing_timeout``: a typing indicator not renewed for this long is taken as stopped.
    ``event_buffer``: how many received events may wait for the callbacks (and for each
    ``events()`` stream) before the client stops reading the socket (see :meth:`events`).

    Use ``async with`` or :meth:`connect` / :meth:`disconnect`.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        on_message: Callback | None = None,
        on_read_receipt: Callback | None = None,
        on_unread_count: Callback | None = None,
        on_typing: Callback | None = None,
        on_connect: Callback | None = None,
        on_disconnect: Callback | None = None,
        on_error: Callback | None = None,
        on_typing_stopped: Callback | None = None,
        on_message_edited: Callback | None = None,
        on_message_deleted: Callback | None = None,
        reconnect: bool = True,
        reconnect_initial_delay: float = 0.5,
        reconnect_max_delay: float = 30.0,
        max_reconnect_attempts: int | None = None,
        request_timeout: float = 15.0,
        typing_timeout: float = 6.0,
        event_buffer: int = 1000,
    ) -> None:
        if event_buffer < 1:
            raise ValueError("event_buffer must be at least 1")
        self.api_key = api_key or os.environ.get(API_KEY_ENV) or None
        self.base_url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        websocket_url(self.base_url)  # ValueError now, not at connect time
        self.on_message = on_message
        self.on_read_receipt = on_read_receipt
        self.on_unread_count = on_unread_count
        self.on_typing = on_typing
        self.on_typing_stopped = on_typing_stopped
        self.on_message_edited = on_message_edited
        self.on_message_deleted = on_message_deleted
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.on_error = on_error
        self.reconnect = reconnect
        self.reconnect_initial_delay = reconnect_initial_delay
        self.reconnect_max_delay = reconnect_max_delay
        self.max_reconnect_attempts = max_reconnect_attempts
        self.request_timeout = request_timeout
        self.event_buffer = event_buffer

        self._ws: ClientConnection | None = None
        self._connected = False
        self._active = False  # between connect() and disconnect() or a final failure
        self._closing = False  # disconnect() runs: stop waiting for slow events() streams
        self._supports_resume = False  # the server sent hello: seq, request_id, resume
        self._username: str | None = None  # ours, from hello
        self._last_seq: int | None = None
        self._heartbeat_interval = 30.0
        self._pending = PendingRequests()
        self._request_ids = itertools.count(1)
        self._recent = RecentIds()
        self._own = OwnMessages()
        self._typing = TypingState(typing_timeout)
        self._typing_changed = asyncio.Event()
        self._events: asyncio.Queue[_Item] = asyncio.Queue()  # bounded by _make_room
        self._wake_receiver = asyncio.Event()  # buffer room freed, or a request started
        self._behind = False  # setting pushes aside until every awaited reply is in
        self._skipped = 0  # receipts / typing / counts set aside: not replayable
        self._streams: list[_Stream] = []
        self._receiver: asyncio.Task[None] | None = None
        self._typing_task: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._rng = random.Random()

    # --- state ------------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """True while a connection is open (False while reconnecting)."""
        return self._connected and self._ws is not None

    @property
    def last_seq(self) -> int | None:
        """The newest message ``seq`` this client has accounted for: the resume point."""
        return self._last_seq

    @property
    def typing_users(self) -> frozenset[str]:
        """Usernames typing right now (room or a DM to you); entries expire by themselves."""
        return self._typing.users()

    # --- lifecycle --------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the connection and start receiving; returns once ``on_connect`` has run.

        ``on_connect`` runs with the connection already receiving, so it may await the
        client (send, ask for counts). Raises ``AuthenticationError`` for a missing or refused
        key, ``NetworkError`` when the server cannot be reached. Reconnects after that happen
        in the background.
        """
        if self._active:
            return
        if not self.api_key:
            raise AuthenticationError(
                "API key required: pass api_key= or set TOKEN_BOWL_CHAT_API_KEY"
            )
        early = await self._open(since_seq=None)
        self._active = True
        self._closing = False
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="tbc-dispatch")
        self._emit(ConnectedEvent(resumed=False))
        on_connect_ran = self._barrier()
        # The receiver starts before on_connect runs: a callback that awaits a reply must
        # have someone reading it (it used to wait for the request timeout).
        self._receiver = asyncio.create_task(self._run(early), name="tbc-receive")
        self._typing_task = asyncio.create_task(self._expire_typing(), name="tbc-typing")
        try:
            await on_connect_ran
        except BaseException:  # cancelled (a timeout around connect()): leave nothing running
            if self._dispatcher is not None:
                self._dispatcher.cancel()  # on_connect may be what never finishes
            await self.disconnect()
            raise

    async def disconnect(self) -> None:
        """Close the connection; ``on_disconnect`` fires once. Requests still waiting fail
        with ``NetworkError``. Events already received are still handed to the callbacks and
        to ``events()`` streams, which then end. Calling it again does nothing."""
        if not self._active:
            return
        was_connected = self._connected
        self._active = False
        self._connected = False
        self._closing = True
        for stream in self._streams:
            stream.room.set()  # the dispatcher no longer waits for them
        current = asyncio.current_task()
        tasks = [t for t in (self._receiver, self._typing_task) if t not in (None, current)]
        self._receiver = self._typing_task = None
        # asyncio.wait, not "await task": the caller's own cancellation must propagate, not
        # be swallowed with the tasks' CancelledError. If it comes, teardown still finishes.
        try:
            await _cancel_until_done(tasks)
            if self._ws is not None:
                await _close(self._ws)
        finally:
            if self._ws is not None:
                self._ws.transport.abort()
                self._ws = None
            self._pending.fail_all(NetworkError("disconnected"))
            if was_connected:  # a drop being retried already reported its disconnect
                self._emit(DisconnectedEvent(code=CloseCode.NORMAL, will_reconnect=False))
            self._events.put_nowait(None)  # the dispatcher ends the streams after this
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None and dispatcher is not current:
            await asyncio.wait([dispatcher])

    async def __aenter__(self) -> TokenBowlWebSocket:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()

    async def events(self) -> AsyncIterator[Event]:
        """Every event as a typed object (``token_bowl_chat.events``), in order, until
        :meth:`disconnect` or until the client gives up (its last event is then the
        ``ErrorEvent`` saying why). Each call gets its own stream; callbacks still fire.

        Nothing is dropped. A stream holds at most ``event_buffer`` events; when it is full
        the callbacks wait too, then the client stops reading the socket (the server may then
        close the connection as a slow consumer, and the client resumes where it stopped).
        While you await a reply (``send_message``, a mark, ...) the client reads on to find
        it: messages it has no room for are fetched again from the server afterwards by
        resuming (a reconnect: ``DisconnectedEvent`` and ``ConnectedEvent(resumed=True)``);
        read receipts, typing and pushed counts cannot be fetched again, and their number is
        reported as an ``ErrorEvent`` with code ``events_skipped``. Leave the loop
        (``break``) rather than stop iterating, or the client waits for you.
        """
        stream = _Stream(self.event_buffer)
        self._streams.append(stream)
        try:
            while True:
                event = await stream.queue.get()
                stream.room.set()
                if event is None:
                    return
                yield event
        finally:
            stream.leave()
            self._streams.remove(stream)

    # --- commands ---------------------------------------------------------------------------

    async def send_message(
        self,
        content: str,
        to_username: str | None = None,
        *,
        client_message_id: str | None = None,
    ) -> MessageResponse:
        """Send to the room, or a DM to ``to_username``; returns the message as stored.

        Raises ``ValueError`` when not connected or ``content`` is empty, not a string or over
        10 000 characters; ``NetworkError`` when no reply came in time; and the server's
        refusal as its exception (``PermissionDeniedError``, ``NotFoundError`` for an unknown
        recipient, ``RateLimitError``, ...). A send interrupted by a reconnect is sent again
        with the same ``client_message_id`` (generated when not given), so it is stored once.
        """
        if not isinstance(content, str) or not content:
            raise ValueError("content must be a non-empty string")
        if len(content) > MAX_CONTENT_LENGTH:
            raise ValueError(f"content must be at most {MAX_CONTENT_LENGTH} characters")
        frame: dict[str, Any] = {"type": "message", "content": content}
        if to_username is not None:
            frame["to_username"] = to_username
        # Always, even before a late hello has told our server from an upstream one (which
        # ignores the field): a send made in that window is then safe to resend as well.
        frame["client_message_id"] = client_message_id or str(uuid.uuid4())
        reply = await self._request(frame)
        if reply.get("type") == "error":
            raise error_from_frame(reply)
        return MessageResponse.model_validate(reply["message"])

    async def edit_message(self, message_id: str, content: str) -> MessageResponse:
        """Replace the content of a message you sent (an admin: anyone's); returns the message
        as it now reads (``edited_at`` set). Everyone who can see it gets
        ``on_message_edited``, your own connections included. Raises ``ValueError`` for
        empty or over-long content or when not connected, ``NotFoundError`` for an unknown
        or deleted message (code ``message_deleted``), ``PermissionDeniedError`` for someone
        else's message. Needs our server (an upstream one answers ``unknown_type``)."""
        if not isinstance(content, str) or not content:
            raise ValueError("content must be a non-empty string")
        if len(content) > MAX_CONTENT_LENGTH:
            raise ValueError(f"content must be at most {MAX_CONTENT_LENGTH} characters")
        reply = await self._request(
            {"type": "edit_message", "message_id": message_id, "content": content}
        )
        if reply.get("type") == "error":
            raise error_from_frame(reply)
        return MessageResponse.model_validate(reply["message"])

    async def delete_message(self, message_id: str) -> MessageDeletedEvent:
        """Delete a message you sent (an admin: anyone's); it leaves history and everyone's
        unread counts, and everyone who can see it gets ``on_message_deleted``. Returns what
        the server confirmed. Raises as :meth:`edit_message`; a second delete is
        ``NotFoundError`` with code ``message_deleted``. Not resent after a reconnect (a
        delete that went through would then be refused): a drop before the reply raises
        ``NetworkError``, and the message may or may not be deleted."""
        reply = await self._request(
            {"type": "delete_message", "message_id": message_id}, resend=False
        )
        if reply.get("type") == "error":
            raise error_from_frame(reply)
        deleted_at = reply.get("deleted_at")
        return MessageDeletedEvent(
            str(reply.get("message_id", message_id)),
            deleted_at if isinstance(deleted_at, str) else None,
        )

    async def mark_message_read(self, message_id: str) -> None:
        """Mark one message read; its author gets a read receipt. An error answer (say, an
        unknown id) goes to ``on_error``. Raises ``ValueError`` when not connected,
        ``NetworkError`` when the request fails."""
        await self._fire({"type": "mark_read", "message_id": message_id})

    async def mark_all_messages_read(self) -> int | None:
        """Mark every room message and DM read. Returns how many were newly marked."""
        reply = await self._fire({"type": "mark_all_read"})
        return _int(reply, "marked_as_read")

    async def mark_room_messages_read(self) -> int | None:
        """Mark every room message read, leaving DMs. Returns how many were newly marked."""
        reply = await self._fire({"type": "mark_room_read"})
        return _int(reply, "count")

    async def mark_direct_messages_read(self, from_username: str) -> int | None:
        """Mark every DM from ``from_username`` read. Returns how many were newly marked."""
        reply = await self._fire({"type": "mark_direct_read", "from_username": from_username})
        return _int(reply, "count")

    async def get_unread_count(self) -> UnreadCountResponse | None:
        """Ask for the unread counts. They arrive through ``on_unread_count`` and are also
        returned."""
        reply = await self._fire({"type": "get_unread_count"})
        if reply is None or reply.get("type") != "unread_count":
            return None
        return UnreadCountResponse.model_validate(reply)

    async def send_typing_indicator(self, to_username: str | None = None) -> None:
        """Tell the room (or ``to_username``) you are typing; repeat every few seconds while
        you are. No reply is awaited; an error answer goes to ``on_error``. Against an
        upstream server, which rejects typing frames, nothing is sent."""
        self._check_usable()
        if not self._supports_resume:
            logger.debug("server does not support typing indicators; not sent")
            return
        frame: dict[str, Any] = {"type": "typing", "request_id": self._next_id()}
        if to_username is not None:
            frame["to_username"] = to_username
        await self._send(frame)

    # --- requests ---------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if not self._active:
            raise ValueError("not connected: call connect() first")

    def _next_id(self) -> str:
        return f"c{next(self._request_ids)}"

    async def _send(self, frame: dict[str, Any]) -> None:
        ws = self._ws
        if ws is None or not self._connected:
            raise NetworkError("not connected (reconnecting)")
        try:
            await ws.send(json.dumps(frame))
        except ConnectionClosed as exc:
            raise NetworkError(f"send failed: {exc}") from exc

    async def _request(self, frame: dict[str, Any], resend: bool = True) -> dict[str, Any]:
        """Send ``frame`` and wait for its reply, across a reconnect when ``resend``."""
        self._check_usable()
        request_id = self._next_id()
        frame = {**frame, "request_id": request_id}
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending.add(Pending(request_id, frame, future, resend))
        self._wake_receiver.set()  # a full buffer must not keep the receiver from this reply
        try:
            async with asyncio.timeout(self.request_timeout):
                if self._connected:
                    # A send that fails here is sent again after the reconnect (or failed).
                    with contextlib.suppress(NetworkError):
                        await self._send(frame)
                return await future
        except builtins.TimeoutError:
            raise TimeoutError(f"no reply to {frame['type']} in {self.request_timeout} s") from None
        finally:
            self._pending.discard(request_id)

    async def _fire(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        """A request whose error answer goes to ``on_error`` instead of raising, as upstream."""
        reply = await self._request(frame)
        if reply.get("type") == "error":
            self._emit(ErrorEvent(error_from_frame(reply)))
            return None
        return reply

    # --- connection -------------------------------------------------------------------------

    async def _open(self, since_seq: int | None) -> list[str]:
        """Open one connection; returns frames that arrived before it was known to be ours."""
        url = websocket_url(self.base_url, since_seq)
        headers = {API_KEY_HEADER: self.api_key or ""}
        try:
            ws = await websockets.connect(url, additional_headers=headers, open_timeout=10)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise AuthenticationError("Invalid API key") from exc
            raise NetworkError(f"Connection failed with status {status}") from exc
        except (OSError, InvalidHandshake, builtins.TimeoutError) as exc:
            raise NetworkError(f"Failed to connect: {exc}") from exc
        try:
            early = await self._greet(ws)
        except BaseException:
            ws.transport.abort()  # never leave a half-opened socket behind, even if cancelled
            raise
        self._ws = ws
        self._connected = True
        self._behind = False  # this connection resumes from _last_seq: nothing set aside
        return early

    async def _greet(self, ws: ClientConnection) -> list[str]:
        """Wait (briefly) for the server's hello, which tells our server from an upstream one.

        No hello within ``HELLO_TIMEOUT`` decides nothing for good: a hello that arrives
        later, from the receive loop, switches the extensions on all the same.
        """
        try:
            async with asyncio.timeout(HELLO_TIMEOUT):
                first = await ws.recv()
        except builtins.TimeoutError:
            return []  # an upstream server, or ours running late
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == CloseCode.POLICY_VIOLATION:
                raise AuthenticationError("Invalid API key") from exc
            raise NetworkError(f"connection closed at once: {exc}") from exc
        text = first if isinstance(first, str) else first.decode(errors="replace")
        with contextlib.suppress(ValueError, RecursionError):
            frame = _loads(text)
            if frame.get("type") == "hello":
                self._on_hello(frame)
                return []
        return [text]  # not a hello: handled (or reported) by the receive loop

    async def _run(self, early: list[str]) -> None:
        """Receive until dropped; reconnect and resume until told to stop."""
        while True:
            code: int | None = None
            reason = ""
            resync = dead = False
            try:
                for text in early:
                    await self._handle(text)
                await self._receive()
            except _Dropped as drop:
                code, reason, resync, dead = drop.code, drop.reason, drop.resync, drop.dead
            ws, self._ws = self._ws, None
            self._connected = False
            if ws is not None and dead:
                ws.transport.abort()
            elif ws is not None:
                await _close(ws)
            if not self._active:
                return
            retry = resync or (self.reconnect and (code is None or should_reconnect(code)))
            self._drop_typing()
            self._emit(DisconnectedEvent(code=code, reason=reason, will_reconnect=retry))
            if not self._supports_resume:
                self._pending.fail_all(NetworkError(f"connection lost ({code})"))
            if not retry:
                await self._give_up(_final_error(code, reason))
                return
            try:
                reopened = await self._reconnect(at_once=resync)
            except TokenBowlError as exc:
                await self._give_up(exc)
                return
            if reopened is None:
                return  # disconnect() was called meanwhile
            early = reopened
            self._emit(ConnectedEvent(resumed=self._supports_resume))
            self._report_skipped()
            await self._resend_pending()

    async def _receive(self) -> None:
        ws = self._ws
        assert ws is not None
        loop = asyncio.get_running_loop()
        alive_at = loop.time()  # the last frame or pong
        while True:
            if self._behind and not self._pending:
                # Every awaited reply is in. What was set aside is fetched again by resuming
                # from _last_seq, once the consumers have caught up (or sooner, when a new
                # request needs this connection's reply first: then read on).
                await self._until(lambda: self._buffered() < self._low_water or self._waiting())
                if not self._pending:
                    raise _Dropped(None, "fetching set-aside events again", resync=True)
            try:
                # Short waits, so that a request started meanwhile is noticed (recv is
                # cancel-safe: a timeout loses nothing).
                async with asyncio.timeout(_BEHIND_POLL if self._behind else self._probe_after):
                    raw = await ws.recv()
            except builtins.TimeoutError:
                quiet = loop.time() - alive_at
                if self._waiting() and quiet >= self._probe_after:
                    await self._probe(ws)  # a reply is due: a dead link must not wait long
                    alive_at = loop.time()
                    continue
                silence = max(SILENCE_TIMEOUT, 2.5 * self._heartbeat_interval)
                if quiet >= silence:
                    logger.warning("no frame for %.0f s; reconnecting", silence)
                    raise _Dropped(None, "silent connection", dead=True) from None
                continue
            except ConnectionClosed as exc:
                rcvd = exc.rcvd
                raise _Dropped(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from None
            alive_at = loop.time()
            await self._handle(raw if isinstance(raw, str) else raw.decode(errors="replace"))

    @property
    def _probe_after(self) -> float:
        return max(0.5, min(5.0, self.request_timeout / 4))

    async def _probe(self, ws: ClientConnection) -> None:
        """A reply is due and nothing arrives: ping. A link that died without a FIN or RST
        (a NAT or proxy that forgot us) answers nothing; then reconnect now and resend,
        while the request's time lasts, instead of letting it time out although the server
        may have acted on it. A live but busy server answers the ping and is left alone."""
        try:
            pong = await ws.ping()
            async with asyncio.timeout(self._probe_after):
                await pong
        except builtins.TimeoutError:
            logger.info("no pong in %.1f s while a reply is due; reconnecting", self._probe_after)
            raise _Dropped(None, "no answer while a reply was due", dead=True) from None
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            raise _Dropped(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from None

    async def _reconnect(self, at_once: bool = False) -> list[str] | None:
        """Try again with backoff; returns early frames once connected, ``None`` when
        :meth:`disconnect` was called. Raises the reason to give up: ``AuthenticationError``
        (the key was rotated or revoked) or ``NetworkError`` (code ``reconnect_failed``) when
        ``max_reconnect_attempts`` are used up."""
        attempt = 0
        failure: Exception | None = None
        while self._active:
            if self.max_reconnect_attempts is not None and attempt >= self.max_reconnect_attempts:
                raise NetworkError(
                    f"gave up reconnecting after {attempt} attempt(s); last error: {failure}",
                    code="reconnect_failed",
                )
            if not (at_once and attempt == 0):
                await asyncio.sleep(
                    backoff_delay(
                        attempt, self.reconnect_initial_delay, self.reconnect_max_delay, self._rng
                    )
                )
            attempt += 1
            try:
                return await self._open(since_seq=self._last_seq)
            except NetworkError as exc:
                failure = exc
                logger.info("reconnect attempt %d failed: %s", attempt, exc)
        return None

    async def _resend_pending(self) -> None:
        for pending in self._pending:
            if not pending.resend:
                if not pending.future.done():
                    pending.future.set_exception(NetworkError("connection lost before a reply"))
                self._pending.discard(pending.request_id)
                continue
            with contextlib.suppress(NetworkError):
                await self._send(pending.frame)

    async def _give_up(self, error: TokenBowlError | None) -> None:
        """Stop for good: waiting requests fail, ``on_error`` hears why (unless the server
        closed normally or reconnecting is off), and the event streams end after that."""
        self._active = False
        self._connected = False
        self._pending.fail_all(error or NetworkError("connection closed"))
        if error is not None:
            self._emit(ErrorEvent(error))
        self._events.put_nowait(None)
        if self._typing_task is not None:
            self._typing_task.cancel()
            self._typing_task = None

    # --- backpressure -----------------------------------------------------------------------

    @property
    def _low_water(self) -> int:
        return max(1, self.event_buffer // 2)

    def _buffered(self) -> int:
        return self._events.qsize()

    def _waiting(self) -> bool:
        return bool(len(self._pending))

    async def _until(self, condition: Callable[[], bool]) -> None:
        """Wait (receiver only) until ``condition()``; re-checked whenever the dispatcher
        takes an event or a request starts."""
        while not condition():
            self._wake_receiver.clear()
            await self._wake_receiver.wait()

    async def _make_room(self) -> bool:
        """Whether a pushed frame may be handled now; waits while the buffer is full.

        A full buffer makes the receiver wait, and so stops reading the socket: backpressure.
        But a request awaiting its reply (maybe from a callback, which holds the buffer up)
        needs the receiver to read on, or both would wait for ever. Then pushes are set aside
        (False) until every reply is in, and the connection is resumed afterwards, which
        fetches the set-aside messages again (their seq never became the resume point).
        Against an upstream server, which cannot replay, they are kept instead.
        """
        if self._behind:
            return False
        if self._buffered() < self.event_buffer:
            return True
        await self._until(lambda: self._buffered() < self.event_buffer or self._waiting())
        if self._buffered() < self.event_buffer or not self._supports_resume:
            return True
        logger.info("event buffer full while a reply is awaited; setting pushes aside")
        self._behind = True
        return False

    def _set_aside(self, frame: dict[str, Any]) -> None:
        # Messages, edits and deletes are fetched again by the resume; the rest is lost.
        if frame.get("type") not in (None, *_EDIT_TYPES):
            self._skipped += 1

    def _report_skipped(self) -> None:
        if self._skipped:
            self._emit(
                ErrorEvent(
                    TokenBowlError(
                        f"{self._skipped} read receipt, typing or unread-count event(s) were "
                        f"skipped while the callbacks / events() were {self.event_buffer} "
                        "events behind and a reply was awaited (messages were fetched again)",
                        code="events_skipped",
                    )
                )
            )
            self._skipped = 0

    # --- incoming frames --------------------------------------------------------------------

    async def _handle(self, text: str) -> None:
        """Act on one frame. A frame that cannot be read is reported, never fatal."""
        try:
            frame = _loads(text)
        except (ValueError, RecursionError) as exc:
            self._emit(ErrorEvent(ValueError(f"unreadable frame: {exc}")))
            return
        if self._is_push(frame) and not await self._make_room():
            self._set_aside(frame)
            return
        try:
            await self._handle_frame(frame)
        except (ValueError, KeyError, TypeError) as exc:
            self._emit(ErrorEvent(exc))

    def _is_push(self, frame: dict[str, Any]) -> bool:
        kind = frame.get("type")
        if kind is None:
            return "from_username" in frame and "content" in frame
        if kind in _PUSH_TYPES:
            return True
        if kind in _EDIT_TYPES:
            return self._supports_resume and "request_id" not in frame
        # Our server pushes counts without a request id; upstream's are all replies.
        return kind == "unread_count" and self._supports_resume and "request_id" not in frame

    async def _handle_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind is None and "from_username" in frame and "content" in frame:
            self._on_delivery(frame)
        elif kind == "ping":
            with contextlib.suppress(NetworkError):
                await self._send({"type": "pong"})
        elif kind in _EDIT_TYPES and not self._is_push(frame):
            self._on_reply(frame)
        elif kind in _EDIT_TYPES:
            self._on_edit_event(frame)
        elif kind in _REPLY_TYPES or (kind is None and frame.get("status") == "marked_read"):
            self._on_reply(frame)
        elif kind == "read_receipt":
            message_id, read_by = str(frame["message_id"]), str(frame["read_by"])
            if self._own.first_report(message_id, read_by):
                self._emit(ReadReceiptEvent(message_id, read_by))
        elif kind == "read_up_to":
            self._on_read_up_to(frame)
        elif kind == "typing":
            self._on_typing(str(frame["username"]), frame.get("to_username"))
        elif kind == "typing_stopped":
            key = (str(frame["username"]), frame.get("to_username"))
            if self._typing.stop(key):
                self._emit(TypingStoppedEvent(*key))
        elif kind == "hello":
            self._on_hello(frame)
        elif kind == "resumed":
            if not self._behind:  # set-aside messages lie below this: keep our resume point
                self._advance(int(frame["last_seq"]))
        elif kind == "resume_gap":
            # The server does not know our resume point (say, its database was replaced):
            # nothing was replayed, so messages may be missing. Tell the application.
            self._last_seq = int(frame["last_seq"])
            self._emit(
                ErrorEvent(
                    NetworkError(
                        f"the server could not replay from seq {frame.get('requested_seq')}; "
                        "messages sent while disconnected may be missing",
                        code="resume_gap",
                    )
                )
            )
        else:
            logger.debug("ignored frame %s", kind)

    def _on_hello(self, frame: dict[str, Any]) -> None:
        """Our server: ids, seq and resume from now on, whenever the hello arrives."""
        if not self._supports_resume:
            logger.debug("hello received: extended protocol on")
        self._supports_resume = True
        if isinstance(frame.get("username"), str):
            self._username = frame["username"]
        interval = frame.get("heartbeat_interval")
        if isinstance(interval, int | float) and interval > 0:
            self._heartbeat_interval = float(interval)
        if isinstance(frame.get("last_seq"), int):
            self._advance(frame["last_seq"])

    def _on_delivery(self, frame: dict[str, Any]) -> None:
        message = MessageResponse.model_validate(frame)
        if message.seq is not None:
            self._advance(message.seq)
            if message.from_username == self._username:  # sent from another device of ours
                self._note_own(message)
        if not self._recent.first_time(message.id):
            return
        target = message.to_username if message.message_type is MessageType.DIRECT else None
        for key in self._typing.stop_typist(message.from_username, target):
            self._emit(TypingStoppedEvent(*key))
        self._emit(MessageEvent(message))

    def _on_edit_event(self, frame: dict[str, Any]) -> None:
        """A pushed or replayed edit or delete: once each (by its seq), in seq order."""
        seq = frame.get("seq")
        if isinstance(seq, int):
            self._advance(seq)
            if not self._recent.first_time(f"event:{seq}"):
                return
        if frame["type"] == "message_edited":
            self._emit(MessageEditedEvent(MessageResponse.model_validate(frame["message"])))
        else:
            deleted_at = frame.get("deleted_at")
            self._emit(
                MessageDeletedEvent(
                    str(frame["message_id"]), deleted_at if isinstance(deleted_at, str) else None
                )
            )

    def _on_reply(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "unread_count":
            self._emit(UnreadCountEvent(UnreadCountResponse.model_validate(frame)))
        elif kind == "message_sent" and isinstance(frame.get("message"), dict):
            with contextlib.suppress(ValueError):
                self._note_own(MessageResponse.model_validate(frame["message"]))
        if self._pending.resolve(frame, in_order=not self._supports_resume):
            return
        if kind == "error":
            self._emit(ErrorEvent(error_from_frame(frame)))

    def _note_own(self, message: MessageResponse) -> None:
        if message.seq is None:
            return
        direct = message.message_type is MessageType.DIRECT
        self._own.add(message.id, message.seq, message.to_username if direct else None)

    def _on_read_up_to(self, frame: dict[str, Any]) -> None:
        """One receipt for a bulk mark: ``on_read_receipt`` for each message of ours it
        covers that this client knows (plus the newest one, which the frame names)."""
        read_by = str(frame["read_by"])
        covered = self._own.read_up_to(
            read_by, str(frame["scope"]), int(frame["up_to_seq"]), str(frame["last_message_id"])
        )
        for message_id in covered:
            self._emit(ReadReceiptEvent(message_id, read_by))

    def _on_typing(self, username: str, to_username: str | None) -> None:
        self._typing.start((username, to_username), asyncio.get_running_loop().time())
        self._typing_changed.set()
        self._emit(TypingEvent(username, to_username))

    def _drop_typing(self) -> None:
        for key in self._typing.clear():
            self._emit(TypingStoppedEvent(*key))

    async def _expire_typing(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._typing_changed.clear()
            deadline = self._typing.next_deadline()
            if deadline is None:
                await self._typing_changed.wait()
                continue
            with contextlib.suppress(builtins.TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    await self._typing_changed.wait()
            for key in self._typing.expire(loop.time()):
                self._emit(TypingStoppedEvent(*key))

    def _advance(self, seq: int) -> None:
        if self._last_seq is None or seq > self._last_seq:
            self._last_seq = seq

    # --- dispatch ---------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        # Unbounded on purpose: the receiver bounds what the server pushes (_make_room); the
        # rest (replies, errors of your own requests, typing expiry) follows your own calls.
        self._events.put_nowait(event)

    def _barrier(self) -> asyncio.Future[None]:
        """A future resolved once everything emitted so far has been dispatched."""
        reached: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._events.put_nowait(_Barrier(reached))
        return reached

    async def _publish(self, event: Event) -> None:
        """Hand ``event`` to every ``events()`` stream, waiting while one is full (unless
        :meth:`disconnect` runs: a consumer that disconnects from its own loop must not
        wait for itself)."""
        for stream in list(self._streams):
            while stream.full() and not stream.left and not self._closing:
                stream.room.clear()
                await stream.room.wait()
            if not stream.left:
                stream.queue.put_nowait(event)

    async def _dispatch_loop(self) -> None:
        """Run callbacks one at a time, in the order events happened."""
        try:
            while True:
                item = await self._events.get()
                self._wake_receiver.set()  # room in the buffer
                if item is None:
                    return
                if isinstance(item, _Barrier):
                    if not item.reached.done():
                        item.reached.set_result(None)
                    continue
                await self._publish(item)
                await self._dispatch(item)
        finally:
            for stream in self._streams:
                stream.queue.put_nowait(None)
            while not self._events.empty():  # nobody is left to reach these
                item = self._events.get_nowait()
                if isinstance(item, _Barrier) and not item.reached.done():
                    item.reached.set_result(None)

    async def _dispatch(self, event: Event) -> None:
        if isinstance(event, MessageEvent):
            await self._call(self.on_message, event.message)
        elif isinstance(event, MessageEditedEvent):
            await self._call(self.on_message_edited, event.message)
        elif isinstance(event, MessageDeletedEvent):
            await self._call(self.on_message_deleted, event.message_id)
        elif isinstance(event, ReadReceiptEvent):
            await self._call(self.on_read_receipt, event.message_id, event.read_by)
        elif isinstance(event, UnreadCountEvent):
            await self._call(self.on_unread_count, event.count)
        elif isinstance(event, TypingEvent):
            await self._call(self.on_typing, event.username, event.to_username)
        elif isinstance(event, TypingStoppedEvent):
            await self._call(self.on_typing_stopped, event.username, event.to_username)
        elif isinstance(event, ConnectedEvent):
            await self._call(self.on_connect)
        elif isinstance(event, DisconnectedEvent):
            await self._call(self.on_disconnect)
        elif isinstance(event, ErrorEvent):
            await self._call_on_error(event.error)

    async def _call(self, callback: Callback | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            await _maybe_await(callback(*args))
        except Exception as exc:
            logger.debug("callback %r raised", callback, exc_info=True)
            await self._call_on_error(exc)

    async def _call_on_error(self, error: Exception) -> None:
        if self.on_error is None:
            logger.debug("unhandled client error: %s", error)
            return
        try:
            await _maybe_await(self.on_error(error))
        except Exception:
            logger.exception("on_error raised")


async def _maybe_await(result: Awaitable[Any] | Any) -> None:
    if inspect.isawaitable(result):
        await result


def _loads(text: str) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("frame is not a JSON object")
    return data


def _int(reply: dict[str, Any] | None, key: str) -> int | None:
    if reply is None or not isinstance(reply.get(key), int):
        return None
    return int(reply[key])


async def _cancel_until_done(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait for them to end, cancelling again while they run on.

    On Python 3.11, ``asyncio.wait_for`` swallows a cancellation that arrives just as the
    awaited operation completes, so one ``cancel()`` can leave a receive loop running until
    its connection drops (a minute or more). A task that outlives a short wait is cancelled
    again.
    """
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_RECANCEL_AFTER)


async def _close(ws: ClientConnection) -> None:
    """Close ``ws``, aborting the socket when the close handshake takes too long."""
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await ws.close()
    except Exception:
        ws.transport.abort()
    except BaseException:  # cancelled: still leave no socket behind
        ws.transport.abort()
        raise


def _final_error(code: int | None, reason: str) -> TokenBowlError | None:
    """Why the client stops after the server closed with ``code`` and no retry is due:
    ``None`` for a normal close or when reconnecting is off (``on_disconnect`` says it all)."""
    if code == CloseCode.POLICY_VIOLATION:
        return AuthenticationError(
            f"the server closed the connection: the API key was rotated or revoked ({reason})",
            code=ErrorCode.AUTHENTICATION_REQUIRED,
        )
    if code is not None and code != CloseCode.NORMAL and not should_reconnect(code):
        return NetworkError(
            f"the server closed the connection for good ({code} {reason})".strip(),
            code="connection_closed",
        )
    return None
