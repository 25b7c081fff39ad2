"""Messages: appended in batches (group commit), read back with their authors' profiles."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    RowMapping,
    Select,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.models import MessageType, Role
from token_bowl_chat_server.domain.bot_turns import Turn, admit_turns, streak_after
from token_bowl_chat_server.domain.entities import Message, User
from token_bowl_chat_server.domain.errors import (
    BotTurnLimitReached,
    DomainError,
    NotAuthenticated,
    NotFound,
)
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.driver_sql import DriverStatement
from token_bowl_chat_server.storage.tables import counters, messages, read_states, users

_from = users.alias("from_user")
_to = users.alias("to_user")

MESSAGE_COLUMNS = (
    messages.c.seq,
    messages.c.id,
    messages.c.from_user_id,
    func.coalesce(_from.c.username, messages.c.from_username).label("from_username"),
    _from.c.logo.label("from_user_logo"),
    _from.c.emoji.label("from_user_emoji"),
    # The author's current role; once the account is gone, whether it was a bot when it
    # sent (upstream answered false then, so a deleted bot's messages looked human).
    func.coalesce(_from.c.role == Role.BOT.value, messages.c.from_bot).label("from_user_bot"),
    messages.c.to_user_id,
    func.coalesce(_to.c.username, messages.c.to_username).label("to_username"),
    messages.c.content,
    messages.c.created_at,
    messages.c.client_message_id,
    messages.c.edited_at,
)

# Deleted messages stay as tombstones (storage/edits.py); every listing and lookup skips them.
NOT_DELETED = messages.c.deleted_at.is_(None)

# The group commit's statements, built once: building them per batch (and SQLAlchemy's cache
# key of each new statement) was a tenth of a send's CPU time in profiles.
_MESSAGE_FIELDS = (
    "seq",
    "id",
    "message_type",
    "from_user_id",
    "from_username",
    "to_user_id",
    "to_username",
    "content",
    "created_at",
    "client_message_id",
    "from_bot",
)
_INSERT_MESSAGE = DriverStatement(insert(messages), _MESSAGE_FIELDS)
_BUMP_READ_STATE = DriverStatement(
    update(read_states)
    .where(read_states.c.user_id == bindparam("uid"))
    .values(
        room_seen=read_states.c.room_seen + bindparam("seen"),
        direct_unread=read_states.c.direct_unread + bindparam("unread"),
    )
)
# How a batch moves the bot streak: set it to a value, add to it, or leave it (None).
StreakChange = tuple[Literal["set", "add"] | None, int]
_TAKE_SEQS = update(counters).where(counters.c.id == 1).returning(counters.c.last_seq)
_NEXT = {
    "last_seq": counters.c.last_seq + bindparam("n"),
    "room_messages": counters.c.room_messages + bindparam("rooms"),
}
_ALLOCATE = {
    None: DriverStatement(_TAKE_SEQS.values(_NEXT)),
    "set": DriverStatement(_TAKE_SEQS.values({**_NEXT, "bot_streak": bindparam("streak")})),
    "add": DriverStatement(
        _TAKE_SEQS.values({**_NEXT, "bot_streak": counters.c.bot_streak + bindparam("streak")})
    ),
}


def select_messages() -> Select[Any]:
    """Messages joined with their authors' and recipients' current profiles."""
    return select(*MESSAGE_COLUMNS).select_from(
        messages.outerjoin(_from, _from.c.id == messages.c.from_user_id).outerjoin(
            _to, _to.c.id == messages.c.to_user_id
        )
    )


def message_from_row(row: RowMapping) -> Message:
    return Message(
        seq=row["seq"],
        id=row["id"],
        from_user_id=row["from_user_id"],
        from_username=row["from_username"],
        from_user_logo=row["from_user_logo"],
        from_user_emoji=row["from_user_emoji"],
        from_user_bot=bool(row["from_user_bot"]),
        to_user_id=row["to_user_id"],
        to_username=row["to_username"],
        content=row["content"],
        created_at=row["created_at"],
        client_message_id=row["client_message_id"],
        edited_at=row["edited_at"],
    )


@dataclass(frozen=True, slots=True)
class NewMessage:
    id: str
    sender: User
    recipient: User | None
    content: str
    created_at: int
    client_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class Appended:
    message: Message
    created: bool  # False: a retry of an earlier send with the same client message id


@dataclass(frozen=True, slots=True)
class Refused:
    """Not stored, by a rule judged inside the transaction (the bot-turn cap); the rest of
    the batch is stored all the same."""

    error: DomainError


def _turn(new: NewMessage) -> Turn:
    if new.recipient is not None:
        return Turn.OTHER
    return Turn.BOT_ROOM if new.sender.role is Role.BOT else Turn.HUMAN_ROOM


def _stored(new: NewMessage, seq: int) -> Message:
    return Message(
        seq=seq,
        id=new.id,
        from_user_id=new.sender.id,
        from_username=new.sender.username,
        from_user_logo=new.sender.logo,
        from_user_emoji=new.sender.emoji,
        from_user_bot=new.sender.role is Role.BOT,
        to_user_id=new.recipient.id if new.recipient else None,
        to_username=new.recipient.username if new.recipient else None,
        content=new.content,
        created_at=new.created_at,
        client_message_id=new.client_message_id,
    )


def delivered_to(user_id: str) -> ColumnElement[bool]:
    """What live delivery sends the user: others' room messages and DMs addressed to them."""
    return or_(
        and_(
            messages.c.message_type == MessageType.ROOM.value,
            or_(messages.c.from_user_id.is_(None), messages.c.from_user_id != user_id),
        ),
        messages.c.to_user_id == user_id,
    )


