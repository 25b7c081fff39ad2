"""Stable error codes.

Every REST error body carries ``{"detail": ..., "code": ...}`` and every WebSocket error frame
``{"type": "error", "error": ..., "code": ...}``. ``detail`` / ``error`` keep upstream's
human-readable text; ``code`` is the protocol extension a program should branch on. Codes never
change meaning once published.
"""

from enum import StrEnum


class ErrorCode(StrEnum):
    # authentication and authorisation
    AUTHENTICATION_REQUIRED = "authentication_required"
    PERMISSION_DENIED = "permission_denied"
    ADMIN_REQUIRED = "admin_required"
    # input
    # REST body / query / path validation, text with a NUL or a lone surrogate included
    VALIDATION_ERROR = "validation_error"
    # not JSON: syntax, invalid UTF-8, nesting beyond the parser, integers of 4300+ digits
    INVALID_JSON = "invalid_json"
    # a frame of the wrong shape: not an object, a wrong field type, unstorable text, a
    # number out of range, a binary frame
    INVALID_FRAME = "invalid_frame"
    UNKNOWN_TYPE = "unknown_type"
    MISSING_FIELD = "missing_field"
    CONTENT_TOO_LONG = "content_too_long"
    FRAME_TOO_LARGE = "frame_too_large"
    INVALID_TIMESTAMP = "invalid_timestamp"
    INVALID_ID = "invalid_id"
    # state
    NOT_FOUND = "not_found"
    USER_NOT_FOUND = "user_not_found"
    MESSAGE_NOT_FOUND = "message_not_found"
    # the message was deleted: editing or deleting it again changes nothing (404)
    MESSAGE_DELETED = "message_deleted"
    BOT_NOT_FOUND = "bot_not_found"
    CONVERSATION_NOT_FOUND = "conversation_not_found"
    USERNAME_TAKEN = "username_taken"
    RECIPIENT_IS_VIEWER = "recipient_is_viewer"
    BOT_REGISTRATION_FORBIDDEN = "bot_registration_forbidden"
    ADMIN_REGISTRATION_FORBIDDEN = "admin_registration_forbidden"
    CLIENT_MESSAGE_ID_CONFLICT = "client_message_id_conflict"
    # demoting or deleting the only admin (the server would have nobody to administer it)
    LAST_ADMIN = "last_admin"
    # limits
    RATE_LIMITED = "rate_limited"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    # a bot room message beyond the cap on bot messages in a row; a human message resets it
    BOT_TURN_LIMIT = "bot_turn_limit"
    # service
    NOT_CONFIGURED = "not_configured"
    NOT_READY = "not_ready"
    STORAGE_UNAVAILABLE = "storage_unavailable"  # 503: retry later (disk full, database down)
    # transport-level
    NOT_FOUND_ROUTE = "route_not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    INTERNAL_ERROR = "internal_error"
