"""The DomainError tree. ``api/errors.py`` maps each class to an HTTP status / WS error frame.

    DomainError
    ├── NotAuthenticated        bad or missing credentials
    ├── Forbidden               authenticated, but the role or owner check failed
    ├── NotFound                the thing does not exist, or the caller may not see it
    ├── Conflict                a unique name is taken
    ├── InvalidInput            well-formed but unacceptable input
    │   ├── RecipientIsViewer   (upstream answers this one with 400 too)
    │   └── InvalidField        one body field refused for a reason the schema cannot tell (422)
    ├── RateLimited             too many actions; ``retry_after`` seconds until the next
    ├── BotTurnLimitReached     too many bot room messages in a row; a human must post first
    └── StorageUnavailable      the database cannot store or read now (disk full, down)

``message`` is upstream's human-readable text; ``code`` is the stable error code.
"""

from __future__ import annotations

from token_bowl_chat.protocol.errors import ErrorCode


class DomainError(Exception):
    default_code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class NotAuthenticated(DomainError):
    default_code = ErrorCode.AUTHENTICATION_REQUIRED


class Forbidden(DomainError):
    default_code = ErrorCode.PERMISSION_DENIED


class NotFound(DomainError):
    default_code = ErrorCode.NOT_FOUND


class Conflict(DomainError):
    default_code = ErrorCode.USERNAME_TAKEN


class InvalidInput(DomainError):
    default_code = ErrorCode.VALIDATION_ERROR


class RecipientIsViewer(InvalidInput):
    default_code = ErrorCode.RECIPIENT_IS_VIEWER


class InvalidField(InvalidInput):
    """A body field refused by a rule that depends on settings or state (a webhook URL to a
    refused address), so the request schema could not refuse it. REST answers it exactly
    like a schema error: 422 with one ``detail`` item for ``field``."""

    def __init__(self, message: str, field: str, value: object, kind: str) -> None:
        super().__init__(message, ErrorCode.VALIDATION_ERROR)
        self.field = field
        self.value = value
        self.kind = kind  # the detail item's ``type``


class RateLimited(DomainError):
    default_code = ErrorCode.RATE_LIMITED

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Rate limit exceeded; retry in {retry_after:.1f} s")
        self.retry_after = retry_after


class BotTurnLimitReached(DomainError):
    """The room has had ``cap`` bot messages in a row; bots wait until a non-bot posts."""

    default_code = ErrorCode.BOT_TURN_LIMIT

    def __init__(self, cap: int) -> None:
        super().__init__(
            f"Bot turn limit reached: at most {cap} bot messages in a row in the room; "
            "wait until someone who is not a bot posts there"
        )
        self.cap = cap


class StorageUnavailable(DomainError):
    """Nothing was done; the same request may succeed once the database is back."""

    default_code = ErrorCode.STORAGE_UNAVAILABLE
