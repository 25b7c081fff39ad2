"""Entities as the services see them: plain frozen dataclasses, no storage or wire types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from token_bowl_chat.protocol.models import MessageType, Role

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


# The last whole second formatted, and its text up to the seconds: a burst of messages shares
# its second, and building a datetime to format each one was a few percent of a send's time.
_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def iso(micros: int) -> str:
    """Upstream's timestamp format: ISO-8601 with ``+00:00``, microseconds dropped when 0."""
    global _last_second
    second, fraction = divmod(micros, 1_000_000)
    cached, prefix = _last_second
    if second != cached:
        prefix = (_EPOCH + timedelta(seconds=second)).isoformat()[: -len("+00:00")]
        _last_second = (second, prefix)
    if fraction:
        return f"{prefix}.{fraction:06d}+00:00"
    return prefix + "+00:00"


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    role: Role
    logo: str | None
    emoji: str | None
    webhook_url: str | None
    email: str | None
    api_key_hint: str
    created_at: int  # microseconds since the epoch

    @property
    def is_viewer(self) -> bool:
        return self.role is Role.VIEWER

    @property
    def is_bot(self) -> bool:
        return self.role is Role.BOT

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class Message:
    """A stored message, with its author's and recipient's current profile fields joined in.

    ``from_username`` / ``to_username`` fall back to the names stored with the message when
    the account no longer exists.
    """

    seq: int
    id: str
    from_user_id: str | None
    from_username: str
    from_user_logo: str | None
    from_user_emoji: str | None
    from_user_bot: bool
    to_user_id: str | None
    to_username: str | None
    content: str
    created_at: int  # microseconds since the epoch
    client_message_id: str | None = None
    edited_at: int | None = None  # microseconds since the epoch; None: never edited

    @property
    def message_type(self) -> MessageType:
        return MessageType.ROOM if self.to_username is None else MessageType.DIRECT

    @property
    def is_room(self) -> bool:
        return self.to_username is None


@dataclass(frozen=True, slots=True)
class UnreadCounts:
    room: int
    direct: int

    @property
    def total(self) -> int:
        return self.room + self.direct


@dataclass(frozen=True, slots=True)
class Receipt:
    """``reader`` newly read ``message``; its author is told."""

    message_id: str
    author_id: str
    reader_username: str
    read_at: int
