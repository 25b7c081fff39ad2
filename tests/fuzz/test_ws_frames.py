"""Guarantee 8 over WebSocket, attacked by hypothesis: any frame gets a clear answer, and the
connection it came on keeps working.

After every generated frame a ``get_unread_count`` probe follows on the same connection. The
properties: the server never closes the connection (except as the protocol prescribes: 1007
for a text frame that is not UTF-8), the probe is answered, matched by ``request_id``, every
error frame has the documented shape and a stable code (never ``internal_error``), a frame
that must be refused gets exactly one error with the expected code echoing its
``request_id``, and the server logs no traceback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import LiveServer
from tests.fuzz.conftest import FUZZ, TALLY, cases
from tests.fuzz.harness import (
    REPLY_TIMEOUT,
    Exchange,
    WsHarness,
    check_error_body,
    check_error_frame,
)
from tests.fuzz.strategies import (
    INVALID_FRAME,
    INVALID_JSON,
    NUMBER_TOKENS,
    UNKNOWN_TYPE,
    Frame,
    edge_text,
    url_text,
    ws_frames,
)

RID = "fz"  # the request_id generated frames carry; the probe uses fresh ones


@pytest.fixture
def attacker(live_server: LiveServer) -> Iterator[WsHarness]:
    account = live_server.register(username=live_server.unique("fuzzws"))
    harness = WsHarness(live_server, account.api_key)
    try:
        yield harness
    finally:
        harness.close()


def check_exchange(frame: Frame, outcome: Exchange) -> None:
    assert outcome.closed is None, f"connection closed with {outcome.closed} after {frame!r}"
    probe = outcome.probe_reply
    assert probe is not None and probe["type"] == "unread_count", (frame, outcome.frames)
    for reply in outcome.before_probe:
        if reply.get("type") == "error":
            check_error_frame(reply)
    replies = [f for f in outcome.before_probe if f.get("request_id") not in (None, probe)]
    if frame.echo is not None:
        assert all(f["request_id"] == frame.echo for f in replies), replies
        assert len(replies) <= 1, replies
    if frame.expect:
        errors = [f for f in outcome.before_probe if f.get("type") == "error"]
        assert len(errors) == 1, (frame, outcome.before_probe)
        assert errors[0]["code"] in frame.expect, (frame, errors[0])
        assert errors[0].get("request_id") == frame.echo, (frame, errors[0])


def server_log_since(server: LiveServer, offset: int) -> str:
    return server.proc.log()[offset:]


def test_generated_frames_get_clear_answers_on_a_connection_that_stays_usable(
    live_server: LiveServer, attacker: WsHarness
) -> None:
    log_start = len(live_server.proc.log())

    @settings(FUZZ, max_examples=cases(300))
    @given(frame=ws_frames(RID))
    # Known classes, kept as explicit cases: lone surrogates in request_id, type and ids
    # that end up in the error text; nesting past the decoder's recursion limit; numbers
    # beyond any column.
    @example(frame=Frame('{"type": "ping", "request_id": "\\ud800"}'))
    @example(frame=Frame('{"type": "\\ud800", "request_id": "fz"}', UNKNOWN_TYPE, "fz"))
    @example(frame=Frame('{"type": "mark_read", "request_id": "fz", "message_id": "\\udfff"}'))
    @example(frame=Frame('"\\ud800"', INVALID_FRAME))
    @example(frame=Frame("[" * 1000 + "]" * 1000, INVALID_JSON | INVALID_FRAME))
    @example(
        frame=Frame('{"type": "get_messages", "request_id": "fz", "offset": ' + "9" * 4000 + "}")
    )
    @example(
        frame=Frame(
            '{"type": "get_messages", "request_id": "fz", "limit": 1e400}', INVALID_FRAME, "fz"
        )
    )
    def attack(frame: Frame) -> None:
        failed = True
        try:
            check_exchange(frame, attacker.exchange(frame.payload))
            failed = False
        finally:
            TALLY.record("ws frames", failed)

    attack()
    print(TALLY.line("ws frames"), f"({attacker.connects} connection(s))")
    log = server_log_since(live_server, log_start)
    assert "Traceback" not in log and " ERROR " not in log, log[-5000:]


def test_bursts_of_generated_frames_are_answered_in_order(
    live_server: LiveServer, attacker: WsHarness
) -> None:
    """Several hostile frames back to back, no waiting in between (the read loop must take
    them one at a time): every error well formed, then the probe's reply, on an open
    connection."""

    @settings(FUZZ, max_examples=cases(40))
    @given(frames=st.lists(ws_frames(RID), min_size=2, max_size=6))
    def attack(frames: list[Frame]) -> None:
        failed = True
        try:
            outcome = attacker.exchange(*(frame.payload for frame in frames))
            assert outcome.closed is None, f"closed with {outcome.closed} after {frames!r}"
            probe = outcome.probe_reply
            assert probe is not None and probe["type"] == "unread_count", outcome.frames
            for reply in outcome.before_probe:
                if reply.get("type") == "error":
                    check_error_frame(reply)
            failed = False
        finally:
            TALLY.record("ws frame bursts", failed)

    attack()
    print(TALLY.line("ws frame bursts"))


def test_text_frames_that_are_not_utf8_close_1007_and_nothing_else_breaks(
    live_server: LiveServer, attacker: WsHarness
) -> None:
    """RFC 6455 8.1: the server must fail a connection whose text frame is not UTF-8 (1007).
    That is the only close a bad frame may cause; a new connection works at once."""

    log_start = len(live_server.proc.log())

    @settings(FUZZ, max_examples=cases(8))
    @given(
        data=st.binary(min_size=1, max_size=64).filter(lambda b: not _is_utf8(b)),
    )
    @example(data=b"\xed\xa0\x80")  # a UTF-16 surrogate encoded as if it were UTF-8
    @example(data=b'{"type": "ping", "request_id": "\xff"}')
    def attack(data: bytes) -> None:
        failed = True
        try:
            assert attacker.send_invalid_utf8(data) == 1007
            after = attacker.exchange(json.dumps({"type": "ping", "request_id": RID}))
            assert after.closed is None and after.probe_reply is not None, after
            pongs = [f for f in after.before_probe if f.get("request_id") == RID]
            assert [f["type"] for f in pongs] == ["pong"], after.frames
            failed = False
        finally:
            TALLY.record("ws invalid utf-8", failed)

    attack()
    print(TALLY.line("ws invalid utf-8"))
    # A client's broken frame is not the server's error: no ERROR line, no traceback per frame
    # (uvicorn logged both, so any client could flood the log at will).
    log = live_server.proc.log()[log_start:]
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_generated_handshake_queries_upgrade_or_get_a_documented_4xx(
    live_server: LiveServer, attacker: WsHarness
) -> None:
    """``/ws`` query parameters (``since_seq``, ``protocol_version``, ``api_key``) with hostile
    values: the upgrade succeeds, or the handshake is refused with a 4xx and the documented
    error body; never a 5xx or a dropped connection."""

    log_start = len(live_server.proc.log())

    @settings(FUZZ, max_examples=cases(25))
    @given(
        params=st.dictionaries(
            st.sampled_from(["since_seq", "protocol_version", "api_key", "x"]),
            st.one_of(edge_text, st.sampled_from(NUMBER_TOKENS), st.integers().map(str)),
            max_size=3,
        ),
        keep_key=st.booleans(),
    )
    @example(params={"since_seq": "\u00b2"}, keep_key=True)
    @example(params={"since_seq": "9" * 5000}, keep_key=True)
    @example(params={"since_seq": "\u0661\u0662"}, keep_key=True)
    # Found by the long profile: a request line over 8 KiB got no answer at all
    @example(params={"since_seq": "1" * 4299, "protocol_version": "1" * 4299}, keep_key=False)
    def attack(params: dict[str, str], keep_key: bool) -> None:
        failed = True
        try:
            if keep_key:
                params = {**params, "api_key": attacker.api_key}
            query = "&".join(f"{url_text(k)}={url_text(v)}" for k, v in params.items())
            try:
                status, body = attacker.run(_handshake(f"{live_server.ws_url}?{query}"))
            except TimeoutError:
                # Say whether the whole server stalled or only this handshake did.
                raise AssertionError(
                    f"no handshake answer within {REPLY_TIMEOUT} s for {params!r}; "
                    f"{_health(live_server)}; server log tail:\n{live_server.proc.log()[-3000:]}"
                ) from None
            if status != 101:
                assert 400 <= status < 500, (params, status, body)
                check_error_body(status, json.loads(body))
            failed = False
        finally:
            TALLY.record("ws handshakes", failed)

    attack()
    print(TALLY.line("ws handshakes"))
    log = live_server.proc.log()[log_start:]
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]


async def _handshake(url: str) -> tuple[int, bytes]:
    """The handshake's status (101 once upgraded) and, when refused, the response body."""
    try:
        conn = await websockets.connect(url, open_timeout=REPLY_TIMEOUT)
    except websockets.InvalidStatus as exc:
        return exc.response.status_code, exc.response.body or b""
    await conn.close()
    return 101, b""


def _health(server: LiveServer) -> str:
    started = time.monotonic()
    try:
        status = httpx.get(f"{server.http_url}/health", timeout=10).status_code
    except httpx.HTTPError as exc:
        return f"GET /health failed: {exc!r}"
    return f"GET /health answered {status} in {time.monotonic() - started:.2f} s"
