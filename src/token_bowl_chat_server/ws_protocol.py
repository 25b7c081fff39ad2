"""The WebSocket protocol uvicorn runs for us: its own, made to answer every refused upgrade.

websockets refuses an upgrade request whose request line or a header line is longer than
8 KiB, or that is not HTTP at all, while it parses: before any request event exists.
uvicorn's sans-I/O protocol writes and closes only in response to events, so that refusal
was queued but never sent, and the socket stayed open with nobody reading it. Any client
could pin server sockets with one long ``/ws`` URL each. Here such a request gets the usual
error body (414, 431 or 400, code ``validation_error``) and the socket is closed.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import HeaderLineTooLong, RequestLineTooLong, TooManyHeaders

from token_bowl_chat.protocol.errors import ErrorCode


def _refusal(exc: BaseException) -> bytes:
    if isinstance(exc, RequestLineTooLong):
        status, detail = HTTPStatus.REQUEST_URI_TOO_LONG, "Request line too long (8 KiB at most)"
    elif isinstance(exc, HeaderLineTooLong | TooManyHeaders):
        status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
        detail = "Header fields too large (8 KiB per line, 128 lines at most)"
    else:
        status, detail = HTTPStatus.BAD_REQUEST, "Not a valid HTTP request"
    body = json.dumps({"detail": detail, "code": ErrorCode.VALIDATION_ERROR.value}).encode()
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        exc = self.conn.handshake_exc
        if exc is not None and not self.handshake_initiated and not self.transport.is_closing():
            self.conn.data_to_send()  # websockets' own plain-text refusal, replaced by ours
            self.transport.write(_refusal(exc))
            self.transport.close()
