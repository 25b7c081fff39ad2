"""CORS for the web UI and other browser clients: any origin, any method, any header, no
credentials (the API key is a header, never a cookie).

The same answers as Starlette's ``CORSMiddleware(allow_origins=["*"], allow_methods=["*"],
allow_headers=["*"])``, in a plain ASGI middleware: that one parses every request's headers
into a ``Headers`` object and wraps ``send`` in a partial that builds a ``MutableHeaders``
per response, which showed up in profiles of the REST hot path. Here a request without an
``Origin`` costs one scan of the raw header list and one appended header.
"""

from __future__ import annotations

from starlette.middleware.cors import ALL_METHODS
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METHODS = ", ".join(ALL_METHODS).encode()
PREFLIGHT_VARY = (
    b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers, "
    b"Access-Control-Request-Private-Network"
)


def _request_headers(scope: Scope) -> tuple[bool, bytes | None, bytes | None, bool]:
    """Whether the request has an ``Origin``, its requested method and headers (preflight),
    and whether it asks for private-network access."""
    origin = False
    method = headers = None
    private_network = False
    for name, value in scope["headers"]:
        if name == b"origin":
            origin = True
        elif name == b"access-control-request-method":
            method = value
        elif name == b"access-control-request-headers":
            headers = value
        elif name == b"access-control-request-private-network":
            private_network = True
    return origin, method, headers, private_network


class CORS:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin, method, requested, private_network = _request_headers(scope)
        if origin and scope["method"] == "OPTIONS" and method is not None:
            await _preflight(send, requested, private_network)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = response_headers(list(message.get("headers", ())), origin)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cors)


def response_headers(headers: list[tuple[bytes, bytes]], origin: bool) -> list[tuple[bytes, bytes]]:
    """A response's headers with CORS's: ``Vary: Origin`` always (merged into any ``Vary``),
    and the allowed origin when the request had an ``Origin``."""
    if origin:
        headers.append((b"access-control-allow-origin", b"*"))
    vary = [value for name, value in headers if name == b"vary"]
    if vary:
        headers = [(n, v) for n, v in headers if n != b"vary"]
    headers.append((b"vary", b", ".join([*vary, b"Origin"])))
    return headers


async def _preflight(send: Send, requested: bytes | None, private_network: bool) -> None:
    """Every origin, method and header is allowed; private-network access is not asked for
    by our clients and is refused as Starlette refuses it."""
    headers = [
        (b"vary", PREFLIGHT_VARY),
        (b"access-control-allow-origin", b"*"),
        (b"access-control-allow-methods", METHODS),
        (b"access-control-max-age", b"600"),
    ]
    if requested is not None:
        headers.append((b"access-control-allow-headers", requested))
    status, body = (400, b"Disallowed CORS private-network") if private_network else (200, b"OK")
    headers += [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", b"text/plain; charset=utf-8"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
