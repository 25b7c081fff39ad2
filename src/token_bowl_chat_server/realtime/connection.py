"""One WebSocket connection: a bounded outbox and the only task that awaits the socket."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
from collections.abc import Callable
from typing import Protocol

from token_bowl_chat.protocol.close_codes import CloseCode
from token_bowl_chat_server.domain.entities import User

logger = logging.getLogger(__name__)

_ids = itertools.count(1)

# How long a close handshake may take before the transport is cut off (default).
CLOSE_TIMEOUT = 5.0

# Close code recorded when the peer went away without a close handshake (RFC 6455 7.1.5).
_ABNORMAL = 1006


class Transport(Protocol):
    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class ConnectionClosed(Exception):
    """The connection was closed (by either side) while a replay was feeding it."""


class Connection:
    """Frames are queued with :meth:`push`, which never blocks; a writer task sends them.

    When the outbox is full the client is too slow to keep up: it is closed with
    ``SLOW_CONSUMER`` (4001) and may reconnect and resume, while everyone else carries on.

    While a resuming connection replays history (:meth:`begin_replay`), live frames are held
    back and released after it by :meth:`end_replay`, minus the messages the replay already
    sent, so the client sees every message once and in ``seq`` order.

    Every close ends within a bounded time, whatever the peer does: a server-side close waits
    at most ``close_timeout`` for the socket to take the close frame, then ``abort`` cuts the
    socket off (a peer that never reads would otherwise hold it, and everything hanging off
    it, forever). :attr:`ended` is set once the connection is finished with: the endpoint
    stops waiting for the peer then, and frees the connection.
    """

    def __init__(
        self,
        transport: Transport,
        user: User,
        outbox_size: int,
        now: float,
        extended: bool = False,
        *,
        close_timeout: float = CLOSE_TIMEOUT,
        abort: Callable[[], None] | None = None,
    ) -> None:
        self.id = next(_ids)
        # Asked for the extended protocol (``?protocol_version=1.1``): gets extension frames.
        self.extended = extended
        # Asked for copies of its user's own messages (``?own_messages=1``, extended only).
        self.own_messages = False
        self.transport = transport
        self.user = user
        self.connected_at = now
        self.last_activity = now
        self.last_pong = now
        self.close_code: int | None = None
        self._outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=outbox_size)
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._held: collections.deque[tuple[int | None, str]] | None = None
        self._held_limit = outbox_size
        # Messages up to here were sent by the replay; their live copies are dropped.
        self._replayed_through = 0
        self._close_timeout = close_timeout
        self._abort = abort
        # Set when the connection is finished with: closed by the server (its close frame
        # still on the way) or lost by the writer.
        self.ended = asyncio.Event()

    @property
    def user_id(self) -> str:
        return self.user.id

    @property
    def is_open(self) -> bool:
        return self.close_code is None

    @property
    def queued(self) -> int:
        """Frames waiting to be sent: the outbox plus live frames held back by a replay."""
        return self._outbox.qsize() + len(self._held or ())

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.id}")

    def push(self, text: str, seq: int | None = None) -> bool:
        """Queue a frame (``seq``: the message it carries, if any).

        Returns False when the connection is closed or was just overflowed.
        """
        if self.close_code is not None:
            return False
        if seq is not None and seq <= self._replayed_through:
            return True  # already replayed (published only after the replay read it)
        if self._held is not None:
            if len(self._held) >= self._held_limit:
                return self._overflow()
            self._held.append((seq, text))
            return True
        try:
            self._outbox.put_nowait(text)
        except asyncio.QueueFull:
            return self._overflow()
        return True

    def _overflow(self) -> bool:
        logger.warning("closing slow consumer connection=%s user=%s", self.id, self.user_id)
        self.close(CloseCode.SLOW_CONSUMER, "outbox overflow: reconnect and resume")
        return False

    def begin_replay(self) -> None:
        """Hold live frames back until :meth:`end_replay`."""
        self._held = collections.deque()

    async def replay(self, text: str) -> None:
        """Queue a replayed frame, waiting for room: a replay is paced by the client.

        Raises :class:`ConnectionClosed` once the connection is closed, so a replay to a
        client that left stops instead of waiting for room nobody will make.
        """
        if self.close_code is not None:
            raise ConnectionClosed
        await self._outbox.put(text)
        if self.close_code is not None:
            raise ConnectionClosed

    async def end_replay(self, replayed_through: int, final: str | None = None) -> None:
        """Release the held live frames, except messages with ``seq <= replayed_through``
        (live copies of those that come later are dropped too), then ``final``; then go live.

        Waits for room like :meth:`replay` (the outbox may still be full of replayed frames),
        holding back frames that arrive meanwhile, so none overtakes an older one. Raises
        :class:`ConnectionClosed` once the connection is closed.
        """
        self._replayed_through = replayed_through
        while True:
            if self.close_code is not None:
                raise ConnectionClosed
            held = self._held
            if held:
                seq, text = held.popleft()
                if seq is None or seq > replayed_through:
                    await self.replay(text)
            elif final is not None:
                text, final = final, None
                await self.replay(text)
            else:
                self._held = None
                return

    def close(self, code: int, reason: str = "") -> None:
        """Close from the server side. Idempotent; frames still queued are dropped."""
        if self.close_code is not None:
            return
        self.close_code = code
        if self._writer is not None:
            self._writer.cancel()
        self._discard_queued()
        self._closer = asyncio.create_task(
            self._close_transport(code, reason), name=f"ws-close-{self.id}"
        )
        # Done with at once: the endpoint frees the connection and its presence now, and
        # waits (in finish) only for the close frame, which takes at most the close timeout.
        self.ended.set()

    def _discard_queued(self) -> None:
        # Unblocks a replay waiting for room in the outbox; these frames will not be sent.
        while not self._outbox.empty():
            self._outbox.get_nowait()
        self._held = None

    async def _close_transport(self, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(self._close_timeout):
                await self.transport.close(code, reason)
        except TimeoutError:
            # The socket takes no more bytes (a peer that stopped reading): cut it off.
            logger.info("aborting connection=%s: close frame not taken", self.id)
            self._cut_off()
        except Exception:
            logger.debug("close failed on connection %s", self.id, exc_info=True)
            self._cut_off()
        else:
            # The close frame is out; a peer that never answers it is cut off later.
            asyncio.get_running_loop().call_later(self._close_timeout, self._cut_off)
        finally:
            self.ended.set()

    def _cut_off(self) -> None:
        """Drop the socket without a handshake. Harmless on a socket that is already gone."""
        if self._abort is not None:
            with contextlib.suppress(Exception):
                self._abort()

    async def _write_loop(self) -> None:
        try:
            while True:
                text = await self._outbox.get()
                await self.transport.send_text(text)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The peer went away mid-send. Nothing will drain the outbox now: end the
            # connection, so a replay waiting for room and the endpoint both stop waiting.
            logger.debug("send failed on connection %s", self.id, exc_info=True)
            self.close_code = self.close_code or _ABNORMAL
            self._discard_queued()
            self._cut_off()
            self.ended.set()

    async def finish(self) -> None:
        """Stop the writer after the read loop ended (client closed or socket dropped)."""
        if self.close_code is None:
            self.close_code = CloseCode.NORMAL
        self._discard_queued()
        self.ended.set()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        if self._closer is not None:
            # Let a server-side close send its close frame (bounded by the close timeout):
            # once the endpoint returns, the server drops the socket without one.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._closer

    def touch(self, now: float) -> None:
        self.last_activity = now
