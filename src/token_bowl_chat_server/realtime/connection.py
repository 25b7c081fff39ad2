"""One WebSocket connection: a bounded outbox, written to its socket without a task."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from token_bowl_chat.protocol.close_codes import CloseCode
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.realtime.lean_sync import Flag

logger = logging.getLogger(__name__)

_ids = itertools.count(1)

# How long a close handshake may take before the transport is cut off (default).
CLOSE_TIMEOUT = 5.0

# Close code recorded when the peer went away without a close handshake (RFC 6455 7.1.5).
_ABNORMAL = 1006


class Wire(Protocol):
    """The socket under a connection, written without awaiting (``ws_protocol.py``)."""

    def frame(self, text: str) -> bytes:
        """The wire bytes of a text frame carrying ``text``."""
        ...

    @property
    def paused(self) -> bool:
        """The socket takes no more bytes for now: the peer is behind."""
        ...

    def when_writable(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, when the socket takes bytes again (or is lost)."""
        ...

    def write_frames(self, frames: Sequence[bytes]) -> bool:
        """Hand frames to the socket; False once it takes no more (closing or gone)."""
        ...

    async def close_with(self, code: int, reason: str) -> None: ...


class ConnectionClosed(Exception):
    """The connection was closed (by either side) while a replay was feeding it."""


class Connection:
    """Frames are queued with :meth:`push`, which never blocks, and written to the socket
    together once per event-loop turn: one write, not one task wake-up and one write per
    frame. While the socket is paused (the peer is not reading) they wait in the outbox.

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

    # Thousands of idle connections each hold one: no per-instance dict.
    __slots__ = (
        "_abort",
        "_close_timeout",
        "_closer",
        "_flush_scheduled",
        "_held",
        "_held_limit",
        "_outbox",
        "_outbox_size",
        "_replayed_through",
        "_room",
        "close_code",
        "connected_at",
        "ended",
        "extended",
        "id",
        "last_activity",
        "last_pong",
        "own_messages",
        "user",
        "user_id",
        "wire",
    )

    def __init__(
        self,
        wire: Wire,
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
        self.wire = wire
        self.user = user
        # Read for every receiver of every fan-out: a plain attribute, not a property. The
        # account record may be replaced (rename, role), its id never.
        self.user_id = user.id
        self.connected_at = now
        self.last_activity = now
        self.last_pong = now
        self.close_code: int | None = None
        # Encoded frames not yet handed to the socket.
        self._outbox: list[bytes] = []
        self._outbox_size = outbox_size
        self._flush_scheduled = False
        # Set when the outbox was written out, for a replay waiting for room (made on need).
        self._room: Flag | None = None
        self._closer: asyncio.Task[None] | None = None
        self._held: collections.deque[tuple[int | None, str]] | None = None
        self._held_limit = outbox_size
        # Messages up to here were sent by the replay; their live copies are dropped.
        self._replayed_through = 0
        self._close_timeout = close_timeout
        self._abort = abort
        # Set when the connection is finished with: closed by the server (its close frame
        # still on the way) or its socket lost.
        self.ended = Flag()

    @property
    def is_open(self) -> bool:
        return self.close_code is None

    @property
    def queued(self) -> int:
        """Frames waiting to be sent: the outbox plus live frames held back by a replay."""
        return len(self._outbox) + len(self._held or ())

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
        if len(self._outbox) >= self._outbox_size:
            return self._overflow()
        self._outbox.append(self.wire.frame(text))
        if not self._flush_scheduled:
            self._schedule_flush()
        return True

    def _overflow(self) -> bool:
        logger.warning("closing slow consumer connection=%s user=%s", self.id, self.user_id)
        self.close(CloseCode.SLOW_CONSUMER, "outbox overflow: reconnect and resume")
        return False

    def _schedule_flush(self) -> None:
        # Once per loop turn: every frame queued meanwhile (a commit's messages, a reply)
        # goes out in the same write.
        self._flush_scheduled = True
        asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.close_code is not None or not self._outbox:
            return
        if self.wire.paused:
            # The frames wait in the outbox, which bounds them, until the peer reads again.
            self.wire.when_writable(self._schedule_flush)
            return
        frames, self._outbox = self._outbox, []
        if not self.wire.write_frames(frames):
            self._lost()
            return
        self._wake_replay()

    def _lost(self) -> None:
        # The peer went away. Nothing will drain the outbox now: end the connection, so a
        # replay waiting for room and the endpoint both stop waiting.
        logger.debug("socket of connection %s is gone", self.id)
        self.close_code = self.close_code or _ABNORMAL
        self._discard_queued()
        self._cut_off()
        self.ended.set()

    def begin_replay(self) -> None:
        """Hold live frames back until :meth:`end_replay`."""
        self._held = collections.deque()

    async def replay(self, text: str) -> None:
        """Queue a replayed frame, waiting for room: a replay is paced by the client.

        Raises :class:`ConnectionClosed` once the connection is closed, so a replay to a
        client that left stops instead of waiting for room nobody will make.
        """
        while True:
            if self.close_code is not None:
                raise ConnectionClosed
            if len(self._outbox) < self._outbox_size:
                break
            if self._room is None:
                self._room = Flag()
            self._room.clear()
            await self._room.wait()
        self._outbox.append(self.wire.frame(text))
        if not self._flush_scheduled:
            self._schedule_flush()

    def _wake_replay(self) -> None:
        if self._room is not None:
            self._room.set()

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
        self._discard_queued()
        self._closer = asyncio.create_task(
            self._close_transport(code, reason), name=f"ws-close-{self.id}"
        )
        # Done with at once: the endpoint frees the connection and its presence now, and
        # waits (in finish) only for the close frame, which takes at most the close timeout.
        self.ended.set()

    def _discard_queued(self) -> None:
        # Wakes a replay waiting for room in the outbox; these frames will not be sent.
        self._outbox = []
        self._held = None
        self._wake_replay()

    async def _close_transport(self, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(self._close_timeout):
                await self.wire.close_with(code, reason)
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

    async def finish(self) -> None:
        """Let a server-side close frame go out after the read loop ended (client closed
        or socket dropped)."""
        if self.close_code is None:
            self.close_code = CloseCode.NORMAL
        self._discard_queued()
        self.ended.set()
        if self._closer is not None:
            # Let a server-side close send its close frame (bounded by the close timeout):
            # once the endpoint returns, the server drops the socket without one.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._closer

    def touch(self, now: float) -> None:
        self.last_activity = now
