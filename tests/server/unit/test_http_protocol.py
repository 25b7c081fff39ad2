"""The HTTP protocol writes each response's head and body in one write, and never holds back
what must go out on its own: a "100 Continue", a HEAD response's head, the head of a
response the app abandons, each of several pipelined responses in order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from token_bowl_chat_server.http_protocol import MAX_PIPELINED, CoalescingHttpProtocol, Turn

ASGIApp = Any


class RecordingTransport(asyncio.Transport):
    """Records every write; the protocol under test sees nothing else of a socket."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _serve(app: ASGIApp, request: bytes, responses: int = 1) -> RecordingTransport:
    """Feed ``request`` to a fresh protocol and wait until ``responses`` have completed and
    the app has returned."""
    config = Config(app=app, interface="asgi3", lifespan="off", log_level="critical")
    state = ServerState()
    protocol = CoalescingHttpProtocol(config=config, server_state=state, app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    async with asyncio.timeout(10):
        while state.total_requests < responses or state.tasks:
            await asyncio.sleep(0)
    protocol.connection_lost(None)
    return transport


def _json_app(body: bytes = b'{"ok":true}') -> ASGIApp:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def test_a_response_goes_out_in_one_write() -> None:
    transport = await _serve(_json_app(), b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    (only,) = transport.writes
    assert only.startswith(b"HTTP/1.1 201 Created\r\n")
    assert only.endswith(b'\r\n\r\n{"ok":true}')


async def test_an_empty_body_still_carries_the_head() -> None:
    transport = await _serve(_json_app(b""), b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    (only,) = transport.writes
    assert only.startswith(b"HTTP/1.1 201 Created\r\n") and only.endswith(b"\r\n\r\n")


async def test_a_head_request_gets_its_head_without_a_body() -> None:
    transport = await _serve(_json_app(), b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n")
    (only,) = transport.writes
    assert only.startswith(b"HTTP/1.1 201 Created\r\n") and only.endswith(b"\r\n\r\n")
    assert b"ok" not in only


async def test_100_continue_goes_out_before_the_response() -> None:
    request = b"POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"
    transport = await _serve(_json_app(), request)
    assert transport.writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
    (response,) = transport.writes[1:]
    assert response.startswith(b"HTTP/1.1 201 Created\r\n") and response.endswith(b'{"ok":true}')


async def test_a_streamed_body_carries_the_head_with_its_first_chunk_only() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for chunk in (b"one", b"two"):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    transport = await _serve(app, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    first, second, last = transport.writes
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(b"\r\n\r\n3\r\none\r\n")
    assert second == b"3\r\ntwo\r\n"
    assert last == b"0\r\n\r\n"


async def test_the_head_of_an_abandoned_response_is_sent_before_the_close() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("the app fails after starting its response")

    # uvicorn logs the failure and closes the connection; no response completes.
    transport = await _serve(app, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n", responses=0)
    (only,) = transport.writes
    assert only.startswith(b"HTTP/1.1 200 OK\r\n") and only.endswith(b"\r\n\r\n")
    assert transport.closed


async def test_pipelined_requests_get_their_responses_in_order() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = scope["path"].encode()
        headers = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    request = b"GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n"
    transport = await _serve(app, request, responses=2)
    first, second = transport.writes
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(b"\r\n\r\n/first")
    assert second.startswith(b"HTTP/1.1 200 OK\r\n") and second.endswith(b"\r\n\r\n/second")


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_client_gone_before_the_body_gets_nothing_half_written(method: str) -> None:
    gone = asyncio.Event()
    protocol_box: list[CoalescingHttpProtocol] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        protocol_box[0].connection_lost(None)  # the client leaves between head and body
        await send({"type": "http.response.body", "body": b"late"})
        gone.set()

    config = Config(app=app, interface="asgi3", lifespan="off", log_level="critical")
    protocol = CoalescingHttpProtocol(config=config, server_state=ServerState(), app_state={})
    protocol_box.append(protocol)
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(f"{method} /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n".encode())
    async with asyncio.timeout(10):
        await gone.wait()
    assert transport.writes == []


# --- pipelined requests ----------------------------------------------------------------------


def _send_request(path: str = "/messages", close: bool = False) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return (
        b"POST "
        + path.encode()
        + b" HTTP/1.1\r\nHost: a\r\n"
        + connection
        + b"Content-Length: 2\r\n\r\nhi"
    )


class Gated:
    """An app whose requests each wait for their own gate, recording when they start; the
    body of each response is its request's number (the ``n`` query parameter)."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}

    def gate(self, n: str) -> asyncio.Event:
        return self.gates.setdefault(n, asyncio.Event())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        n = scope["query_string"].decode()
        self.started.append(n)
        while (await receive()).get("more_body"):
            pass
        await self.gate(n).wait()
        body = n.encode()
        headers = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _connect(app: ASGIApp) -> tuple[CoalescingHttpProtocol, RecordingTransport, ServerState]:
    config = Config(app=app, interface="asgi3", lifespan="off", log_level="critical")
    state = ServerState()
    protocol = CoalescingHttpProtocol(config=config, server_state=state, app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport, state


async def _until(condition: Any) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0)


def _bodies(transport: RecordingTransport) -> list[bytes]:
    return [chunk.split(b"\r\n\r\n", 1)[1] for chunk in transport.writes]


async def test_pipelined_sends_run_together_and_answer_in_order() -> None:
    app = Gated()
    protocol, transport, state = await _connect(app)
    protocol.data_received(b"".join(_send_request(f"/messages?{n}") for n in "123"))
    await _until(lambda: len(app.started) == 3)  # all three run at once
    app.gate("3").set()
    app.gate("2").set()
    await _until(lambda: state.total_requests == 2)  # the last two are done...
    assert transport.writes == []  # ...and wait for the first
    app.gate("1").set()
    await _until(lambda: state.total_requests == 3)
    assert _bodies(transport) == [b"1", b"2", b"3"]  # in order, each response in one write
    protocol.connection_lost(None)


async def test_anything_but_a_send_waits_for_what_came_before_and_holds_what_follows() -> None:
    app = Gated()
    protocol, transport, state = await _connect(app)
    get = b"GET /messages/unread/count?2 HTTP/1.1\r\nHost: a\r\n\r\n"
    protocol.data_received(_send_request("/messages?1") + get + _send_request("/messages?3"))
    await _until(lambda: app.started == ["1"])
    for _ in range(20):
        await asyncio.sleep(0)
    assert app.started == ["1"]  # the GET is parked behind the send, the send behind the GET
    app.gate("1").set()
    await _until(lambda: app.started == ["1", "2"])
    app.gate("3").set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert app.started == ["1", "2"]
    app.gate("2").set()
    await _until(lambda: state.total_requests == 3)
    assert app.started == ["1", "2", "3"]
    assert _bodies(transport) == [b"1", b"2", b"3"]
    protocol.connection_lost(None)


async def test_nothing_runs_after_a_request_that_closes_the_connection() -> None:
    app = Gated()
    protocol, transport, state = await _connect(app)
    requests = [_send_request("/messages?1"), _send_request("/messages?2", close=True)]
    protocol.data_received(b"".join(requests) + _send_request("/messages?3"))
    await _until(lambda: len(app.started) == 2)
    app.gate("2").set()  # the closing response is done first, and waits for the one before
    await _until(lambda: state.total_requests == 1)
    assert transport.writes == [] and not transport.closed
    app.gate("1").set()
    await _until(lambda: transport.closed)
    assert _bodies(transport) == [b"1", b"2"]
    for _ in range(20):
        await asyncio.sleep(0)
    assert app.started == ["1", "2"]  # the request after the close never ran
    protocol.connection_lost(None)


async def test_at_most_max_pipelined_run_at_once() -> None:
    app = Gated()
    protocol, transport, state = await _connect(app)
    count = MAX_PIPELINED + 8
    protocol.data_received(b"".join(_send_request(f"/messages?{n}") for n in range(count)))
    await _until(lambda: len(app.started) == MAX_PIPELINED)
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(app.started) == MAX_PIPELINED
    for n in range(count):
        app.gate(str(n)).set()
    await _until(lambda: state.total_requests == count)
    assert _bodies(transport) == [str(n).encode() for n in range(count)]
    protocol.connection_lost(None)


async def test_a_turn_waits_for_the_one_before_it_only() -> None:
    loop = asyncio.get_running_loop()
    first = Turn(None, loop)
    second = Turn(first, loop)
    await asyncio.wait_for(first.previous_admitted(), 1)  # nothing before the first
    waiting = asyncio.create_task(second.previous_admitted())
    for _ in range(10):
        await asyncio.sleep(0)
    assert not waiting.done()
    waiting_too = asyncio.create_task(second.previous_admitted())
    waiting_too.cancel()  # a caller that gives up leaves the turn before it as it was
    first.admitted()
    first.admitted()  # said twice (the app, then the request's end): no error
    async with asyncio.timeout(10):
        await waiting
    assert waiting_too.cancelled()


async def test_a_request_after_a_finished_send_still_waits_for_the_one_still_running() -> None:
    app = Gated()
    protocol, transport, state = await _connect(app)
    protocol.data_received(_send_request("/messages?1") + _send_request("/messages?2"))
    await _until(lambda: len(app.started) == 2)
    app.gate("2").set()
    await _until(lambda: state.total_requests == 1)  # the second is done, the first runs
    protocol.data_received(b"GET /messages?3 HTTP/1.1\r\nHost: a\r\n\r\n")
    for _ in range(20):
        await asyncio.sleep(0)
    assert app.started == ["1", "2"]  # a barrier: it waits for the first too
    app.gate("3").set()
    app.gate("1").set()
    await _until(lambda: state.total_requests == 3)
    assert app.started == ["1", "2", "3"]
    assert _bodies(transport) == [b"1", b"2", b"3"]
    protocol.connection_lost(None)
