"""Which database failures mean "storage is unavailable right now", as opposed to a bug.

A full disk, an I/O error, a database that is restarting or unreachable, a connection that
died under us: the request did nothing and may be retried later, so callers get
:class:`~token_bowl_chat_server.domain.errors.StorageUnavailable` (503
``storage_unavailable``), not an internal error. Anything else is left as it is.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa

from token_bowl_chat_server.domain.errors import StorageUnavailable

logger = logging.getLogger(__name__)

# SQLite primary result codes (https://sqlite.org/rescode.html) for trouble with the file,
# the disk or a lock, never with the statement.
_SQLITE_UNAVAILABLE = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_NOMEM,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
}
# The same, by message, for drivers that do not carry the code through.
_SQLITE_MESSAGES = (
    "database or disk is full",
    "disk i/o error",
    "database is locked",
    "unable to open database file",
    "attempt to write a readonly database",
)
# PostgreSQL SQLSTATE classes (https://www.postgresql.org/docs/current/errcodes-appendix.html):
# 08 connection exception, 53 insufficient resources (disk full, out of memory, too many
# connections), 57 operator intervention (shutdown, cannot connect now), 58 system error.
_POSTGRES_CLASSES = {"08", "53", "57", "58"}


def is_unavailable(error: BaseException) -> bool:
    if isinstance(error, sa.DBAPIError):
        if error.connection_invalidated or isinstance(error, sa.InterfaceError):
            return True
        orig = error.orig
        code = getattr(orig, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF in _SQLITE_UNAVAILABLE
        sqlstate = getattr(orig, "sqlstate", None)
        if isinstance(sqlstate, str):
            return sqlstate[:2] in _POSTGRES_CLASSES
        return isinstance(error, sa.OperationalError) and str(orig).lower().startswith(
            _SQLITE_MESSAGES
        )
    # No connection to be had: refused or reset (the driver's own OSError, not wrapped), or
    # the pool had none to give in time.
    return isinstance(error, OSError | sa.TimeoutError | sa.DisconnectionError)


@contextmanager
def unavailable_as_domain_error() -> Iterator[None]:
    """Raise :class:`StorageUnavailable` for a failure :func:`is_unavailable` recognises."""
    try:
        yield
    except Exception as error:
        if not is_unavailable(error):
            raise
        logger.warning("storage unavailable: %s", error)
        raise StorageUnavailable("Storage is unavailable; try again shortly") from error
