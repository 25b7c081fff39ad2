"""The inbound budget of one WebSocket connection, as a pure function of the time passed in.

Every frame a client sends costs the server a decode and a handler call, whether or not it
gets a reply, so every frame takes a token: ``burst`` at once, refilled at ``rate`` per
second. A frame without a token is refused (the caller answers it with an error frame). A
client that keeps sending into refusals is not backing off, and it is cut off once it has
been refused more than ``burst`` times; refusals are forgiven at a tenth of ``rate``, so a
client that overshoots now and then is never cut off, and the error frames a connection can
cause stay bounded.
"""

from __future__ import annotations

from enum import Enum

# Refusals are forgiven at this fraction of the frame rate.
FORGIVE_FRACTION = 0.1


class Verdict(Enum):
    ACCEPT = "accept"  # process the frame
    REFUSE = "refuse"  # do not process it; answer with a rate_limited error
    CLOSE = "close"  # do not process it; close the connection (sustained abuse)


class FrameBudget:
    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._strikes = 0.0  # refusals not yet forgiven
        self._updated = now

    def admit(self, now: float) -> Verdict:
        """Charge one inbound frame arriving at ``now`` (seconds, monotonic)."""
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._strikes = max(0.0, self._strikes - elapsed * self.rate * FORGIVE_FRACTION)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return Verdict.ACCEPT
        self._strikes += 1.0
        return Verdict.CLOSE if self._strikes > self.burst else Verdict.REFUSE

    def retry_after(self) -> float:
        """Seconds until the next frame would be accepted."""
        return max(0.0, (1.0 - self._tokens) / self.rate)
