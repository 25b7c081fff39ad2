"""``TokenBowlWebSocket``: the real-time connection, with callbacks or ``async for`` events.

What it adds to the upstream client, keeping that client's documented API:

* callbacks may be plain functions or coroutine functions (coroutines are awaited); they run
  in order on one dispatcher task, so a callback may itself ``await`` the client, and one that
  raises goes to ``on_error`` without stopping anything;
* ``send_message`` returns the stored :class:`MessageResponse`, matched to the server's reply;
  every send carries a client message id, so a send retried after a reconnect is stored once;
* automatic reconnect with jittered exponential backoff, and a gap-free resume: the client
  remembers the last message ``seq`` it saw and the server replays what it missed, so
  ``on_message`` sees every message exactly once, in order;
* typing indicators that expire by themselves (``typing_users``, ``on_typing_stopped``).

Against an upstream server (no ``hello`` frame, no ``seq``, no ``request_id``) it falls back to
the upstream behaviour: replies are matched in order, typing is not sent (that server rejects
it), and a reconnect cannot replay what was missed.
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
from types import TracebackType
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from token_bowl_chat._base import API_KEY_ENV, API_KEY_HEADER, BASE_URL_ENV, DEFAULT_BASE_URL
from token_bowl_chat._ws_state import (
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
    MessageEvent,
    ReadReceiptEvent,
    TypingEvent,
    TypingStoppedEvent,
    UnreadCountEvent,
)
from token_bowl_chat.exceptions import AuthenticationError, NetworkError, TimeoutError
from token_bowl_chat.protocol.close_codes import CloseCode, should_reconnect
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
HELLO_TIMEOUT = 1.0
# With no frame at all for this long (the server pings every 30 s), the link is dead.
SILENCE_TIMEOUT = 75.0
_EVENT_QUEUE_SIZE = 10_000

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


class _Dropped(Exception):
    """The connection ended; ``code`` is its close code (``None``: no close frame)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason


