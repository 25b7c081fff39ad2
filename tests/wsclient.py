"""A raw WebSocket test client: frames in and out as dicts, every wait bounded."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

Frame = dict[str, Any]

_request_ids = itertools.count(1)


def ws_url_for(ws_url: str, api_key: str, legacy: bool = False) -> str:
    """The ``/ws`` URL for ``api_key``: extended protocol unless ``legacy``."""
    url = f"{ws_url}?api_key={api_key}"
    return url if legacy else f"{url}&protocol_version=1.1"


class WsClient:
    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.seen: list[Frame] = []

    @classmethod
    async def connect(
        cls, ws_url: str, api_key: str, *, legacy: bool = False, query: str = "", **kwargs: Any
    ) -> WsClient:
        """Open ``/ws`` with ``api_key``, asking for the extended protocol unless ``legacy``
        (the plain v1 form of the published 2.x client). ``query`` is appended as is."""
        return cls(await websockets.connect(ws_url_for(ws_url, api_key, legacy) + query, **kwargs))

    async def send(self, frame: Frame | str) -> None:
        await self.conn.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 5.0) -> Frame:
        async with asyncio.timeout(timeout):
            raw = await self.conn.recv()
        frame: Frame = json.loads(raw)
        self.seen.append(frame)
        return frame

    async def recv_until(self, match: Callable[[Frame], bool], timeout: float = 5.0) -> Frame:
        """The first frame matching ``match``; earlier frames are kept in ``seen``."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if match(frame):
                    return frame

    async def request(self, frame: Frame, timeout: float = 5.0) -> Frame:
        """Send with a fresh request_id and return the reply that echoes it."""
        rid = f"r{next(_request_ids)}"
        await self.send({**frame, "request_id": rid})
        return await self.recv_until(lambda f: f.get("request_id") == rid, timeout)

    async def expect_silence(self, seconds: float, match: Callable[[Frame], bool]) -> None:
        """Assert no frame matching ``match`` arrives within ``seconds``."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    frame = await self.recv(seconds)
                    assert not match(frame), f"unexpected frame {frame}"
        except TimeoutError:
            return

    async def close(self) -> None:
        await self.conn.close()


def is_delivery(frame: Frame) -> bool:
    return "type" not in frame and "content" in frame and "from_username" in frame
