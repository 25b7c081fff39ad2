"""The reference ceiling for ``bench/compare.py``: the least a Python server on our stack can do.

A uvicorn + Starlette app with no database and no authentication beyond a set lookup, speaking
just enough of the chat protocol for the same load generator (``bench/fanout.py``,
``bench/compare.py``) to drive it unchanged:

* ``POST /register`` returns a fresh ``api_key``; ``GET /health`` answers 200;
* ``/ws?api_key=...`` accepts a known key. A ``message`` frame gets the next ``seq``; the
  message frame is encoded once and queued to every *other* connection, then the sender gets a
  ``message_sent`` echoing the ``request_id``. ``pong`` is ignored; anything else gets an
  ``error``. Each connection has one outbox (a queue) and one writer task, so frames reach
  every connection in ``seq`` order, the same structure as the real server;
* ``POST /messages`` checks the ``X-API-Key`` header and returns 201 with a message-shaped body;
  ``GET /messages/unread/count`` and ``POST /messages/mark-all-read`` check the key and return
  zero counts. These three are FastAPI endpoints by default, as issue 10 defines its REST
  reference (a key dependency, a body model for the send, a dict returned); ``--rest
  starlette`` serves them as bare Starlette handlers instead, a higher ceiling.

Run: ``python bench/reference.py --port 8765`` (127.0.0.1 only). uvicorn gets the options the
real server uses (no permessage-deflate, no protocol pings, same uvloop / httptools choice).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import time
import uuid
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

OUTBOX_LIMIT = 10_000  # frames queued for one connection before it is closed (4001)


class Room:
    """Registered keys, open connections and the one ``seq`` counter."""

    def __init__(self) -> None:
        self.usernames: dict[str, str] = {}
        self.outboxes: dict[WebSocket, asyncio.Queue[str | None]] = {}
        self.seq = 0

    def message(self, author: str, content: str) -> dict[str, Any]:
        self.seq += 1
        return {
            "id": str(uuid.uuid4()),
            "seq": self.seq,
            "from_username": author,
            "to_username": None,
            "content": content,
            "message_type": "room",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def queue(self, ws: WebSocket, frame: str) -> None:
        outbox = self.outboxes.get(ws)
        if outbox is None:
            return
        if outbox.qsize() >= OUTBOX_LIMIT:
            outbox.put_nowait(None)  # the writer closes it
            del self.outboxes[ws]
            return
        outbox.put_nowait(frame)


room = Room()


def key_of(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    return key if key in room.usernames else None


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def register(request: Request) -> Response:
    body = await request.json()
    key = secrets.token_hex(16)
    room.usernames[key] = str(body.get("username") or key[:8])
    return JSONResponse({"username": room.usernames[key], "api_key": key}, status_code=201)


async def post_message(request: Request) -> Response:
    key = key_of(request)
    if key is None:
        return JSONResponse({"error": "invalid_api_key"}, status_code=401)
    body = await request.json()
    message = room.message(room.usernames[key], str(body.get("content", "")))
    return JSONResponse(message, status_code=201)


async def unread_count(request: Request) -> Response:
    if key_of(request) is None:
        return JSONResponse({"error": "invalid_api_key"}, status_code=401)
    counts = {"unread_room_messages": 0, "unread_direct_messages": 0, "total_unread": 0}
    return JSONResponse(counts)


async def mark_all_read(request: Request) -> Response:
    if key_of(request) is None:
        return JSONResponse({"error": "invalid_api_key"}, status_code=401)
    return JSONResponse({"marked_as_read": 0})


async def write_outbox(ws: WebSocket, outbox: asyncio.Queue[str | None]) -> None:
    while True:
        frame = await outbox.get()
        if frame is None:
            await ws.close(4001)
            return
        await ws.send_text(frame)


async def websocket(ws: WebSocket) -> None:
    key = ws.query_params.get("api_key")
    if key not in room.usernames:
        await ws.close(4401)
        return
    author = room.usernames[key]
    await ws.accept()
    outbox: asyncio.Queue[str | None] = asyncio.Queue()
    room.outboxes[ws] = outbox
    writer = asyncio.create_task(write_outbox(ws, outbox))
    try:
        while True:
            data = json.loads(await ws.receive_text())
            kind = data.get("type", "message") if isinstance(data, dict) else None
            if kind == "pong":
                continue
            if kind != "message":
                room.queue(ws, json.dumps({"type": "error", "error": "unsupported"}))
                continue
            message = room.message(author, str(data.get("content", "")))
            frame = json.dumps({"type": "message", **message})
            for other in list(room.outboxes):
                if other is not ws:
                    room.queue(other, frame)
            ack = {"type": "message_sent", "status": "sent", "message": message}
            if "request_id" in data:
                ack["request_id"] = data["request_id"]
            room.queue(ws, json.dumps(ack))
    except (WebSocketDisconnect, RuntimeError, json.JSONDecodeError):
        pass
    finally:
        room.outboxes.pop(ws, None)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer


BASE_ROUTES: list[BaseRoute] = [
    Route("/health", health),
    Route("/register", register, methods=["POST"]),
    WebSocketRoute("/ws", websocket),
]
starlette_app = Starlette(
    routes=[
        *BASE_ROUTES,
        Route("/messages", post_message, methods=["POST"]),
        Route("/messages/unread/count", unread_count),
        Route("/messages/mark-all-read", mark_all_read, methods=["POST"]),
    ]
)

# ------------------------------------------------------------------ the FastAPI endpoints

fastapi_app = FastAPI()
fastapi_app.router.routes.extend(BASE_ROUTES)


async def known_key(x_api_key: Annotated[str | None, Header()] = None) -> str:
    if x_api_key is None or x_api_key not in room.usernames:
        raise HTTPException(401, "invalid_api_key")
    return x_api_key


KnownKey = Annotated[str, Depends(known_key)]


class SendBody(BaseModel):
    content: str
    to_username: str | None = None


@fastapi_app.post("/messages", status_code=201)
async def fastapi_post_message(body: SendBody, key: KnownKey) -> dict[str, Any]:
    return room.message(room.usernames[key], body.content)


@fastapi_app.get("/messages/unread/count")
async def fastapi_unread_count(key: KnownKey) -> dict[str, int]:
    return {"unread_room_messages": 0, "unread_direct_messages": 0, "total_unread": 0}


@fastapi_app.post("/messages/mark-all-read")
async def fastapi_mark_all_read(key: KnownKey) -> dict[str, int]:
    return {"marked_as_read": 0}


APPS = {"fastapi": fastapi_app, "starlette": starlette_app}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "::1"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--rest", choices=sorted(APPS), default="fastapi", help="what serves the REST routes"
    )
    opts = parser.parse_args()
    uvicorn.run(
        APPS[opts.rest],
        host=opts.host,
        port=opts.port,
        log_level="warning",
        access_log=False,
        ws_per_message_deflate=False,
        ws_ping_interval=None,
        server_header=False,
    )


if __name__ == "__main__":
    main()
