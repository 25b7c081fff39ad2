"""Drive a real server with generated input from synchronous hypothesis tests.

Hypothesis runs each example as a plain function call; the WebSocket client lives on an
``asyncio.Runner`` of the test's own, so one connection serves many examples (a dropped
connection is then visible: the next example would have to reconnect).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import websockets
from websockets.asyncio.client import ClientConnection

from tests.conftest import LiveServer
from tests.wsclient import ws_url_for
from token_bowl_chat.protocol.errors import ErrorCode

T = TypeVar("T")

ERROR_CODES = frozenset(code.value for code in ErrorCode)
ERROR_FRAME_KEYS = frozenset({"type", "error", "code", "request_id"})
REPLY_TIMEOUT = 20.0  # seconds; generous, the machine is shared

_ids = itertools.count(1)


def fresh_id(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def check_error_frame(frame: dict[str, Any]) -> None:
    """The documented error frame: ``{"type": "error", "error": text, "code": stable code}``
    plus ``request_id``; never an internal error for client input."""
    assert set(frame) <= ERROR_FRAME_KEYS, f"undocumented keys in {frame}"
    assert isinstance(frame.get("error"), str) and frame["error"], frame
    assert frame.get("code") in ERROR_CODES, f"unknown code in {frame}"
    assert frame["code"] != ErrorCode.INTERNAL_ERROR.value, frame


def check_error_body(status: int, body: Any) -> None:
    """The documented REST error body: ``{"detail": ..., "code": stable code}``."""
    assert isinstance(body, dict) and set(body) == {"detail", "code"}, (status, body)
    assert body["code"] in ERROR_CODES, (status, body)
    assert body["code"] != ErrorCode.INTERNAL_ERROR.value, (status, body)


@dataclass
class Exchange:
    """What came back after one frame: every frame up to the probe's reply, and the close
    code if the server closed the connection instead."""

    frames: list[dict[str, Any]]
    probe_id: str
    closed: int | None = None

    @property
    def probe_reply(self) -> dict[str, Any] | None:
        return self.frames[-1] if self.frames and self.closed is None else None

    @property
    def before_probe(self) -> list[dict[str, Any]]:
        return self.frames[:-1] if self.closed is None else self.frames


class WsHarness:
    """One account's WebSocket connection on a private event loop."""

    def __init__(self, server: LiveServer, api_key: str) -> None:
        self.server = server
        self.api_key = api_key
        self.runner = asyncio.Runner()
        self.conn: ClientConnection | None = None
        self.connects = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    async def connection(self) -> ClientConnection:
        if self.conn is None:
            url = ws_url_for(self.server.ws_url, self.api_key)
            self.conn = await websockets.connect(url, max_size=None, open_timeout=REPLY_TIMEOUT)
            self.connects += 1
        return self.conn

    async def collect_until(self, request_id: str) -> Exchange:
        """Frames until the reply echoing ``request_id``; stops early if the server closes."""
        conn = await self.connection()
        frames: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(REPLY_TIMEOUT):
                while True:
                    frame = json.loads(await conn.recv())
                    frames.append(frame)
                    if frame.get("request_id") == request_id:
                        return Exchange(frames, request_id)
        except websockets.ConnectionClosed as exc:
            self.conn = None
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            return Exchange(frames, request_id, closed=code)

    async def _exchange(self, *payloads: str | bytes) -> Exchange:
        conn = await self.connection()
        probe = fresh_id("probe")
        try:
            for payload in payloads:
                await conn.send(payload)
            await conn.send(json.dumps({"type": "get_unread_count", "request_id": probe}))
        except websockets.ConnectionClosed as exc:
            self.conn = None
            return Exchange([], probe, closed=exc.rcvd.code if exc.rcvd is not None else 1006)
        return await self.collect_until(probe)

    def exchange(self, *payloads: str | bytes) -> Exchange:
        """Send ``payloads`` back to back, then a ``get_unread_count`` probe; return what came
        back."""
        return self.run(self._exchange(*payloads))

    async def _send_invalid_utf8(self, data: bytes) -> int | None:
        """A text frame whose payload is not UTF-8; returns the close code the server sent."""
        conn = await self.connection()
        await conn.send(data, text=True)
        try:
            async with asyncio.timeout(REPLY_TIMEOUT):
                while True:
                    await conn.recv()
        except websockets.ConnectionClosed as exc:
            self.conn = None
            return exc.rcvd.code if exc.rcvd is not None else 1006

    def send_invalid_utf8(self, data: bytes) -> int | None:
        return self.run(self._send_invalid_utf8(data))

    def close(self) -> None:
        if self.conn is not None:
            self.run(self.conn.close())
            self.conn = None
        self.runner.close()
