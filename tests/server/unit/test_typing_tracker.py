"""Typing transitions, driven by a moved clock instead of sleeps."""

from __future__ import annotations

from token_bowl_chat_server.domain.typing import TypingTracker

ROOM = ("alice", None)
DM = ("alice", "bob")


def test_first_frame_relays_and_renewals_are_throttled() -> None:
    tracker = TypingTracker(timeout=5.0, relay_interval=2.0)
    assert tracker.start(ROOM, connection_id=1, now=0.0)
    assert not tracker.start(ROOM, connection_id=1, now=1.0)
    assert tracker.start(ROOM, connection_id=1, now=2.5)


def test_indicator_expires_unless_renewed() -> None:
    tracker = TypingTracker(timeout=5.0, relay_interval=2.0)
    tracker.start(ROOM, 1, now=0.0)
    tracker.start(ROOM, 1, now=4.0)  # renewal pushes expiry to 9.0
    assert tracker.expire(now=8.9) == []
    assert tracker.next_deadline() == 9.0
    assert tracker.expire(now=9.0) == [ROOM]
    assert not tracker.is_typing(ROOM)
    assert tracker.next_deadline() is None


def test_sending_stops_only_that_target() -> None:
    tracker = TypingTracker(timeout=5.0, relay_interval=2.0)
    tracker.start(ROOM, 1, now=0.0)
    tracker.start(DM, 1, now=0.0)
    assert tracker.stop(DM)
    assert not tracker.stop(DM)
    assert tracker.is_typing(ROOM)


def test_closing_a_connection_stops_what_it_started() -> None:
    tracker = TypingTracker(timeout=5.0, relay_interval=2.0)
    tracker.start(ROOM, 1, now=0.0)
    tracker.start(DM, 2, now=0.0)
    assert tracker.drop_connection(1) == [ROOM]
    assert tracker.is_typing(DM)
    assert tracker.drop_connection(1) == []
