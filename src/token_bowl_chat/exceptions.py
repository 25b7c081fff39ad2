"""The client's exceptions: one root, and "could not reach the server" kept apart from
"the server refused".

    TokenBowlError                  root; .message, .response, .status_code, .code, .detail
    ├── NetworkError                no usable answer: connect, read or write failed
    │   └── TimeoutError            also a builtins.TimeoutError
    ├── ProtocolError               an answer arrived but is not the protocol (bad JSON/shape)
    ├── AuthenticationError         401, or no API key for an endpoint that needs one
    ├── PermissionDeniedError       403: authenticated, but the role or owner check failed
    ├── NotFoundError               404
    ├── ConflictError               409: e.g. the username is taken
    ├── ValidationError             422: the server rejected the request's fields
    │   └── BadRequestError         400: well-formed but unacceptable (bad id, bad timestamp)
    ├── RateLimitError              429; .retry_after in seconds, when the server says
    └── ServerError                 5xx

Any other 4xx status raises a plain ``TokenBowlError``. ``status_code`` is the HTTP status
(``None`` when no response was received); ``code`` is the server's stable error code (a
``token_bowl_chat.protocol.errors.ErrorCode`` value), which is what a program should branch on,
because several codes share one status.

``TimeoutError`` shadows the builtin on purpose (the upstream client's name). It subclasses
both ``NetworkError`` and ``builtins.TimeoutError``, so either ``except`` clause catches it.
"""

from __future__ import annotations

import builtins
import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "ServerError",
    "TimeoutError",
    "TokenBowlError",
    "ValidationError",
]


def response_body(response: httpx.Response) -> Any:
    """The decoded JSON body, or ``None`` when the body is empty or not JSON."""
    try:
        return json.loads(response.content)
    except ValueError:
        return None


class TokenBowlError(Exception):
    """Root of every error this package raises on purpose.

    ``response`` is the HTTP response that caused the error, when there was one. ``code`` and
    ``detail`` default to the body's ``"code"`` and ``"detail"`` keys; pass them explicitly for
    errors that did not come from an HTTP response (a WebSocket error frame, say).
    """

    def __init__(
        self,
        message: str,
        response: httpx.Response | None = None,
        *,
        code: str | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.response = response
        body = response_body(response) if response is not None else None
        if isinstance(body, dict):
            if code is None and isinstance(body.get("code"), str):
                code = body["code"]
            if detail is None:
                detail = body.get("detail")
        self.code = code
        self.detail = detail

    @property
    def status_code(self) -> int | None:
        return self.response.status_code if self.response is not None else None

    def __str__(self) -> str:
        return self.message


class NetworkError(TokenBowlError):
    """The request got no usable answer: DNS, connect, read or write failed.

    Whether the server acted on the request is unknown; retry only idempotent requests (or
    ``send_message`` with the same ``client_message_id``).
    """


class TimeoutError(NetworkError, builtins.TimeoutError):  # shadows the builtin: upstream name
    """The request took longer than the client's ``timeout``."""


class ProtocolError(TokenBowlError):
    """The server answered, but the answer is not valid JSON or does not have the expected
    shape. Usually a proxy in the way, or a server of an incompatible version."""


class AuthenticationError(TokenBowlError):
    """401: the API key is missing, wrong or rotated. Also raised locally, before any request,
    when an endpoint needs a key and the client has none."""


class PermissionDeniedError(TokenBowlError):
    """403: the key is valid, but the caller's role or ownership does not allow this."""


class NotFoundError(TokenBowlError):
    """404: the user, message or route does not exist (``code`` tells them apart)."""


class ConflictError(TokenBowlError):
    """409: a unique value, such as a username, is already taken."""


class ValidationError(TokenBowlError):
    """422: the server rejected the request's fields. ``detail`` holds the per-field list
    (``[{"type", "loc", "msg", "input", "ctx"?}, ...]``)."""


class BadRequestError(ValidationError):
    """400: the request is well-formed but unacceptable (invalid id or timestamp, a DM to a
    viewer). A ``ValidationError`` so one ``except`` covers every "fix your input" error."""


class RateLimitError(TokenBowlError):
    """429: slow down. ``retry_after`` is the number of seconds the server asked the caller to
    wait (from the ``Retry-After`` header), or ``None`` when it did not say."""

    def __init__(
        self,
        message: str,
        response: httpx.Response | None = None,
        *,
        code: str | None = None,
        detail: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, response, code=code, detail=detail)
        if retry_after is None and response is not None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        self.retry_after = retry_after


class ServerError(TokenBowlError):
    """5xx: the server failed (or, 503, a feature it does not have configured)."""


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date (RFC 9110
    section 10.2.3). A date in the past gives 0; an unreadable value gives ``None``."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds else None  # NaN is unreadable
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are always GMT
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max((when - now).total_seconds(), 0.0)
