"""WebSocket connections go straight to the endpoint, past the HTTP middleware and routing.

Every middleware of the stack (error pages, CORS, body limits, FastAPI's exit stacks and
telemetry) passes a WebSocket scope through untouched, and the routers only find the one
endpoint, but each of their coroutine frames stays alive as long as the connection does:
about 8 KiB for the middleware and 2.5 KiB for the routing, for every idle connection a node
holds. Starlette would set ``scope["app"]``; the endpoint reads the services through it. No
exception handler of the app applied to WebSockets here either (they are installed by the
middleware this skips): an error the endpoint does not handle reaches uvicorn, which logs it
and closes the socket with 1011.
"""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from token_bowl_chat_server.api.ws.endpoint import WS_PATH, websocket_endpoint


class WebSocketsDirect:
    def __init__(self, app: Starlette) -> None:
        self.app = app

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine function: it hands back the coroutine it picked, so no frame of
        # this layer stays alive as long as the connection does.
        if scope["type"] == "websocket":
            scope["app"] = self.app
            if scope["path"] == WS_PATH:
                return websocket_endpoint(WebSocket(scope, receive, send))
            return self.app.router(scope, receive, send)  # which refuses it
        return self.app(scope, receive, send)
