"""User errors as one line and an exit code: the CLI never shows a traceback for them.

Exit codes: ``1`` the request or the operation failed (the line says why), ``2`` bad arguments
(typer's usage errors and :class:`UsageError`), ``130`` interrupted with Ctrl-C. A traceback
still appears for an exception that is not listed here, because that is a bug to report.
"""

from __future__ import annotations

from typing import Any

from token_bowl_chat import (
    AuthenticationError,
    ConflictError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    ServerError,
    TimeoutError,
    TokenBowlError,
    ValidationError,
)
from token_bowl_chat.cli.config import API_KEY_ENV, ConfigError

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "NO_KEY_HINT",
    "CliError",
    "UsageError",
    "describe",
]

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

NO_KEY_HINT = (
    f"no API key: pass --api-key, set {API_KEY_ENV}, "
    "or run `token-bowl config set api-key` (`token-bowl register NAME` creates one)"
)


class CliError(Exception):
    """An error the CLI reports as ``error: <message>`` and exits with ``exit_code``."""

    exit_code = EXIT_FAILURE


class UsageError(CliError):
    """The arguments cannot work together (exit code 2), found after parsing."""

    exit_code = EXIT_USAGE


def describe(exc: BaseException, base_url: str | None = None) -> tuple[str, int] | None:
    """``(one-line message, exit code)`` for a user error, ``None`` for anything else.

    ``base_url`` names the server in "could not reach" messages.
    """
    if isinstance(exc, CliError):
        return str(exc), exc.exit_code
    if isinstance(exc, ConfigError):
        return f"configuration: {exc}", EXIT_FAILURE
    if isinstance(exc, TokenBowlError):
        return _describe_api_error(exc, base_url), EXIT_FAILURE
    return None


def _describe_api_error(exc: TokenBowlError, base_url: str | None) -> str:
    where = f" at {base_url}" if base_url else ""
    if isinstance(exc, AuthenticationError):
        if exc.status_code is None and "required" in exc.message.lower():
            return f"authentication failed: {NO_KEY_HINT}"
        return f"authentication failed: {exc.message} (check the API key)"
    if isinstance(exc, TimeoutError):
        return f"timed out waiting for the server{where}: {exc.message}"
    if isinstance(exc, NetworkError):
        return f"cannot reach the server{where}: {_tail(exc.message)}"
    if isinstance(exc, NotFoundError):
        return f"not found: {exc.message}"
    if isinstance(exc, ConflictError):
        return f"conflict: {exc.message}"
    if isinstance(exc, PermissionDeniedError):
        return f"permission denied: {exc.message}"
    if isinstance(exc, ValidationError):
        return f"invalid input: {_validation_detail(exc.detail) or exc.message}"
    if isinstance(exc, RateLimitError):
        after = f" (retry in {exc.retry_after:g} s)" if exc.retry_after is not None else ""
        return f"rate limited: {exc.message}{after}"
    if isinstance(exc, ServerError):
        return f"server error {exc.status_code}: {exc.message}"
    if isinstance(exc, ProtocolError):
        return f"unexpected answer from the server{where}: {exc.message}"
    status = f" {exc.status_code}" if exc.status_code is not None else ""
    return f"request failed{status}: {exc.message}"


def _tail(message: str) -> str:
    # The SDK says "GET http://host/path: could not reach the server (...)"; keep the reason.
    marker = "could not reach the server"
    if marker in message:
        reason = message.split(marker, 1)[1].strip()
        return reason.strip("()") or message
    return message


def _validation_detail(detail: Any) -> str | None:
    """FastAPI's per-field list as ``field: problem; ...``; a string detail as is."""
    if isinstance(detail, str):
        return detail
    if not isinstance(detail, list):
        return None
    parts: list[str] = []
    for item in detail:
        if not isinstance(item, dict):
            continue
        loc = [str(p) for p in item.get("loc", []) if p not in ("body", "query", "path")]
        msg = str(item.get("msg", "invalid"))
        parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    return "; ".join(parts) or None
