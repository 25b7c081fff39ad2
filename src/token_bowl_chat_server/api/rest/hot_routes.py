"""The three requests a bot makes most, answered past FastAPI's stack.

``POST /messages``, ``GET /messages/unread/count`` and ``POST /messages/mark-all-read`` are
what a busy bot sends over and over. Through FastAPI each one costs about 0.15 ms of CPU in
routing, dependency resolution, validation and the middleware stack before our code runs,
as much as everything the service itself does for an unread count. Here a plain ASGI app
answers them when they are plainly valid: a known key, and for a send a JSON body the
request model accepts.

Every other case goes to the FastAPI app unchanged (the body read so far is replayed), so
there is one implementation of every error answer: a missing or unknown key, a body that
does not parse or validate, another content type, a body too large to hold here. Nothing
has happened before that hand-over (authentication only reads), so the app answers exactly
as if it had had the request from the start. After it, errors of the operation itself are
rendered by ``api/errors.py``, as the app's handlers do. The routes stay declared on the
FastAPI app too, which documents them in ``/openapi.json`` and serves the requests handed
over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from token_bowl_chat.protocol.models import MarkAllReadResponse, SendMessageRequest
from token_bowl_chat_server import render
from token_bowl_chat_server.api.cors import response_headers
from token_bowl_chat_server.api.deps import Services
from token_bowl_chat_server.api.errors import error_response, unexpected_response
from token_bowl_chat_server.api.rest.responses import encoded, sent_message
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.errors import DomainError
from token_bowl_chat_server.http_protocol import TURN_EXTENSION, Turn

# A send's body is at most a few times MAX_CONTENT_LENGTH (escapes included); a larger one is
# handed over, and the app reads the rest.
MAX_HELD_BODY = 256 * 1024


class _Request:
    """What a hot route needs of a request: its key, origin, content type and body, and its
    place in its connection's order (``http_protocol.Turn``: pipelined sends)."""

    __slots__ = ("api_key", "body", "content_type", "more_body", "origin", "read", "turn")

    def __init__(self, scope: Scope) -> None:
        turn = (scope.get("extensions") or {}).get(TURN_EXTENSION)
        self.turn = turn if isinstance(turn, Turn) else None
        self.api_key: str | None = None
        self.content_type: bytes | None = None
        self.origin = False
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                if self.api_key is None:  # the first, as FastAPI's Header() takes it
                    self.api_key = value.decode("latin-1")
            elif name == b"content-type":
                if self.content_type is None:
                    self.content_type = value
            elif name == b"origin":
                self.origin = True
        self.read: list[Message] = []  # body messages received, replayed on hand-over
        self.body = b""
        self.more_body = True

    async def read_body(self, receive: Receive) -> bool:
        """Read the body, up to :data:`MAX_HELD_BODY`; False when it is larger or the client
        left (the app then reads on, and sees what the client did)."""
        chunks: list[bytes] = []
        size = 0
        while self.more_body:
            message = await receive()
            self.read.append(message)
            if message["type"] != "http.request":
                return False
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            self.more_body = message.get("more_body", False)
            if size > MAX_HELD_BODY:
                return False
        self.body = b"".join(chunks)
        return True

    def admitted(self) -> None:
        """The request's send is admitted: the next pipelined one may go."""
        if self.turn is not None:
            self.turn.admitted()

    def replaying(self, receive: Receive) -> Receive:
        """``receive`` that first gives back what was read."""
        pending = list(self.read)

        async def replay() -> Message:
            if pending:
                return pending.pop(0)
            return await receive()

        return replay


HotHandler = Callable[[Services, User, _Request], Awaitable[Response | None]]


def _is_json(content_type: bytes | None) -> bool:
    """``application/json``, with or without parameters: FastAPI also parses other ``+json``
    types and, not strictly, none at all; those are handed over."""
    if content_type is None:
        return False
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


async def _send_message(services: Services, user: User, request: _Request) -> Response | None:
    if not _is_json(request.content_type):
        return None
    try:
        # Parsed and validated in one pass by pydantic. Whatever its parser refuses that
        # Python's json module takes (a UTF-8 byte-order mark, UTF-16) is handed over, and the
        # app parses it as it always does; it takes nothing the json module refuses.
        body = SendMessageRequest.model_validate_json(request.body)
    except ValidationError:
        return None
    committed = await services.messages.queue(
        user, body.content, body.to_username, body.client_message_id
    )
    request.admitted()  # a send pipelined behind this one joins its group commit
    return sent_message(await committed)


async def _unread_count(services: Services, user: User, _: _Request) -> Response | None:
    return encoded(render.unread_counts(await services.reads.unread_counts(user)))


async def _mark_all_read(services: Services, user: User, _: _Request) -> Response | None:
    marked = await services.reads.mark_all_read(user)
    return encoded(MarkAllReadResponse(marked_as_read=marked))


# (method, path) -> handler, and whether it reads a body.
_ROUTES: dict[tuple[str, str], tuple[HotHandler, bool]] = {
    ("POST", "/messages"): (_send_message, True),
    ("GET", "/messages/unread/count"): (_unread_count, False),
    ("POST", "/messages/mark-all-read"): (_mark_all_read, False),
}


class HotRoutes:
    """ASGI: the hot routes here, everything else (and every hand-over) to ``app``.
    ``api`` is the FastAPI app, whose state holds the services once its lifespan ran."""

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine function: what passes through gets the next app's coroutine, with
        # no frame of this layer kept alive under it (a WebSocket's, for the connection's life).
        route = _ROUTES.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        if route is None:
            return self.app(scope, receive, send)
        return self._serve(route, scope, receive, send)

    async def _serve(
        self, route: tuple[HotHandler, bool], scope: Scope, receive: Receive, send: Send
    ) -> None:
        handler, has_body = route
        request = _Request(scope)
        if request.turn is not None and not request.turn.is_next():
            # Sends pipelined on one connection are admitted in the order they came; a
            # request's turn ends when its send is queued (_send_message) or, at the latest,
            # when the request ends (http_protocol).
            await request.turn.previous_admitted()
        services: Services | None = getattr(self.api.state, "services", None)
        response = None
        if services is not None and (not has_body or await request.read_body(receive)):
            response = await self._answer(services, handler, request)
        if response is None:
            await self.app(scope, request.replaying(receive), send)
            return
        await _send(send, response, request.origin)

    @staticmethod
    async def _answer(
        services: Services, handler: HotHandler, request: _Request
    ) -> Response | None:
        """The response, or None to hand the request over."""
        try:
            user = await services.accounts.authenticate(request.api_key)
        except DomainError:
            return None  # the app answers 401 (or 503), in its own words
        try:
            return await handler(services, user, request)
        except DomainError as exc:
            return error_response(exc)
        except Exception as exc:  # as the app's last-resort handler answers
            return unexpected_response(exc)


async def _send(send: Send, response: Response, origin: bool) -> None:
    headers: list[tuple[bytes, bytes]] = response_headers(list(response.raw_headers), origin)
    start: dict[str, Any] = {
        "type": "http.response.start",
        "status": response.status_code,
        "headers": headers,
    }
    await send(start)
    await send({"type": "http.response.body", "body": response.body})
