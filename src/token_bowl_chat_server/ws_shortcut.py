"""WebSocket connections go straight to the router, past the HTTP middleware.

Every middleware of the stack (error pages, CORS, body limits, FastAPI's exit stacks and
telemetry) passes a WebSocket scope through untouched, but its coroutine frame stays alive
as long as the connection does: several KiB for every idle connection a node holds. Starlette
itself sets ``scope["app"]``; the endpoint reads the services through it.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send


class WebSocketsDirect:
    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope["app"] = self.app
            await self.app.router(scope, receive, send)
        else:
            await self.app(scope, receive, send)
