"""The WebSocket client's pure bookkeeping."""

from __future__ import annotations

import asyncio
import random

import pytest

from token_bowl_chat import exceptions as exc
from token_bowl_chat._ws_state import (
    _ERRORS_BY_CODE,
    OwnMessages,
    Pending,
    PendingRequests,
    RecentIds,
    TypingState,
    backoff_delay,
    error_from_frame,
    websocket_url,
)
from token_bowl_chat.protocol.errors import ErrorCode


@pytest.mark.parametrize(
    ("base", "since", "url"),
    [
        ("http://h:1", None, "ws://h:1/ws?protocol_version=1.1"),
        ("https://h/", None, "wss://h/ws?protocol_version=1.1"),
        ("ws://h:1/ws", 5, "ws://h:1/ws?protocol_version=1.1&since_seq=5"),
        ("https://h/prefix", 0, "wss://h/prefix/ws?protocol_version=1.1&since_seq=0"),
    ],
)
def test_websocket_url(base: str, since: int | None, url: str) -> None:
    """Every connection asks for the extended protocol (else our server sends no hello and
    no resume frames); the key travels in a header, never in the logged URL."""
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
        ("storage_unavailable", exc.ServerError),
        ("invalid_frame", exc.ValidationError),
        ("too_many_connections", exc.RateLimitError),
        ("a_code_from_a_newer_server", exc.TokenBowlError),
        (None, exc.TokenBowlError),
    ],
)
def test_error_frames_map_to_exceptions(code: str | None, cls: type[Exception]) -> None:
    frame = {"type": "error", "error": "text"}
    if code is not None:
        frame["code"] = code
    error = error_from_frame(frame)
    assert type(error) is cls and str(error) == "text"


def test_every_error_code_of_this_protocol_version_has_its_exception() -> None:
    """A code added to the protocol must be placed in the tree, not left to the fallback."""
    for code in ErrorCode:
        assert code.value in _ERRORS_BY_CODE, code


def test_a_bulk_receipt_covers_our_messages_in_its_scope_once() -> None:
    own = OwnMessages()
    own.add("r1", 1, None)
    own.add("d-bob", 2, "bob")
    own.add("d-eve", 3, "eve")
    own.add("r4", 4, None)
    own.add("r6", 6, None)
    assert own.first_report("r1", "bob")  # a single receipt came first
    assert own.read_up_to("bob", "room", 4, "r4") == ["r4"]  # r1 not again, r6 is newer
    assert own.read_up_to("bob", "room", 4, "r4") == []  # the same frame twice
    assert own.read_up_to("bob", "direct", 2, "d-bob") == ["d-bob"]  # not eve's DM
    assert own.read_up_to("eve", "all", 6, "r6") == ["r1", "d-eve", "r4", "r6"]
    # A message sent from another device is unknown here, but the frame names the newest.
    assert own.read_up_to("bob", "room", 9, "elsewhere") == ["r6", "elsewhere"]


def test_own_messages_stay_bounded_and_ordered() -> None:
    own = OwnMessages(size=3)
    for seq in (5, 3, 4, 1, 2, 9, 8, 7, 6):  # replies may come back out of order
        own.add(f"m{seq}", seq, None)
    own.add("m9", 9, None)  # a resent send: no second entry
    covered = own.read_up_to("bob", "room", 9, "m9")
    assert covered == sorted(covered, key=lambda mid: int(mid[1:]))
    assert "m9" in covered and len(covered) <= 6
