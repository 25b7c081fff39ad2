"""The WebSocket protocol uvicorn runs for us: its own, made to answer every refused upgrade.

websockets refuses an upgrade request whose request line or a header line is longer than
8 KiB, or that is not HTTP at all, while it parses: before any request event exists.
uvicorn's sans-I/O protocol (before 0.55) wrote and closed only in response to events, so
that refusal was queued but never sent, and the socket stayed open with nobody reading it:
any client could pin server sockets with one long ``/ws`` URL each; 0.55 sends websockets'
plain-text refusal. Here such a request gets the API's usual error body (414, 431 or 400,
code ``validation_error``) and the socket is closed.

It is also the connection's :class:`~token_bowl_chat_server.realtime.connection.Wire`: the
server writes its frames straight to the transport, without an ASGI ``send`` per frame. A
server-to-client frame is not masked, so a fan-out's frame bytes are the same for every
receiver: :func:`text_frame` builds them once per message.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import socket
import struct
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any, Protocol

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import HeaderLineTooLong, RequestLineTooLong, TooManyHeaders

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat_server.realtime.lean_sync import Flag, Mailbox

# Where the protocol puts itself in the ASGI scope, for the endpoint to find its wire.
WIRE_EXTENSION = "token_bowl.wire"

_TEXT_FIN = 0x81  # FIN + opcode 1 (text)
_last_text: str = ""
_last_frame: bytes = b"\x81\x00"


def text_frame(text: str) -> bytes:
    """The bytes of an unmasked, unfragmented text frame carrying ``text`` (RFC 6455 5.2).

    The last one is kept: a fan-out asks for the same ``text`` object once per receiver.
    """
    global _last_text, _last_frame
    if text is _last_text:
        return _last_frame
    payload = text.encode()
    size = len(payload)
    if size < 126:
        head = bytes((_TEXT_FIN, size))
    elif size < 65536:
        head = struct.pack("!BBH", _TEXT_FIN, 126, size)
    else:
        head = struct.pack("!BBQ", _TEXT_FIN, 127, size)
    _last_text, _last_frame = text, head + payload
    return _last_frame


_LINGER_ZERO = struct.pack("ii", 1, 0)


def reset_transport(transport: Any) -> None:
    """Drop the socket at once, without a close handshake: for a peer that never takes the
    close frame. asyncio's ``abort()`` alone leaves the kernel holding the socket, and the
    bytes the peer never read, for minutes while it retries; a zero linger time sends a
    reset and frees it now. The protocol then sees the connection lost, as on any drop."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    transport.abort()


def _refusal(exc: BaseException) -> bytes:
    if isinstance(exc, RequestLineTooLong):
        status, detail = HTTPStatus.REQUEST_URI_TOO_LONG, "Request line too long (8 KiB at most)"
    elif isinstance(exc, HeaderLineTooLong | TooManyHeaders):
        status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
        detail = "Header fields too large (8 KiB per line, 128 lines at most)"
    else:
        status, detail = HTTPStatus.BAD_REQUEST, "Not a valid HTTP request"
    body = json.dumps({"detail": detail, "code": ErrorCode.VALIDATION_ERROR.value}).encode()
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class WebSocketProtocol(WebSocketsSansIOProtocol):
    _on_writable: Callable[[], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One of each per open connection: the lean kinds allocate only while awaited.
        self.queue = Mailbox()  # type: ignore[assignment]
        self.writable = Flag(True)  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # The handshake's request and response are not read again (the scope has its own
            # copy of the headers). websockets' parser keeps the request for the connection's
            # life: emptied, its headers stop costing every collection of the oldest
            # generation a dict and a list per header.
            request = self.__dict__.pop("request", None)
            if request is not None:
                request.headers.clear()
            self.__dict__.pop("response", None)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if not self.close_sent:  # the scope exists, its task is created but not yet run
            self.scope["extensions"][WIRE_EXTENSION] = {"wire": self}

    # -- the Wire of a connection (realtime/connection.py)

    def frame(self, text: str) -> bytes:
        return text_frame(text)

    @property
    def paused(self) -> bool:
        """The transport's buffer is past its high-water mark: the peer is not reading."""
        return not self.writable.is_set()

    def when_writable(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, when the transport takes bytes again or is lost."""
        self._on_writable = callback

    def write_frames(self, frames: Sequence[bytes]) -> bool:
        """Write encoded frames in one go; False once the socket takes no more data frames
        (our close frame is out, or the socket is closing or gone)."""
        if self.close_sent or self.disconnected or self.transport.is_closing():
            return False
        self.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
        return True

    async def close_with(self, code: int, reason: str) -> None:
        """Send a close frame, as the ASGI ``websocket.close`` does."""
        await self.send({"type": "websocket.close", "code": code, "reason": reason})

    def reset(self) -> None:
        """The connection's ``abort``: the socket dropped without a close handshake."""
        reset_transport(self.transport)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._wake_writer()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._wake_writer()

    def _wake_writer(self) -> None:
        callback, self._on_writable = self._on_writable, None
        if callback is not None:
            callback()

    def handle_handshake_exception(self) -> None:
        # uvicorn answers with websockets' plain-text refusal: ours is the API's JSON body.
        exc = self.conn.handshake_exc
        if exc is None:
            return
        self.handshake_complete = True
        self.close_sent = True
        self.conn.data_to_send()  # websockets' own refusal, replaced by ours
        self.transport.write(_refusal(exc))
        self.transport.close()


def wire_of(scope: Any) -> WebSocketProtocol | None:
    """The protocol under an ASGI WebSocket scope, when the server runs ours (``__main__``)."""
    found = scope.get("extensions", {}).get(WIRE_EXTENSION)
    return found["wire"] if found else None


class AsgiSocket(Protocol):
    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class AsgiWire:
    """The wire under any other ASGI server (an in-process test server, say): one sender
    task awaits ``send_text`` frame by frame. It counts as paused while it has frames not yet
    sent, so the connection's outbox stays the bound."""

    def __init__(self, socket: AsgiSocket) -> None:
        self._socket = socket
        self._unsent: collections.deque[bytes] = collections.deque()
        self._sender: asyncio.Task[None] | None = None
        self._on_writable: Callable[[], None] | None = None
        self._failed = False

    def frame(self, text: str) -> bytes:
        return text.encode()

    @property
    def paused(self) -> bool:
        return bool(self._unsent)

    def when_writable(self, callback: Callable[[], None]) -> None:
        self._on_writable = callback

    def write_frames(self, frames: Sequence[bytes]) -> bool:
        if self._failed:
            return False
        self._unsent.extend(frames)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_all())
        return True

    async def _send_all(self) -> None:
        try:
            while self._unsent:
                await self._socket.send_text(self._unsent[0].decode())
                self._unsent.popleft()
        except Exception:
            self._failed = True
            self._unsent.clear()
        callback, self._on_writable = self._on_writable, None
        if callback is not None:
            callback()

    async def close_with(self, code: int, reason: str) -> None:
        if self._sender is not None:
            self._sender.cancel()
        await self._socket.close(code, reason)