class TokenBowlWebSocket:
    """A WebSocket connection to a Token Bowl Chat server.

    ``api_key`` falls back to ``$TOKEN_BOWL_CHAT_API_KEY``; ``base_url`` (http(s):// or
    ws(s)://, with or without ``/ws``) to ``$TOKEN_BOWL_CHAT_BASE_URL``, then
    ``http://localhost:8000``. Callbacks receive the documented arguments:
    ``on_message(msg)``, ``on_read_receipt(message_id, read_by)``, ``on_unread_count(count)``,
    ``on_typing(username, to_username)``, ``on_typing_stopped(username, to_username)``,
    ``on_connect()``, ``on_disconnect()``, ``on_error(error)``. ``on_connect`` and
    ``on_disconnect`` fire for every connection and every drop.

    ``reconnect``: reconnect after a drop (not after :meth:`disconnect`, a rotated key or a
    normal close), waiting ``reconnect_initial_delay`` doubling up to ``reconnect_max_delay``
    seconds, with jitter; ``max_reconnect_attempts`` (``None``: forever) bounds one outage.
    ``request_timeout`` bounds each request that waits for a reply, reconnects included.
    ``typing_timeout``: a typing indicator not renewed for this long is taken as stopped.

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
        reconnect: bool = True,
        reconnect_initial_delay: float = 0.5,
        reconnect_max_delay: float = 30.0,
        max_reconnect_attempts: int | None = None,
        request_timeout: float = 15.0,
        typing_timeout: float = 6.0,
    ) -> None:
        self.api_key = api_key or os.environ.get(API_KEY_ENV) or None
        self.base_url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        websocket_url(self.base_url)  # ValueError now, not at connect time
        self.on_message = on_message
        self.on_read_receipt = on_read_receipt
        self.on_unread_count = on_unread_count
        self.on_typing = on_typing
        self.on_typing_stopped = on_typing_stopped
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.on_error = on_error
        self.reconnect = reconnect
        self.reconnect_initial_delay = reconnect_initial_delay
        self.reconnect_max_delay = reconnect_max_delay
        self.max_reconnect_attempts = max_reconnect_attempts
        self.request_timeout = request_timeout

        self._ws: ClientConnection | None = None
        self._connected = False
        self._active = False  # between connect() and disconnect() or a final failure
        self._supports_resume = False  # the server sent hello: seq, request_id, resume
        self._last_seq: int | None = None
        self._heartbeat_interval = 30.0
        self._pending = PendingRequests()
        self._request_ids = itertools.count(1)
        self._recent = RecentIds()
        self._typing = TypingState(typing_timeout)
        self._typing_changed = asyncio.Event()
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._subscribers: list[asyncio.Queue[Event | None]] = []
        self._tasks: list[asyncio.Task[None]] = []
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
        """Open the connection and start receiving.

        Raises ``AuthenticationError`` for a missing or refused key, ``NetworkError`` when the
        server cannot be reached. Reconnects after that happen in the background.
        """
        if self._active:
            return
        if not self.api_key:
            raise AuthenticationError(
                "API key required: pass api_key= or set TOKEN_BOWL_CHAT_API_KEY"
            )
        early = await self._open(since_seq=None)
        self._active = True
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="tbc-dispatch")
        await self._call(self.on_connect)
        self._publish(ConnectedEvent(resumed=False))
        self._tasks = [
            asyncio.create_task(self._run(early), name="tbc-receive"),
            asyncio.create_task(self._expire_typing(), name="tbc-typing"),
        ]

    async def disconnect(self) -> None:
        """Close the connection; ``on_disconnect`` fires once. Requests still waiting fail
        with ``NetworkError``. Calling it again does nothing."""
        if not self._active:
            return
        was_connected = self._connected
        self._active = False
        self._connected = False
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks = []
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
            self._ws = None
        self._pending.fail_all(NetworkError("disconnected"))
        if was_connected:  # a drop being retried already reported its disconnect
            self._emit(DisconnectedEvent(code=CloseCode.NORMAL, will_reconnect=False))
        self._events.put_nowait(None)  # the dispatcher stops after this
        if self._dispatcher is not None and self._dispatcher is not current:
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        self._dispatcher = None
        for queue in self._subscribers:
            queue.put_nowait(None)

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
        :meth:`disconnect`. Each call gets its own stream; callbacks still fire as well."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(_EVENT_QUEUE_SIZE)
        self._subscribers.append(queue)
        try:
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
        finally:
            self._subscribers.remove(queue)

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
        if client_message_id is not None or self._supports_resume:
            frame["client_message_id"] = client_message_id or str(uuid.uuid4())
        reply = await self._request(frame, resend="client_message_id" in frame)
        if reply.get("type") == "error":
            raise error_from_frame(reply)
        return MessageResponse.model_validate(reply["message"])

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
        url = websocket_url(self.base_url, since_seq if self._supports_resume else None)
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
        return early

    async def _greet(self, ws: ClientConnection) -> list[str]:
        """Read the server's hello, which tells our server from an upstream one."""
        early: list[str] = []
        try:
            first = await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT)
        except builtins.TimeoutError:
            self._supports_resume = False  # no hello: an upstream server
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == CloseCode.POLICY_VIOLATION:
                raise AuthenticationError("Invalid API key") from exc
            raise NetworkError(f"connection closed at once: {exc}") from exc
        else:
            text = first if isinstance(first, str) else first.decode()
            hello = _loads(text)
            if hello.get("type") == "hello":
                self._supports_resume = True
                self._heartbeat_interval = float(hello.get("heartbeat_interval") or 30.0)
                if isinstance(hello.get("last_seq"), int):
                    self._advance(hello["last_seq"])
            else:
                self._supports_resume = False
                early.append(text)
        return early

    async def _run(self, early: list[str]) -> None:
        """Receive until dropped; reconnect and resume until told to stop."""
        while True:
            code: int | None = None
            reason = ""
            try:
                for text in early:
                    await self._handle(text)
                await self._receive()
            except _Dropped as drop:
                code, reason = drop.code, drop.reason
            self._connected = False
            self._ws = None
            if not self._active:
                return
            retry = self.reconnect and (code is None or should_reconnect(code))
            self._drop_typing()
            self._emit(DisconnectedEvent(code=code, reason=reason, will_reconnect=retry))
            if not self._supports_resume:
                self._pending.fail_all(NetworkError(f"connection lost ({code})"))
            reopened = await self._reconnect() if retry else None
            if reopened is None:
                await self._give_up(NetworkError(f"connection lost ({code}) {reason}".strip()))
                return
            early = reopened
            self._emit(ConnectedEvent(resumed=self._supports_resume))
            await self._resend_pending()

    async def _receive(self) -> None:
        ws = self._ws
        assert ws is not None
        silence = max(SILENCE_TIMEOUT, 2.5 * self._heartbeat_interval)
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), silence)
            except builtins.TimeoutError:
                logger.warning("no frame for %.0f s; reconnecting", silence)
                with contextlib.suppress(Exception):
                    await ws.close()
                raise _Dropped(None, "silent connection") from None
            except ConnectionClosed as exc:
                rcvd = exc.rcvd
                raise _Dropped(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from None
            await self._handle(raw if isinstance(raw, str) else raw.decode())

    async def _reconnect(self) -> list[str] | None:
        """Try again with backoff; returns early frames once connected, ``None`` to give up."""
        attempt = 0
        while self._active:
            if self.max_reconnect_attempts is not None and attempt >= self.max_reconnect_attempts:
                return None
            await asyncio.sleep(
                backoff_delay(
                    attempt, self.reconnect_initial_delay, self.reconnect_max_delay, self._rng
                )
            )
            attempt += 1
            try:
                return await self._open(since_seq=self._last_seq)
            except AuthenticationError as exc:
                self._emit(ErrorEvent(exc))  # the key was rotated or revoked: stop
                return None
            except NetworkError as exc:
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

    async def _give_up(self, error: NetworkError) -> None:
        self._active = False
        self._pending.fail_all(error)
        self._events.put_nowait(None)
        for queue in self._subscribers:
            queue.put_nowait(None)

    # --- incoming frames --------------------------------------------------------------------

    async def _handle(self, text: str) -> None:
        """Act on one frame. A frame that cannot be read is reported, never fatal."""
        try:
            await self._handle_frame(_loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            self._emit(ErrorEvent(exc))

    async def _handle_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind is None and "from_username" in frame and "content" in frame:
            self._on_delivery(frame)
        elif kind == "ping":
            with contextlib.suppress(NetworkError):
                await self._send({"type": "pong"})
        elif kind in _REPLY_TYPES or (kind is None and frame.get("status") == "marked_read"):
            self._on_reply(frame)
        elif kind == "read_receipt":
            self._emit(ReadReceiptEvent(str(frame["message_id"]), str(frame["read_by"])))
        elif kind == "typing":
            self._on_typing(str(frame["username"]), frame.get("to_username"))
        elif kind == "typing_stopped":
            key = (str(frame["username"]), frame.get("to_username"))
            if self._typing.stop(key):
                self._emit(TypingStoppedEvent(*key))
        elif kind == "resumed":
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

    def _on_delivery(self, frame: dict[str, Any]) -> None:
        message = MessageResponse.model_validate(frame)
        if message.seq is not None:
            self._advance(message.seq)
        if not self._recent.first_time(message.id):
            return
        target = message.to_username if message.message_type is MessageType.DIRECT else None
        for key in self._typing.stop_typist(message.from_username, target):
            self._emit(TypingStoppedEvent(*key))
        self._emit(MessageEvent(message))

    def _on_reply(self, frame: dict[str, Any]) -> None:
        if frame.get("type") == "unread_count":
            self._emit(UnreadCountEvent(UnreadCountResponse.model_validate(frame)))
        if self._pending.resolve(frame, in_order=not self._supports_resume):
            return
        if frame.get("type") == "error":
            self._emit(ErrorEvent(error_from_frame(frame)))

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
                await asyncio.wait_for(
                    self._typing_changed.wait(), max(0.0, deadline - loop.time())
                )
            for key in self._typing.expire(loop.time()):
                self._emit(TypingStoppedEvent(*key))

    def _advance(self, seq: int) -> None:
        if self._last_seq is None or seq > self._last_seq:
            self._last_seq = seq

    # --- dispatch ---------------------------------------------------------------------------

    def _emit(self, event: Event) -> None:
        self._events.put_nowait(event)

    def _publish(self, event: Event) -> None:
        for queue in self._subscribers:
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                logger.warning("events() consumer is %d events behind; dropping", queue.qsize())

    async def _dispatch_loop(self) -> None:
        """Run callbacks one at a time, in the order events happened."""
        while True:
            event = await self._events.get()
            if event is None:
                return
            self._publish(event)
            await self._dispatch(event)

    async def _dispatch(self, event: Event) -> None:
        if isinstance(event, MessageEvent):
            await self._call(self.on_message, event.message)
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
