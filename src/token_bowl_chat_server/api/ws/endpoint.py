"""``/ws``: authenticate before accepting, then read, decode, dispatch, reply.

Replies come back in the order the frames came. Sends are pipelined: the read loop admits a
send and goes on reading while it commits, so consecutive sends of one connection share
group commits; every other command waits for the sends before it (api/ws/pipeline.py).
Anything wrong with a frame gets an ``error`` frame and the connection stays open (upstream
dropped it).

What one connection may cost the others is bounded: a slot under the per-user and
per-address caps is taken before the upgrade (HTTP 429 ``too_many_connections`` otherwise),
every inbound frame is charged to the connection's frame budget (``rate_limited`` error
frames beyond it, close 4002 when the client keeps going), and the read loop yields after
every frame. However the connection ends, the endpoint stops waiting for the peer once the
connection has ended and frees everything it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, cast

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from starlette.types import Receive

from token_bowl_chat.protocol.close_codes import CloseCode
from token_bowl_chat.protocol.commands import (
    MAX_INT,
    Command,
    FrameError,
    SendMessage,
    decode_command,
)
from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.events import Error, Event
from token_bowl_chat.protocol.version import VERSION_PARAM, wants_extensions
from token_bowl_chat_server.api.deps import Services
from token_bowl_chat_server.api.errors import error_event, error_response
from token_bowl_chat_server.api.ws.handlers import HANDLERS, message_sent, queue_send
from token_bowl_chat_server.api.ws.pipeline import ReplyPipeline
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.errors import (
    DomainError,
    NotAuthenticated,
    StorageUnavailable,
)
from token_bowl_chat_server.domain.frame_budget import FrameBudget, Verdict
from token_bowl_chat_server.realtime.admission import Refusal
from token_bowl_chat_server.realtime.connection import Connection, ConnectionClosed
from token_bowl_chat_server.ws_protocol import AsgiWire, reset_transport, wire_of

logger = logging.getLogger(__name__)

router = APIRouter()


def _credential(websocket: WebSocket) -> str | None:
    """``?api_key=`` (what the upstream client sends), else the ``X-API-Key`` header."""
    return websocket.query_params.get("api_key") or websocket.headers.get("x-api-key")


async def _authenticate(services: Services, websocket: WebSocket) -> User | None:
    try:
        return await services.accounts.authenticate(_credential(websocket))
    except DomainError as exc:
        # An HTTP answer before the upgrade (401 for a bad key, 503 while the database is
        # down), as the REST API gives, so clients can tell either from a network fault.
        await websocket.send_denial_response(error_response(exc))
        return None


async def _dispatch(
    services: Services, conn: Connection, replies: ReplyPipeline, text: str
) -> None:
    """Decode and run one frame, queueing its reply behind those of the frames before it.

    A send is admitted now and its commit left running (pipelined); any other command waits
    until the sends before it are answered, then runs as if frames were handled one by one.
    """
    try:
        command = decode_command(text)
    except FrameError as exc:
        replies.reply(Error(error=exc.message, code=exc.code.value, request_id=exc.request_id))
        return
    if isinstance(command, SendMessage):
        try:
            outcome = await queue_send(services, conn, command)
        except Exception as exc:
            replies.reply(_failure(exc, command))
            return
        replies.send(outcome, message_sent, command.request_id)
        return
    await replies.drain()
    try:
        reply = await HANDLERS[type(command)](services, conn, command)
    except Exception as exc:
        reply = _failure(exc, command)
    if reply is not None:
        replies.reply(reply)


def _failure(exc: Exception, command: Command) -> Event:
    if isinstance(exc, DomainError):
        return error_event(exc, command.request_id)
    logger.error("command %s failed", type(command).__name__, exc_info=exc)
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


_FLAGS = {"": False, "0": False, "false": False, "1": True, "true": True}


def _own_messages(websocket: WebSocket) -> bool | str:
    """``?own_messages=1``: copies of the user's own messages (services/own_copies.py)."""
    raw = websocket.query_params.get("own_messages", "")
    flag = _FLAGS.get(raw)
    return "own_messages must be 1 or 0" if flag is None else flag


async def websocket_endpoint(websocket: WebSocket) -> None:
    services: Services = websocket.app.state.services
    since_seq = _since_seq(websocket)
    extended = _extended(websocket)
    own_messages = _own_messages(websocket)
    if isinstance(since_seq, str) or isinstance(extended, str) or isinstance(own_messages, str):
        detail = next(v for v in (since_seq, extended, own_messages) if isinstance(v, str))
        await websocket.send_denial_response(
            JSONResponse(
                {"detail": detail, "code": ErrorCode.VALIDATION_ERROR.value}, status_code=400
            )
        )
        return
    user = await _authenticate(services, websocket)
    if user is None:
        return
    hub = services.hub
    address = websocket.client.host if websocket.client else None
    refusal = hub.caps.acquire(user.id, address)
    if refusal is not None:
        await websocket.send_denial_response(
            JSONResponse(
                {"detail": _CAP_DETAIL[refusal], "code": ErrorCode.TOO_MANY_CONNECTIONS.value},
                status_code=429,
            )
        )
        return
    try:
        await websocket.accept()
        # Our protocol, when the server runs it (``__main__``): frames written straight to
        # it, its own socket reset, and its own receive (one coroutine frame fewer per idle
        # connection than Starlette's checks around it; the read loop stops at the
        # disconnect they look for). uvicorn types its events as TypedDicts, ASGI's Receive
        # as mappings: the same dicts.
        wire = wire_of(websocket.scope)
        receive = cast(Receive, wire.receive) if wire else websocket.receive
        conn = Connection(
            wire or AsgiWire(websocket),
            user,
            services.settings.outbox_size,
            hub.clock(),
            extended,
            close_timeout=services.settings.ws_close_timeout,
            abort=wire.reset if wire else _aborter(websocket),
        )
        # Extended connections only: a legacy client has no client_message_id to match.
        conn.own_messages = own_messages is True and extended is True
        conn.begin_replay()
        if hub.add(conn):
            services.presence.user_online(user)
        try:
            if await _still_authenticated(services, websocket, conn):
                await _run_until_ended(services, receive, conn, since_seq)
            else:
                conn.close(CloseCode.POLICY_VIOLATION, "API key rotated")
                await conn.ended.wait()
        except StorageUnavailable:
            # The second key check or the replay could not read the database: a close the
            # client reconnects after (and resumes from its seq), not an internal error.
            conn.close(CloseCode.TRY_AGAIN_LATER, "storage unavailable: reconnect shortly")
            await conn.ended.wait()
        finally:
            if hub.remove(conn):
                services.presence.user_offline(conn.user)
            services.typing.connection_closed(conn.id)
            await conn.finish()
    finally:
        hub.caps.release(user.id, address)


