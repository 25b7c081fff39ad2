"""One WebSocket connection: a bounded outbox and the only task that awaits the socket."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import Protocol

from token_bowl_chat.protocol.close_codes import CloseCode
from token_bowl_chat_server.domain.entities import User

logger = logging.getLogger(__name__)

_ids = itertools.count(1)

# How long a close handshake may take before the transport is abandoned.
_CLOSE_TIMEOUT = 5.0


class Transport(Protocol):
    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class Connection:
    """Frames are queued with :meth:`push`, which never blocks; a writer task sends them.

    When the outbox is full the client is too slow to keep up: it is closed with
    ``SLOW_CONSUMER`` (4001) and may reconnect and resume, while everyone else carries on.
    """

    def __init__(
        self,
        transport: Transport,
        user: User,
        outbox_size: int,
        now: float,
    ) -> None:
        self.id = next(_ids)
        self.transport = transport
        self.user = user
        self.connected_at = now
        self.last_activity = now
        self.last_pong = now
        self.close_code: int | None = None
        self._outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=outbox_size)
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()

    @property
    def user_id(self) -> str:
        return self.user.id

    @property
    def is_open(self) -> bool:
        return self.close_code is None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.id}")

    def push(self, text: str) -> bool:
        """Queue a frame. Returns False when the connection is closed or was just overflowed."""
        if self.close_code is not None:
            return False
        try:
            self._outbox.put_nowait(text)
        except asyncio.QueueFull:
            logger.warning("closing slow consumer connection=%s user=%s", self.id, self.user_id)
            self.close(CloseCode.SLOW_CONSUMER, "outbox overflow: reconnect and resume")
            return False
        return True

    def close(self, code: int, reason: str = "") -> None:
        """Close from the server side. Idempotent; frames still queued are dropped."""
        if self.close_code is not None:
            return
        self.close_code = code
        if self._writer is not None:
            self._writer.cancel()
        self._closer = asyncio.create_task(
            self._close_transport(code, reason), name=f"ws-close-{self.id}"
        )

    async def _close_transport(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await self.transport.close(code, reason)
        self._closed.set()

    async def _write_loop(self) -> None:
        try:
            while True:
                text = await self._outbox.get()
                await self.transport.send_text(text)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The peer went away mid-send; the read loop sees the disconnect and cleans up.
            logger.debug("send failed on connection %s", self.id, exc_info=True)
            self.close_code = self.close_code or 1006

    async def finish(self) -> None:
        """Stop the writer after the read loop ended (client closed or socket dropped)."""
        if self.close_code is None:
            self.close_code = CloseCode.NORMAL
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer

    def touch(self, now: float) -> None:
        self.last_activity = now
