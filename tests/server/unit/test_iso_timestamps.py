"""``iso`` formats an instant exactly as ``datetime.isoformat`` does, from its cached second or
not: microseconds only when not zero, ``+00:00``, any year datetime supports."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from token_bowl_chat_server.domain.entities import iso

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _reference(micros: int) -> str:
    return (_EPOCH + timedelta(microseconds=micros)).isoformat()


def test_iso_matches_datetime_in_and_across_seconds() -> None:
    rng = random.Random(11)
    lowest = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
    highest = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // timedelta(
        microseconds=1
    )
    instants = [0, 1, -1, 999_999, 1_000_000, -1_000_000, lowest, highest]
    now = 1_796_000_000_000_000
    instants += [now + step for step in (0, 1, 10, 999_999, 1_000_000, 1_000_001)]
    instants += [rng.randint(lowest, highest) for _ in range(2000)]
    instants += [now + rng.randint(0, 3_000_000) for _ in range(2000)]  # mostly cached seconds
    for micros in instants:
        assert iso(micros) == _reference(micros), micros


def test_an_instant_datetime_cannot_hold_fails_as_before() -> None:
    with pytest.raises(OverflowError):
        iso(10**20)
