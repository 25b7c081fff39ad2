"""The WebSocket client's pure bookkeeping."""

from __future__ import annotations

import asyncio
import random

import pytest

from token_bowl_chat import exceptions as exc
from token_bowl_chat._ws_state import (
    Pending,
    PendingRequests,
    RecentIds,
    TypingState,
    backoff_delay,
    error_from_frame,
    websocket_url,
)


@pytest.mark.parametrize(
    ("base", "since", "url"),
    [
        ("http://h:1", None, "ws://h:1/ws"),
        ("https://h/", None, "wss://h/ws"),
        ("ws://h:1/ws", 5, "ws://h:1/ws?since_seq=5"),
        ("https://h/prefix", 0, "wss://h/prefix/ws?since_seq=0"),
    ],
)
def test_websocket_url(base: str, since: int | None, url: str) -> None:
    assert websocket_url(base, since) == url


def test_websocket_url_rejects_other_schemes() -> None:
    with pytest.raises(ValueError):
        websocket_url("ftp://h")


def test_backoff_grows_with_jitter_and_caps() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, 0.5, 8.0, rng) for n in range(8)]
    for n, delay in enumerate(delays):
        ceiling = min(8.0, 0.5 * 2**n)
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)


async def test_pending_matches_by_id_else_oldest_first() -> None:
    loop = asyncio.get_running_loop()
    table = PendingRequests()
    futures = [loop.create_future() for _ in range(3)]
    for i, future in enumerate(futures):
        table.add(Pending(f"c{i}", {}, future, resend=True))
    assert table.resolve({"type": "x", "request_id": "c2"}, in_order=False)
    assert futures[2].result()["request_id"] == "c2"
    assert not table.resolve({"type": "a push"}, in_order=False)  # our server: not a reply
    assert table.resolve({"type": "upstream reply"}, in_order=True)  # no id: the oldest
    assert futures[0].done() and not futures[1].done()
    assert not table.resolve({"type": "y", "request_id": "unknown"}, in_order=False)
    table.fail_all(exc.NetworkError("gone"))
    with pytest.raises(exc.NetworkError):
        futures[1].result()
    assert len(table) == 0


def test_recent_ids_drop_repeats_within_the_window() -> None:
    recent = RecentIds(size=2)
    assert recent.first_time("a") and recent.first_time("b")
    assert not recent.first_time("a")
    assert recent.first_time("c")  # "a" falls out of the window
    assert recent.first_time("a")


def test_typing_state_expires_and_stops() -> None:
    state = TypingState(timeout=5.0)
    assert state.start(("ann", None), now=0.0)
    assert not state.start(("ann", None), now=3.0)  # renewal
    state.start(("bob", "me"), now=1.0)
    assert state.users() == {"ann", "bob"}
    assert state.expire(now=6.5) == [("bob", "me")]
    assert state.stop_typist("ann", None) == [("ann", None)]
    assert state.users() == frozenset() and state.next_deadline() is None


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("user_not_found", exc.NotFoundError),
        ("permission_denied", exc.PermissionDeniedError),
        ("rate_limited", exc.RateLimitError),
        ("missing_field", exc.ValidationError),
        ("recipient_is_viewer", exc.BadRequestError),
        ("internal_error", exc.ServerError),
        (None, exc.TokenBowlError),
    ],
)
def test_error_frames_map_to_exceptions(code: str | None, cls: type[Exception]) -> None:
    frame = {"type": "error", "error": "text"}
    if code is not None:
        frame["code"] = code
    error = error_from_frame(frame)
    assert type(error) is cls and str(error) == "text"
