"""The HTTP protocol writes each response's head and body in one write, and never holds back
what must go out on its own: a "100 Continue", a HEAD response's head, the head of a
response the app abandons, each of several pipelined responses in order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from token_bowl_chat_server.http_protocol import CoalescingHttpProtocol

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
