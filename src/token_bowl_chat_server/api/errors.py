"""The one table that maps domain errors to HTTP responses and WebSocket error frames."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.events import Error
from token_bowl_chat_server.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
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
    RateLimited: 429,
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


def error_response(exc: DomainError) -> JSONResponse:
    status = status_of(exc)
    headers = None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(exc, RateLimited):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    elif isinstance(exc, StorageUnavailable):
        headers = {"Retry-After": "1"}
    return JSONResponse(
        {"detail": exc.message, "code": exc.code.value}, status_code=status, headers=headers
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
        return JSONResponse(body, status_code=422)

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _ROUTE_CODES.get(exc.status_code, ErrorCode.VALIDATION_ERROR)
        return JSONResponse(
            {"detail": exc.detail, "code": code.value},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return JSONResponse(
            {"detail": "Internal server error", "code": ErrorCode.INTERNAL_ERROR.value},
            status_code=500,
        )

    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


def _jsonable(errors: object) -> object:
    """Validation errors may carry exception objects in ``ctx``; make them strings."""
    if isinstance(errors, dict):
        return {key: _jsonable(value) for key, value in errors.items()}
    if isinstance(errors, list | tuple):
        return [_jsonable(value) for value in errors]
    if isinstance(errors, str | int | float | bool) or errors is None:
        return errors
    return str(errors)
