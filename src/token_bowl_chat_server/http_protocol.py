"""The HTTP/1.1 protocol uvicorn runs for us: its own (httptools), sending each response's
head and body in one write.

uvicorn writes a response's status line and headers to the socket as soon as the app starts
the response, and the body when the app sends it: two sends, two TCP segments and two
wake-ups of the client for every small JSON answer. On a loopback send each costs about as
much as the rest of uvicorn's work for the request; a REST send spent 14 % of its event loop
time in them. Here the head waits for the body's first bytes and leaves with them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class _HeadHolder:
    """The transport as one request's cycle sees it: the response head is held back until
    the next write (the body), or until the cycle closes the connection."""

    __slots__ = ("cycle", "held", "transport")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self.transport = transport
        self.cycle = cycle
        self.held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self.held
        if held is not None:
            self.held = None
            self.cycle.transport = self.transport  # the rest goes straight through
            self.transport.write(held + data)
        elif self.cycle.response_started:
            # The first write once the response has started is its head (a "100 Continue"
            # is written before the response starts, and goes at once).
            self.held = data
        else:
            self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def flush(self) -> None:
        held = self.held
        if held is not None:
            self.held = None
            self.transport.write(held)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class CoalescingHttpProtocol(HttpToolsProtocol):
    def on_headers_complete(self) -> None:
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        # A new request's cycle, not an upgrade (which makes none) and not a HEAD request,
        # whose response has no body to carry the head.
        if cycle is not previous and cycle is not None and cycle.scope["method"] != "HEAD":
            cycle.transport = _HeadHolder(self.transport, cycle)  # type: ignore[assignment]
