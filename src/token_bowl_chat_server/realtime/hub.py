"""The connections on this node, and delivery of encoded frames to them.

Delivery never awaits a socket: it puts the same encoded frame on each target connection's
outbox and returns. Each connection writes its outbox to its socket once per event-loop turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from token_bowl_chat.protocol.close_codes import CloseCode
from token_bowl_chat.protocol.events import Ping, encode_event
from token_bowl_chat_server.domain.entities import User, iso
from token_bowl_chat_server.domain.presence import Presence
from token_bowl_chat_server.realtime.admission import ConnectionCaps
from token_bowl_chat_server.realtime.audience import Audience, Dialect, OwnCopies, Room, Users
from token_bowl_chat_server.realtime.connection import Connection

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


class Hub:
    def __init__(self, clock: Clock = time.monotonic, caps: ConnectionCaps | None = None) -> None:
        self.clock = clock
        # Slots for connections being opened or open, taken before the upgrade.
        self.caps = caps or ConnectionCaps()
        self._connections: dict[int, Connection] = {}
        self._by_user: dict[str, dict[int, Connection]] = {}
        self.presence = Presence()
        self.slow_consumer_closes = 0
        self.frames_delivered = 0

    def add(self, conn: Connection) -> bool:
        """Register a connection. Returns True when its user just came online."""
        self._connections[conn.id] = conn
        self._by_user.setdefault(conn.user_id, {})[conn.id] = conn
        return self.presence.connect(conn.user_id)

    def remove(self, conn: Connection) -> bool:
        """Deregister. Returns True when its user just went offline."""
        if self._connections.pop(conn.id, None) is None:
            return False
        mine = self._by_user.get(conn.user_id)
        if mine is not None:
            mine.pop(conn.id, None)
            if not mine:
                del self._by_user[conn.user_id]
        return self.presence.disconnect(conn.user_id)

    def deliver(self, audience: Audience, text: str, seq: int | None = None) -> None:
        """Queue ``text`` for every connection in the audience on this node.

        ``seq`` is the message the frame carries, if any (a resuming connection needs it).
        """
        if isinstance(audience, Room):
            targets = [
                conn
                for conn in self._connections.values()
                if conn.user_id != audience.exclude_user_id
            ]
        elif isinstance(audience, Users):
            targets = [
                conn
                for user_id in audience.user_ids
                for conn in self._by_user.get(user_id, {}).values()
            ]
        elif isinstance(audience, OwnCopies):
            mine = self._by_user.get(audience.user_id, {}).values()
            targets = [conn for conn in mine if conn.own_messages]
        if audience.dialect is not Dialect.ANY:
            targets = [conn for conn in targets if audience.dialect.admits(conn.extended)]
        for conn in targets:
            was_open = conn.is_open
            if conn.push(text, seq):
                self.frames_delivered += 1
            elif was_open and conn.close_code == CloseCode.SLOW_CONSUMER:
                self.slow_consumer_closes += 1

    def connections_of(self, user_id: str) -> list[Connection]:
        return list(self._by_user.get(user_id, {}).values())

    def all_connections(self) -> list[Connection]:
        return list(self._connections.values())

    def online_user_ids(self) -> list[str]:
        return self.presence.online()

    def close_user(self, user_id: str, code: int, reason: str) -> None:
        for conn in self.connections_of(user_id):
            conn.close(code, reason)

    def refresh(self, user: User) -> None:
        """The account changed (name, role): open connections act as the new record."""
        for conn in self.connections_of(user.id):
            conn.user = user

    def heartbeat_tick(self, stale_after: float, wall_micros: int) -> None:
        """Ping live connections; close those silent for longer than ``stale_after`` seconds."""
        now = self.clock()
        ping = encode_event(Ping(timestamp=iso(wall_micros)))
        for conn in self.all_connections():
            if now - conn.last_activity > stale_after:
                logger.info("closing stale connection=%s user=%s", conn.id, conn.user_id)
                conn.close(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
            else:
                conn.push(ping)

    async def run_heartbeat(self, interval: float, stale_after: float, wall: Clock) -> None:
        while True:
            await asyncio.sleep(interval)
            self.heartbeat_tick(stale_after, int(wall() * 1_000_000))

    def close_all(self, code: int, reason: str) -> None:
        for conn in self.all_connections():
            conn.close(code, reason)
