"""Log configuration, with API keys redacted from every record.

uvicorn logs request paths with their query strings, and the upstream client puts its key in
``/ws?api_key=...``; the filter rewrites such values before any handler formats them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_SECRET = re.compile(r"(api_key=)[^&\s\"']+", re.IGNORECASE)


def redact(value: Any) -> Any:
    if isinstance(value, str):
        return _SECRET.sub(r"\1[redacted]", value)
    return value


# uvicorn's sans-I/O WebSocket protocol logs this after every denial response (the HTTP 401
# for a bad key), because it only counts an accepted upgrade as a completed handshake. Our
# endpoint always accepts or denies, so here the line is noise, not a bug report.
_DENIAL_NOISE = "ASGI callable returned without completing handshake."
# uvicorn logs a client's text frame that is not UTF-8 as an ERROR with a traceback, then
# closes the connection with 1007 as RFC 6455 prescribes. The fault is the client's, and any
# client could fill the log with tracebacks at will: one INFO line instead.
_CLIENT_FAULT_AS_ERROR = "Invalid UTF-8 sequence received from client."


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _DENIAL_NOISE:
            return False  # see _DENIAL_NOISE
        if record.msg == _CLIENT_FAULT_AS_ERROR:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info = record.exc_text = None
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: redact(arg) for key, arg in record.args.items()}
        return True


def log_config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn and our own loggers."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactSecrets}},
        "formatters": {
            "default": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["default"], "level": level, "propagate": False},
            "token_bowl_chat_server": {
                "handlers": ["default"],
                "level": level,
                "propagate": False,
            },
        },
    }
