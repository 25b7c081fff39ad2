"""``/ws``: authenticate before accepting, then read, decode, dispatch, reply.

The read loop handles one frame at a time, so replies come back in request order. Anything
wrong with a frame gets an ``error`` frame and the connection stays open (upstream dropped it).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse

from token_bowl_chat.protocol.commands import MAX_INT, FrameError, decode_command
from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.events import Error, Event, encode_event
from token_bowl_chat.protocol.version import VERSION_PARAM, wants_extensions
from token_bowl_chat_server.api.deps import Services
from token_bowl_chat_server.api.errors import error_event
from token_bowl_chat_server.api.ws.handlers import HANDLERS
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.errors import DomainError, NotAuthenticated
from token_bowl_chat_server.realtime.connection import Connection

logger = logging.getLogger(__name__)

router = APIRouter()


def _credential(websocket: WebSocket) -> str | None:
    """``?api_key=`` (what the upstream client sends), else the ``X-API-Key`` header."""
    return websocket.query_params.get("api_key") or websocket.headers.get("x-api-key")


async def _authenticate(services: Services, websocket: WebSocket) -> User | None:
    try:
        return await services.accounts.authenticate(_credential(websocket))
    except NotAuthenticated as exc:
        # HTTP 401 before the upgrade, so clients can tell a bad key from a network fault.
        await websocket.send_denial_response(
            JSONResponse(
                {"detail": exc.message, "code": exc.code.value},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        )
        return None


async def _handle(services: Services, conn: Connection, text: str) -> Event | None:
    try:
        command = decode_command(text)
    except FrameError as exc:
        return Error(error=exc.message, code=exc.code.value, request_id=exc.request_id)
    handler = HANDLERS[type(command)]
    try:
        return await handler(services, conn, command)
    except DomainError as exc:
        return error_event(exc, command.request_id)
    except Exception:
        logger.exception("command %s failed", type(command).__name__)
        return Error(
            error="Internal server error",
            code=ErrorCode.INTERNAL_ERROR.value,
            request_id=command.request_id,
        )


def _since_seq(websocket: WebSocket) -> int | str | None:
    """``?since_seq=N`` asks for a gap-free resume after message ``N``; returns an error text
    for a malformed value."""
    raw = websocket.query_params.get("since_seq")
    if raw is None or raw == "":
        return None
    # ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and "١٢٣" (which
    # it reads as 123). At most 64 bits, so the value fits the database's seq column.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or int(raw) > MAX_INT:
        return f"since_seq must be an integer from 0 to {MAX_INT}"
    return int(raw)


def _extended(websocket: WebSocket) -> bool | str:
    """Whether the client asked for the extended protocol; an error text for a bad value."""
    try:
        return wants_extensions(websocket.query_params.get(VERSION_PARAM))
    except ValueError as exc:
        return str(exc)


@router.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    since_seq = _since_seq(websocket)
    extended = _extended(websocket)
    if isinstance(since_seq, str) or isinstance(extended, str):
        detail = since_seq if isinstance(since_seq, str) else str(extended)
        await websocket.send_denial_response(
            JSONResponse(
                {"detail": detail, "code": ErrorCode.VALIDATION_ERROR.value}, status_code=400
            )
        )
        return
    user = await _authenticate(services, websocket)
    if user is None:
        return
    await websocket.accept()
    hub = services.hub
    conn = Connection(websocket, user, services.settings.outbox_size, hub.clock(), extended)
    conn.begin_replay()
    hub.add(conn)
    conn.start()
    try:
        await services.resume.start(user, conn, since_seq)
        while conn.is_open:
            frame = await websocket.receive()
            if frame["type"] == "websocket.disconnect":
                break
            conn.touch(hub.clock())
            text = frame.get("text")
            if text is None:
                reply: Event | None = Error(
                    error="Binary frames are not supported; send JSON text frames",
                    code=ErrorCode.INVALID_FRAME.value,
                )
            else:
                reply = await _handle(services, conn, text)
            if reply is not None:
                conn.push(encode_event(reply))
    finally:
        hub.remove(conn)
        services.typing.connection_closed(conn.id)
        await conn.finish()
