"""Bookkeeping for fault tests: what was sent, acknowledged, stored and delivered to each
receiving SDK's ``on_message``, and the one line every fault test prints.

"lost": acknowledged or stored, and meant for a receiver, but never delivered to its
``on_message``. "duplicated": delivered to one receiver more than once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tests.conftest import LiveServer
from tests.e2e.test_guarantees import history_ids
from tests.waiting import eventually
from token_bowl_chat import NetworkError, ServerError, TokenBowlWebSocket
from token_bowl_chat.models import MessageResponse


@dataclass
class Receiver:
    """One receiving SDK's view: how often each message id reached ``on_message``."""

    username: str
    counts: Counter[str] = field(default_factory=Counter)

    def on_message(self, message: MessageResponse) -> None:
        self.counts[message.id] += 1


@dataclass
class Ledger:
    sent: set[str] = field(default_factory=set)  # client_message_ids tried
    acked: dict[str, str] = field(default_factory=dict)  # client_message_id -> message id
    refused: Counter[str] = field(default_factory=Counter)  # error code -> sends refused
    # message id -> usernames it was addressed to (None: the room, everyone but the sender)
    to: dict[str, str | None] = field(default_factory=dict)
    senders: dict[str, str] = field(default_factory=dict)  # message id -> sender username
    receivers: list[Receiver] = field(default_factory=list)

    def receiver(self, username: str) -> Receiver:
        receiver = Receiver(username)
        self.receivers.append(receiver)
        return receiver

    def expected_by(self, receiver: Receiver, ids: Iterable[str]) -> set[str]:
        return {
            message_id
            for message_id in ids
            if self.senders.get(message_id) != receiver.username
            and self.to.get(message_id) in (None, receiver.username)
        }

    async def send(
        self,
        ws: TokenBowlWebSocket,
        sender: str,
        client_id: str,
        to_username: str | None = None,
        deadline: float = 60.0,
        content: str | None = None,
    ) -> None:
        """Send ``content`` (default: the client id) until acknowledged, retrying with the
        same client id (stored once) through reconnects, timeouts and refusals of an
        unavailable server, for up to ``deadline`` seconds."""
        self.sent.add(client_id)
        give_up = time.monotonic() + deadline
        while True:
            try:
                stored = await ws.send_message(
                    content or client_id, to_username, client_message_id=client_id
                )
            except (NetworkError, ServerError) as exc:  # TimeoutError is a NetworkError
                self.refused[exc.code or type(exc).__name__] += 1
                if time.monotonic() > give_up:
                    raise
                await asyncio.sleep(0.05)
                continue
            self.acked[client_id] = stored.id
            self.to[stored.id] = to_username
            self.senders[stored.id] = sender
            return

    async def wait_delivered(self, timeout: float = 60.0) -> None:
        """Until every receiver has had every acknowledged message meant for it."""

        def complete() -> bool:
            return all(
                self.expected_by(r, self.acked.values()) <= r.counts.keys() for r in self.receivers
            )

        await eventually(complete, timeout, f"deliveries missing: {self.summary(None)}")

    def stored_ids(self, server: LiveServer, api_key: str, dm_keys: Iterable[str] = ()) -> set[str]:
        """Every message in the room history, plus the DMs visible to the ``dm_keys`` users."""
        ids = history_ids(server, api_key)
        for key in dm_keys:
            # Every page: a user's DMs passed the first 1,000 in a fast run, and the rest
            # looked "acknowledged but not stored".
            ids |= history_ids(server, key, "/messages/direct")
        return ids

    def lost(self, stored: set[str] | None) -> int:
        known = set(self.acked.values()) | (stored or set())
        return sum(len(self.expected_by(r, known) - r.counts.keys()) for r in self.receivers)

    def duplicated(self) -> int:
        return sum(n - 1 for r in self.receivers for n in r.counts.values() if n > 1)

    def summary(self, stored: set[str] | None) -> str:
        delivered = sum(len(r.counts) for r in self.receivers)
        return (
            f"sent {len(self.sent)} / acknowledged {len(self.acked)} / "
            f"stored {'?' if stored is None else len(stored)} / delivered {delivered} / "
            f"lost {self.lost(stored)} / duplicated {self.duplicated()}"
        )

    def report(self, name: str, stored: set[str]) -> None:
        """Print the fault's line, then hold the guarantees: nothing lost, nothing twice,
        and everything acknowledged is stored."""
        refused = f" (refused and retried: {dict(self.refused)})" if self.refused else ""
        print(f"\n{name}: {self.summary(stored)}{refused}")
        assert set(self.acked.values()) <= stored, "acknowledged but not stored"
        assert self.lost(stored) == 0
        assert self.duplicated() == 0


def sdk(
    base_url: str, api_key: str, on_message: Callable[[MessageResponse], None] | None = None
) -> TokenBowlWebSocket:
    """The SDK as a fault test drives it: fast retries, never giving up."""
    return TokenBowlWebSocket(
        api_key=api_key,
        base_url=base_url,
        on_message=on_message,
        reconnect_initial_delay=0.05,
        reconnect_max_delay=0.5,
        request_timeout=15.0,
    )