class SqlMessageStore:
    def __init__(
        self,
        db: Database,
        bot_turn_cap: int = 0,
        on_commit: Callable[[float, int], None] | None = None,
    ) -> None:
        """``bot_turn_cap``: the most bot room messages in a row (0: no cap). ``on_commit``
        is told the seconds and the count of new messages of every group commit that
        succeeded (observability.py); it must not block."""
        self.db = db
        self.bot_turn_cap = bot_turn_cap
        self.on_commit = on_commit

    async def append_batch(self, batch: Sequence[NewMessage]) -> list[Appended | Refused]:
        """Store a batch in ONE transaction and return each result in input order.

        A message whose sender or recipient was deleted after it was checked (a bot deleted,
        an account removed by an admin) breaks a foreign key and fails the batch; once the
        batcher has retried it alone, that is reported as what it is: ``NotAuthenticated``
        for a sender that is gone (its key no longer exists), ``NotFound`` for a recipient.
        """
        started = time.perf_counter()
        try:
            results = await self._append_batch(batch)
        except IntegrityError:
            gone = await self._party_gone(batch[0]) if len(batch) == 1 else None
            if gone is None:
                raise
            raise gone from None
        if self.on_commit is not None:
            stored = sum(1 for r in results if isinstance(r, Appended) and r.created)
            self.on_commit(time.perf_counter() - started, stored)
        return results

    async def _party_gone(self, new: NewMessage) -> DomainError | None:
        wanted = [new.sender.id] + ([new.recipient.id] if new.recipient else [])
        async with self.db.read() as conn:
            rows = await conn.execute(select(users.c.id).where(users.c.id.in_(wanted)))
            found = set(rows.scalars())
        if new.sender.id not in found:
            return NotAuthenticated("Invalid or missing authentication credentials")
        if new.recipient is not None and new.recipient.id not in found:
            return NotFound(f"User {new.recipient.username} not found", ErrorCode.USER_NOT_FOUND)
        return None

    async def _append_batch(self, batch: Sequence[NewMessage]) -> list[Appended | Refused]:
        """:meth:`append_batch` without the translation of a vanished party: one write
        transaction run whole as synchronous code (on SQLite in one trip to the writer
        thread, see ``Database.write_sync``)."""
        return await self.db.write_sync(lambda conn: self._append_in(conn, batch))

    def _append_in(self, conn: Connection, batch: Sequence[NewMessage]) -> list[Appended | Refused]:
        """Store ``batch`` in the open transaction of ``conn``.

        ``seq`` values are taken from the counter row inside the transaction; the row lock
        makes them commit in order. Unread counters move in the same transaction, and so
        does the room's bot streak: a bot room message beyond the cap is ``Refused`` (not
        stored, judged in ``seq`` order), and the others are stored.
        """
        judge = self.bot_turn_cap > 0 and any(_turn(new) is Turn.BOT_ROOM for new in batch)
        streak = 0
        if judge or any(new.client_message_id for new in batch):
            # Take the counter row lock before looking for earlier sends, so a retry in
            # a concurrent transaction (PostgreSQL) waits and then sees the first one,
            # and before reading the bot streak, so no other writer moves it until we
            # commit: the cap holds exactly, across server processes too.
            streak = (
                conn.execute(
                    select(counters.c.bot_streak).where(counters.c.id == 1).with_for_update()
                )
            ).scalar_one()
        existing = self._existing_by_client_id(conn, batch)
        fresh: list[NewMessage] = []
        claimed: dict[tuple[str, str], NewMessage] = {}
        for new in batch:
            key = (new.sender.id, new.client_message_id or "")
            if new.client_message_id is None:
                fresh.append(new)
            elif key not in existing and key not in claimed:
                claimed[key] = new
                fresh.append(new)
        refused: set[str] = set()
        new_streak: StreakChange
        if judge:
            outcome = admit_turns(streak, [_turn(new) for new in fresh], self.bot_turn_cap)
            refused = {n.id for n, ok in zip(fresh, outcome.admitted, strict=True) if not ok}
            fresh = [new for new in fresh if new.id not in refused]
            new_streak = ("set", outcome.streak)
        else:
            reset, added = streak_after([_turn(new) for new in fresh])
            new_streak = ("set", added) if reset else ("add", added) if added else (None, 0)
        seqs = self._allocate(conn, fresh, new_streak)
        if fresh:
            self._insert(conn, fresh, seqs)
            self._bump_counters(conn, fresh)
        results: list[Appended | Refused] = []
        by_id = {new.id: _stored(new, seq) for new, seq in zip(fresh, seqs, strict=True)}
        for new in batch:
            if new.id in by_id:
                results.append(Appended(by_id[new.id], created=True))
                continue
            key = (new.sender.id, new.client_message_id or "")
            if new.id in refused or (key in claimed and claimed[key].id in refused):
                results.append(Refused(BotTurnLimitReached(self.bot_turn_cap)))
                continue
            earlier = existing.get(key) or by_id[claimed[key].id]
            results.append(Appended(earlier, created=False))
        return results

    def _existing_by_client_id(
        self, conn: Connection, batch: Sequence[NewMessage]
    ) -> dict[tuple[str, str], Message]:
        wanted = [(n.sender.id, n.client_message_id) for n in batch if n.client_message_id]
        if not wanted:
            return {}
        found: dict[tuple[str, str], Message] = {}
        for sender_id, client_id in wanted:
            row = (
                (
                    conn.execute(
                        select_messages().where(
                            messages.c.from_user_id == sender_id,
                            messages.c.client_message_id == client_id,
                        )
                    )
                )
                .mappings()
                .first()
            )
            if row is not None:
                found[(sender_id, client_id or "")] = message_from_row(row)
        return found

    @staticmethod
    def _allocate(
        conn: Connection, fresh: Sequence[NewMessage], bot_streak: StreakChange
    ) -> list[int]:
        """Take ``seq`` values for ``fresh`` and move the bot streak as ``bot_streak`` says."""
        if not fresh:
            return []
        params = {"n": len(fresh), "rooms": sum(1 for new in fresh if new.recipient is None)}
        kind, streak = bot_streak
        if kind is not None:
            params["streak"] = streak
        last = _ALLOCATE[kind].execute(conn, params).scalar_one()
        first = last - len(fresh) + 1
        return list(range(first, last + 1))

    @staticmethod
    def _insert(conn: Connection, fresh: Sequence[NewMessage], seqs: Sequence[int]) -> None:
        _INSERT_MESSAGE.execute_many(
            conn,
            [
                {
                    "seq": seq,
                    "id": new.id,
                    "message_type": (
                        MessageType.ROOM.value
                        if new.recipient is None
                        else MessageType.DIRECT.value
                    ),
                    "from_user_id": new.sender.id,
                    "from_username": new.sender.username,
                    "to_user_id": new.recipient.id if new.recipient else None,
                    "to_username": new.recipient.username if new.recipient else None,
                    "content": new.content,
                    "created_at": new.created_at,
                    "client_message_id": new.client_message_id,
                    "from_bot": new.sender.role is Role.BOT,
                }
                for new, seq in zip(fresh, seqs, strict=True)
            ],
        )

    @staticmethod
    def _bump_counters(conn: Connection, fresh: Sequence[NewMessage]) -> None:
        # Own room messages count as seen; a DM to someone else is one more unread for them.
        seen: Counter[str] = Counter()
        unread: Counter[str] = Counter()
        for new in fresh:
            if new.recipient is None:
                seen[new.sender.id] += 1
            elif new.recipient.id != new.sender.id:
                unread[new.recipient.id] += 1
        rows = [
            {"uid": uid, "seen": seen[uid], "unread": unread[uid]}
            for uid in set(seen) | set(unread)
        ]
        if not rows:  # only DMs to oneself, which change no counter
            return
        _BUMP_READ_STATE.execute_many(conn, rows)

    async def by_id(self, message_id: str) -> Message | None:
        async with self.db.read() as conn:
            row = (
                (
                    await conn.execute(
                        select_messages().where(messages.c.id == message_id, NOT_DELETED)
                    )
                )
                .mappings()
                .first()
            )
        return message_from_row(row) if row else None

    async def _page(
        self, where: ColumnElement[bool], limit: int, offset: int, total_query: Any = None
    ) -> tuple[list[Message], int]:
        """One page, newest first, with the total. ``total_query`` counts faster than
        ``count(*)`` over ``where`` when there is such a way."""
        if total_query is None:
            total_query = select(func.count()).select_from(messages).where(where)
        async with self.db.read() as conn:
            total = (await conn.execute(total_query)).scalar_one()
            rows = await conn.execute(
                select_messages()
                .where(where)
                .order_by(messages.c.seq.desc())
                .limit(limit)
                .offset(offset)
            )
            return [message_from_row(row) for row in rows.mappings()], int(total)

    async def room_history(
        self, limit: int, offset: int, since: int | None
    ) -> tuple[list[Message], int]:
        """Room messages, newest first, with the total that match ``since``."""
        where = and_(messages.c.message_type == MessageType.ROOM.value, NOT_DELETED)
        if since is not None:
            return await self._page(and_(where, messages.c.created_at > since), limit, offset)
        # The whole room: its size is a counter kept with every insert, no count(*) needed.
        room_size = select(counters.c.room_messages).where(counters.c.id == 1)
        return await self._page(where, limit, offset, room_size)

    async def direct_history(
        self, user_id: str | None, limit: int, offset: int, since: int | None
    ) -> tuple[list[Message], int]:
        """The user's DMs, sent or received, newest first (``None``: every user's DMs)."""
        where = and_(messages.c.message_type == MessageType.DIRECT.value, NOT_DELETED)
        if user_id is not None:
            where = and_(
                where, or_(messages.c.from_user_id == user_id, messages.c.to_user_id == user_id)
            )
        if since is not None:
            where = and_(where, messages.c.created_at > since)
        return await self._page(where, limit, offset)

    async def last_seq(self) -> int:
        async with self.db.read() as conn:
            value = await conn.execute(select(counters.c.last_seq).where(counters.c.id == 1))
            return int(value.scalar_one())

    async def delivered_after(self, user_id: str, after_seq: int, limit: int) -> list[Message]:
        """What live delivery would have sent ``user_id`` after ``after_seq``, oldest first."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select_messages()
                .where(messages.c.seq > after_seq, delivered_to(user_id), NOT_DELETED)
                .order_by(messages.c.seq)
                .limit(limit)
            )
            return [message_from_row(row) for row in rows.mappings()]
