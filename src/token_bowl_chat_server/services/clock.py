"""Wall-clock time, injectable so tests can move it."""

from __future__ import annotations

import time
from collections.abc import Callable

WallClock = Callable[[], int]


def now_micros() -> int:
    """Microseconds since the epoch, UTC."""
    return time.time_ns() // 1000