# Starlette's route, not FastAPI's: the endpoint uses no dependency injection, and FastAPI's
# websocket route keeps its exit stacks and frames alive as long as the connection (about
# 8 KiB per idle connection). ``ws_shortcut`` calls the endpoint directly, past this route.
WS_PATH = "/ws"
router.add_websocket_route(WS_PATH, websocket_endpoint)


_CAP_DETAIL = {
    Refusal.USER: "Too many open WebSocket connections for this user",
    Refusal.ADDRESS: "Too many open WebSocket connections from this address",
}


def _aborter(websocket: WebSocket) -> Callable[[], None] | None:
    """A way to drop the socket without a close handshake under another uvicorn protocol
    (our own has :meth:`WebSocketProtocol.reset`).

    ASGI has no abort, and a close waits for the peer to take the close frame, which a peer
    that never reads never does. uvicorn's ``receive`` is a method of its protocol object,
    which holds the asyncio transport. Elsewhere the connection is still freed when its
    close times out; only the socket then lingers until the server gives up on it.
    """
    protocol = getattr(getattr(websocket, "_receive", None), "__self__", None)
    transport: Any = getattr(protocol, "transport", None)
    if not callable(getattr(transport, "abort", None)):
        return None
    return lambda: reset_transport(transport)


async def _still_authenticated(services: Services, websocket: WebSocket, conn: Connection) -> bool:
    """Check the key again now that the connection is in the hub, and take the account as it
    is now.

    A key rotation (or a deletion) closes the sockets in the hub right after it commits, and
    a role change or rename refreshes them. A connect that authenticated just before such a
    change and joined just after its sweep would live on with the dead key or the old role;
    from here on a sweep finds this connection, and this second look sees any change that
    committed before it.
    """
    try:
        again = await services.accounts.authenticate(_credential(websocket))
    except NotAuthenticated:
        return False
    if again.id != conn.user_id:
        return False
    conn.user = again
    return True


async def _run_until_ended(
    services: Services, receive: Receive, conn: Connection, since_seq: int | None
) -> None:
    """Replay, then read frames, until the peer leaves or the connection ends.

    Both may wait on the peer forever (a replay for room in the outbox, the read loop in
    ``receive()``), so they run in a task that is cancelled once the connection has ended.
    One future stands for "either": a second task and ``asyncio.wait`` cost every idle
    connection about 1.5 KiB more for the whole of its life.
    """
    session = asyncio.create_task(_serve(services, receive, conn, since_seq))
    either: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    session.add_done_callback(lambda _: _resolve(either))
    conn.ended.wake(either)
    try:
        await either
    finally:
        if not session.done():
            session.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await session
    failure = None if session.cancelled() else session.exception()
    if failure is not None:
        raise failure


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _serve(
    services: Services, receive: Receive, conn: Connection, since_seq: int | None
) -> None:
    """The replay, then the read loop, in one coroutine (one frame less per connection)."""
    hub, settings = services.hub, services.settings
    budget = FrameBudget(settings.ws_frame_rate, settings.ws_frame_burst, hub.clock())
    replies = ReplyPipeline(conn, settings.ws_pipeline_window)
    try:
        await services.resume.start(conn.user, conn, since_seq)
        while conn.is_open:
            frame = await receive()
            if frame["type"] == "websocket.disconnect":
                return
            now = hub.clock()
            conn.touch(now)
            verdict = budget.admit(now)
            if verdict is Verdict.CLOSE:
                conn.close(CloseCode.RATE_LIMITED, "too many frames: reconnect later")
                return
            await replies.make_room()
            text = frame.get("text")
            if verdict is Verdict.REFUSE:
                replies.reply(_rate_limited(text, budget))
            elif text is None:
                replies.reply(
                    Error(
                        error="Binary frames are not supported; send JSON text frames",
                        code=ErrorCode.INVALID_FRAME.value,
                    )
                )
            else:
                await _dispatch(services, conn, replies, text)
            # receive() returns without yielding while frames are buffered, and a frame
            # without a reply (typing, pong) may await nothing: yield, so one busy socket
            # cannot hold the event loop from everyone else.
            await asyncio.sleep(0)
    except ConnectionClosed:
        return


def _rate_limited(text: str | None, budget: FrameBudget) -> Error:
    """The refusal of a frame beyond the budget, echoing its request_id when it has one."""
    request_id = None
    if text is not None:
        try:
            request_id = decode_command(text).request_id
        except FrameError as exc:
            request_id = exc.request_id
    return Error(
        error=f"Too many frames: at most {budget.rate:g} per second on one connection; "
        f"retry in {budget.retry_after():.2f} s",
        code=ErrorCode.RATE_LIMITED.value,
        request_id=request_id,
    )
