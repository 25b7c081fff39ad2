"""The database handle: engine, SQLite tuning, migrations, and transaction scopes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from token_bowl_chat_server.storage.failures import unavailable_as_domain_error

_MIGRATIONS = Path(__file__).parent / "migrations"

T = TypeVar("T")

_BUSY = object()  # Database._inline_read could not run without waiting
_SQLITE_BUSY_OR_LOCKED = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED

# Connections kept open. Every REST request reads (its user by key hash, at least), so the read
# pool must cover the requests in flight at once: SQLAlchemy's default keeps 5 and closes any
# overflow connection as soon as it is returned, so 16 concurrent requests kept opening and
# closing connections (on SQLite a new aiosqlite thread, a file open and the PRAGMAs each; on
# PostgreSQL a new backend process). Each pool opens up to as many again for a burst and closes
# the excess when it is returned. On PostgreSQL concurrent writes (read marks, registrations)
# take connections too; one server then holds at most 2 x (24 + 16) = 80 connections, under the
# default max_connections of 100.
READ_POOL_SIZE = 24
# SQLite: threads (each with a connection of its own) that run read_sync's hot point reads
# when the event loop's own connection would have to wait.
SQLITE_READ_THREADS = 4
POSTGRES_WRITE_POOL_SIZE = 16


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


class Database:
    """Owns the engines. Writes go through :meth:`write`, reads through :meth:`read`.

    Writes and reads take their connections from separate pools, so readers holding every
    read connection (slow history queries under load) cannot make a write, the group commit
    above all, wait for a connection until the pool times out and fails a whole batch.

    SQLite allows one writer at a time; rather than let concurrent writers spin on
    ``SQLITE_BUSY``, writes on SQLite queue on an asyncio lock, and the write pool is that one
    connection, kept open. Reads never wait for writes (WAL mode).
    """

    def __init__(self, url: str, sqlite_synchronous: str = "FULL") -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        path = _sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # An in-memory SQLite database has one static connection and no pool to size.
        in_memory = self.is_sqlite and path is None
        read_pool: dict[str, Any] = (
            {} if in_memory else {"pool_size": READ_POOL_SIZE, "max_overflow": READ_POOL_SIZE}
        )
        if not self.is_sqlite:
            # A database server restarted under us leaves every pooled connection dead; without
            # a ping at checkout each one failed a request with 503 after the database was
            # back (two nodes x two pools: dozens of errors after "recovered"). One round trip
            # per checkout, on loopback about 0.1 ms.
            read_pool["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(url, **read_pool)
        # On SQLite the write lock admits one writer at a time: one connection is enough.
        writer_pool: dict[str, Any] = (
            {"pool_size": 1, "max_overflow": 0}
            if self.is_sqlite
            else {
                "pool_size": POSTGRES_WRITE_POOL_SIZE,
                "max_overflow": POSTGRES_WRITE_POOL_SIZE,
                "pool_pre_ping": True,
            }
        )
        self.write_engine: AsyncEngine = create_async_engine(url, **writer_pool)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        # SQLite: write_sync's transactions run whole on one thread of their own, on a plain
        # (synchronous) connection; the write lock keeps them and write()'s apart.
        # read_sync's reads likewise, on threads of their own.
        self._sync_writer: Engine | None = None
        self._sync_thread: ThreadPoolExecutor | None = None
        self._writer_conn: Connection | None = None  # used on the writer thread only
        self._sync_reader: Engine | None = None
        self._read_threads: ThreadPoolExecutor | None = None
        # SQLite: read_sync's connection on the event loop's thread, opened on first use.
        self._inline_conn: Connection | None = None
        self._inline_opening = False
        if self.is_sqlite and not in_memory:
            self._sync_writer = _sync_sqlite_engine(url, 1, sqlite_synchronous)
            self._sync_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
            # One more connection than threads: the event loop's own (read_sync).
            self._sync_reader = _sync_sqlite_engine(
                url, SQLITE_READ_THREADS + 1, sqlite_synchronous
            )
            self._read_threads = ThreadPoolExecutor(
                SQLITE_READ_THREADS, thread_name_prefix="sqlite-reader"
            )
        if self.is_sqlite:
            for engine in (self.engine.sync_engine, self.write_engine.sync_engine):
                _tune_sqlite(engine, sqlite_synchronous)

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        async with self.write_engine.begin() as conn:
            await conn.run_sync(_upgrade)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction; committed on normal exit, rolled back on an exception.

        Raises ``StorageUnavailable`` when the database cannot take it now (disk full, down).
        """
        with unavailable_as_domain_error():
            if self._write_lock is None:
                async with self.write_engine.begin() as conn:
                    yield conn
                return
            async with self._write_lock, self.write_engine.begin() as conn:
                yield conn

    async def write_sync(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one write transaction, as synchronous code: committed when it
        returns, rolled back when it raises (``StorageUnavailable`` as :meth:`write`).

        On SQLite it runs whole on the writer thread: one thread round trip per transaction,
        where the async connection takes one or more per statement, each waiting for the
        event loop and then the driver's thread to get a core; on a busy machine those
        waits were most of a group commit's time. Elsewhere it runs on the async
        connection (``run_sync``), with the same statements.
        """
        if self._sync_writer is None or self._sync_thread is None:
            async with self.write() as conn:
                return await conn.run_sync(work)

        def transact() -> T:
            conn = self._writer_connection()
            with conn.begin():
                return work(conn)

        with unavailable_as_domain_error():
            assert self._write_lock is not None
            async with self._write_lock:
                running = self._sync_thread.submit(transact)
                try:
                    return await _outcome(running)
                except asyncio.CancelledError:
                    # The transaction goes on in its thread: hold the lock until it ends.
                    await asyncio.wait([_outcome(running)])
                    raise

    def _writer_connection(self) -> Connection:
        """The writer thread's connection, kept checked out: taking one from the pool and
        returning it cost each group commit a rollback (the pool's reset) and a tenth of its
        CPU time in pool bookkeeping, all of it holding the GIL the event loop needs. A
        connection the driver reported dead is invalidated by SQLAlchemy and replaced at
        its next use."""
        assert self._sync_writer is not None
        if self._writer_conn is None or self._writer_conn.closed:
            self._writer_conn = self._sync_writer.connect()
        return self._writer_conn

    def _close_writer_connection(self) -> None:
        if self._writer_conn is not None:
            self._writer_conn.close()
            self._writer_conn = None
        assert self._sync_writer is not None
        self._sync_writer.dispose()

    async def read_sync(self, work: Callable[[Connection], T]) -> T:
        """``work`` as synchronous code on a read connection: for the hot point reads (unread
        counts), a row or two by key. On SQLite it runs at once on the event loop's thread,
        on a connection of its own that never waits for a lock: in WAL mode a read waits for
        nothing but the page cache and, rarely, a lock held for a moment (then it runs on a
        reader thread instead, which waits as long as it must). A thread round trip cost more
        than the read itself (about 0.1 ms against 0.02). Elsewhere it runs on the async
        connection (``run_sync``). Raises ``StorageUnavailable`` as :meth:`read`.
        """
        if self._sync_reader is None or self._read_threads is None:
            async with self.read() as conn:
                return await conn.run_sync(work)
        sync_reader = self._sync_reader
        loop = asyncio.get_running_loop()
        if self._inline_conn is None and not self._inline_opening:
            # Opened on a reader thread (its PRAGMAs may wait for a lock), which keeps it
            # even if this caller is cancelled meanwhile; concurrent first reads use threads.
            self._inline_opening = True
            with unavailable_as_domain_error():
                await loop.run_in_executor(self._read_threads, self._open_inline)
        inline = self._inline_read(work)
        if inline is not _BUSY:
            return cast(T, inline)

        def run() -> T:
            with sync_reader.connect() as conn:
                return work(conn)

        with unavailable_as_domain_error():
            return await loop.run_in_executor(self._read_threads, run)

    def _open_inline(self) -> None:
        assert self._sync_reader is not None
        try:
            conn = self._sync_reader.connect()
            conn.exec_driver_sql("PRAGMA busy_timeout=0")  # never wait on the loop's thread
            conn.rollback()
            self._inline_conn = conn
        finally:
            self._inline_opening = False

    def _inline_read(self, work: Callable[[Connection], T]) -> T | object:
        """``work`` on the loop's own SQLite connection, or ``_BUSY`` if it could not run
        without waiting (or failed: the reader threads try again and report the error)."""
        conn = self._inline_conn
        if conn is None:
            return _BUSY
        try:
            try:
                return work(conn)
            finally:
                conn.rollback()  # ends the read transaction: a held snapshot stalls checkpoints
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlite_errorcode", None) not in _SQLITE_BUSY_OR_LOCKED:
                self._drop_inline()  # something else: a new connection next time
            return _BUSY

    def _drop_inline(self) -> None:
        conn, self._inline_conn = self._inline_conn, None
        if conn is not None:
            with contextlib.suppress(DBAPIError):
                conn.invalidate()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """Raises ``StorageUnavailable`` when the database cannot be reached now."""
        with unavailable_as_domain_error():
            async with self.engine.connect() as conn:
                yield conn

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def close(self) -> None:
        await self.engine.dispose()
        await self.write_engine.dispose()
        if self._sync_writer is not None and self._sync_thread is not None:
            await asyncio.get_running_loop().run_in_executor(
                self._sync_thread, self._close_writer_connection
            )
            self._sync_thread.shutdown(wait=False)
        if self._sync_reader is not None and self._read_threads is not None:
            if self._inline_conn is not None:
                self._inline_conn.close()
                self._inline_conn = None
            self._sync_reader.dispose()
            self._read_threads.shutdown(wait=False)


def _outcome(running: Future[T]) -> asyncio.Future[T]:
    """What ``running`` (on a thread) will return or raise, to await on the event loop.

    Unlike ``asyncio.wrap_future``, cancelling the awaitable never cancels ``running``: a
    transaction queued for its thread runs even if its caller gave up. And one hop fewer
    than ``asyncio.shield`` around ``run_in_executor``, on every group commit's path.
    """
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[T] = loop.create_future()

    def settle(done: Future[T]) -> None:
        if waiter.done():
            return
        if done.cancelled():  # the executor shut down before it ran
            waiter.cancel()
            return
        exc = done.exception()
        if exc is not None:
            waiter.set_exception(exc)
        else:
            waiter.set_result(done.result())

    running.add_done_callback(lambda done: loop.call_soon_threadsafe(settle, done))
    return waiter


def _sync_sqlite_engine(url: str, connections: int, synchronous: str) -> Engine:
    engine = create_engine(
        make_url(url).set(drivername="sqlite+pysqlite"),
        pool_size=connections,
        max_overflow=0,
        # Used on threads of their own; disposed from the event loop's at close.
        connect_args={"check_same_thread": False},
    )
    _tune_sqlite(engine, synchronous)
    return engine


def _tune_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL: readers never block the writer. synchronous=FULL syncs the WAL at every
        # commit, so an acknowledged message survives a power cut, not only a crash.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


def alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


# Any constant unique to this application: the key of its migration lock on PostgreSQL.
_MIGRATION_LOCK_KEY = 0x7B0C_4A7E


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Nodes that start together on one database migrate one at a time: the lock is held
        # to the end of this transaction, so the next node finds the schema at head. Without
        # it two nodes' CREATE TABLEs collided and one node failed to start.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    command.upgrade(alembic_config(connection), "head")
