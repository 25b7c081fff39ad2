"""The one table that maps domain errors to HTTP responses and WebSocket error frames."""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount, compile_path

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.events import Error
from token_bowl_chat_server.domain.errors import (
    BotTurnLimitReached,
    Conflict,
    DomainError,
    Forbidden,
    InvalidField,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    RateLimited,
    StorageUnavailable,
)

logger = logging.getLogger(__name__)

STATUS: dict[type[DomainError], int] = {
    NotAuthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    InvalidInput: 400,
    InvalidField: 422,
    RateLimited: 429,
    BotTurnLimitReached: 429,
    StorageUnavailable: 503,
}

_ROUTE_CODES = {
    404: ErrorCode.NOT_FOUND_ROUTE,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    401: ErrorCode.AUTHENTICATION_REQUIRED,
}


def status_of(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


_SURROGATE = re.compile("[\ud800-\udfff]")


class ErrorJSONResponse(JSONResponse):
    """An error body that always encodes: it may quote client input (a 422 ``input``, an id in
    a message), and a lone UTF-16 surrogate in it would otherwise fail the response itself and
    turn a 4xx into a 500. Each such character is sent as U+FFFD."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
            return _SURROGATE.sub("\ufffd", text).encode("utf-8")


# FastAPI answers a body it could not parse for a reason other than a JSON syntax error
# (invalid UTF-8, nesting deeper than the parser's recursion limit, an integer of thousands
# of digits) with this 400; it is the same client mistake as a syntax error.
_UNPARSEABLE_BODY = "There was an error parsing the body"


def error_response(exc: DomainError) -> JSONResponse:
    status = status_of(exc)
    headers = None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(exc, RateLimited):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    elif isinstance(exc, StorageUnavailable):
        headers = {"Retry-After": "1"}
    if isinstance(exc, InvalidField):
        # The shape of FastAPI's own 422, so clients read it like any validation error.
        item = {"type": exc.kind, "loc": ["body", exc.field], "msg": exc.message}
        return ErrorJSONResponse(
            {"detail": [{**item, "input": exc.value}], "code": exc.code.value}, status_code=422
        )
    return ErrorJSONResponse(
        {"detail": exc.message, "code": exc.code.value}, status_code=status, headers=headers
    )


def unexpected_response(exc: Exception) -> JSONResponse:
    """The last resort: logged with its traceback, answered 500 ``internal_error``."""
    logger.exception("unhandled error", exc_info=exc)
    return ErrorJSONResponse(
        {"detail": "Internal server error", "code": ErrorCode.INTERNAL_ERROR.value},
        status_code=500,
    )


def error_event(exc: DomainError, request_id: str | int | None = None) -> Error:
    return Error(error=exc.message, code=exc.code.value, request_id=request_id)


def install(app: FastAPI) -> None:
    async def on_domain_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return error_response(exc)

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        code = ErrorCode.VALIDATION_ERROR
        if any(err.get("type") == "json_invalid" for err in errors):
            code = ErrorCode.INVALID_JSON
        body = {"detail": _jsonable(errors), "code": code.value}
        return ErrorJSONResponse(body, status_code=422)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == _UNPARSEABLE_BODY:
            return _invalid_json(exc.__cause__)
        code = _ROUTE_CODES.get(exc.status_code, ErrorCode.VALIDATION_ERROR)
        headers = exc.headers
        if exc.status_code == 405 and (allowed := _allowed_methods(request)):
            headers = {**(headers or {}), "Allow": allowed}
        return ErrorJSONResponse(
            {"detail": exc.detail, "code": code.value},
            status_code=exc.status_code,
            headers=headers,
        )

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        return unexpected_response(exc)

    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@functools.cache
def _template_regex(template: str) -> re.Pattern[str]:
    return compile_path(template)[0]


def _allowed_methods(request: Request) -> str:
    """The methods of the resource at the request's path. Starlette's 405 names only the
    first route whose path matched (``Allow: POST`` for ``/messages``, which GET serves too);
    RFC 9110 asks for all of them. The resource is the most specific documented path that
    matches (``/messages/mark-all-read``, not ``/messages/{message_id}``); for a path the
    document leaves out, every method some route serves there (mounts match any method)."""
    path = request.scope["path"]
    documented: dict[str, dict[str, Any]] = request.app.openapi()["paths"]
    matching = [t for t in documented if _template_regex(t).match(path)]
    if matching:
        resource = min(matching, key=lambda template: template.count("{"))
        return ", ".join(m for m in _METHODS if m.lower() in documented[resource])
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    return ", ".join(
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    )


def _invalid_json(cause: BaseException | None) -> JSONResponse:
    """422 ``invalid_json`` in the shape FastAPI gives a JSON syntax error."""
    if isinstance(cause, RecursionError):
        reason = "nested too deeply"
    elif isinstance(cause, UnicodeDecodeError):
        reason = "not valid UTF-8"
    elif isinstance(cause, ValueError):
        reason = str(cause)
    else:
        reason = "unreadable body"
    item = {
        "type": "json_invalid",
        "loc": ["body"],
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": reason},
    }
    return ErrorJSONResponse(
        {"detail": [item], "code": ErrorCode.INVALID_JSON.value}, status_code=422
    )


def _jsonable(errors: object) -> object:
    """Validation errors may carry exception objects in ``ctx``; make them strings. Input is
    echoed, so lone surrogates in it become U+FFFD (the body must encode as UTF-8), and
    non-finite numbers (``NaN``, ``Infinity``, ``1e400`` in the body) their text, as JSON has
    no such numbers and the response would fail to encode."""
    if isinstance(errors, dict):
        return {_jsonable(key): _jsonable(value) for key, value in errors.items()}
    if isinstance(errors, list | tuple):
        return [_jsonable(value) for value in errors]
    if isinstance(errors, str):
        return _SURROGATE.sub("\ufffd", errors)
    if isinstance(errors, float) and not math.isfinite(errors):
        return str(errors)
    if isinstance(errors, int | float | bool) or errors is None:
        return errors
    return _SURROGATE.sub("\ufffd", str(errors))
