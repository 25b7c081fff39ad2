"""Which database errors become 503 ``storage_unavailable`` and which stay bugs (500): the
classification in ``storage/failures.py``, on the exceptions the drivers really raise."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import exc as sa

from token_bowl_chat_server.domain.errors import StorageUnavailable
from token_bowl_chat_server.storage.failures import is_unavailable, unavailable_as_domain_error


def _sqlite(message: str, code: int | None) -> sa.OperationalError:
    orig = sqlite3.OperationalError(message)
    if code is not None:
        orig.sqlite_errorcode = code
    return sa.OperationalError("INSERT ...", {}, orig)


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (_sqlite("database or disk is full", sqlite3.SQLITE_FULL), True),
        (_sqlite("disk I/O error", sqlite3.SQLITE_IOERR_WRITE), True),  # an extended code
        (_sqlite("database is locked", sqlite3.SQLITE_BUSY), True),
        (_sqlite("database or disk is full", None), True),  # no code: by message
        (_sqlite("no such table: messages", sqlite3.SQLITE_ERROR), False),  # a bug
        (_sqlite("no such table: messages", None), False),
        (sa.OperationalError("SELECT 1", {}, _PgError("57P01")), True),  # admin shutdown
        (sa.OperationalError("SELECT 1", {}, _PgError("08006")), True),  # connection failure
        (sa.OperationalError("SELECT 1", {}, _PgError("53100")), True),  # disk full
        (sa.IntegrityError("INSERT", {}, _PgError("23505")), False),  # unique violation
        (sa.ProgrammingError("SELECT", {}, _PgError("42P01")), False),  # undefined table
        (sa.InterfaceError("SELECT 1", {}, Exception("connection is closed")), True),
        (ConnectionRefusedError(111, "Connection refused"), True),  # at connect, unwrapped
        (sa.TimeoutError("QueuePool limit reached"), True),
        (ValueError("not a database problem"), False),
    ],
)
def test_storage_failures_are_told_from_bugs(error: BaseException, unavailable: bool) -> None:
    assert is_unavailable(error) is unavailable


def test_only_unavailability_becomes_storage_unavailable() -> None:
    with pytest.raises(StorageUnavailable) as refused, unavailable_as_domain_error():
        raise _sqlite("database or disk is full", sqlite3.SQLITE_FULL)
    assert refused.value.code == "storage_unavailable"
    assert isinstance(refused.value.__cause__, sa.OperationalError)
    bug = _sqlite("no such table: messages", sqlite3.SQLITE_ERROR)
    with pytest.raises(sa.OperationalError), unavailable_as_domain_error():
        raise bug
