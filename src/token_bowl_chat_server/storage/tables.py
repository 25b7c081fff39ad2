"""Table objects for building queries.

The schema itself is defined by the Alembic migrations in ``migrations/versions``; a test
compares these objects with the migrated database, so the two cannot drift apart.

Timestamps are integer microseconds since the epoch (UTC), so ``since`` filters compare
instants, not strings. Messages are ordered by ``seq``, allocated from ``counters`` inside the
insert transaction: the row lock on the counter makes commit order equal ``seq`` order, which is
what gap-free resume relies on.

Unread counts come from ``read_states`` (per user, kept in the same transactions as the writes),
never from scanning messages:

    unread room   = counters.room_messages - read_states.room_seen
    unread direct = read_states.direct_unread

``room_seen`` counts room messages the user wrote or has read; ``room_cursor`` /
``direct_cursor`` mark "everything up to this seq is read", so bulk marks cost one row update;
``receipts`` hold single reads above the cursors. A delete (``storage/edits.py``) keeps both
exact: ``room_messages`` loses the message, and so does the ``room_seen`` of every user who had
it seen (its author, a cursor past it, a receipt); a DM unread for its recipient leaves their
``direct_unread``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(50), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("api_key_hash", String(64), nullable=False, unique=True),
    Column("api_key_hint", String(8), nullable=False),
    Column("email", String(255), nullable=True),
    Column("webhook_url", String(2083), nullable=True),
    # The HMAC key of requests to webhook_url (services/webhook_setup.py); never in User.
    Column("webhook_secret", String(64), nullable=True),
    Column("logo", String(64), nullable=True),
    Column("emoji", String(32), nullable=True),
    Column("created_by_id", String(36), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    # Partial: only the few users with a webhook are indexed, so room messages find their
    # webhook targets without reading every account.
    Index(
        "ix_users_webhook",
        "id",
        sqlite_where=text("webhook_url IS NOT NULL"),
        postgresql_where=text("webhook_url IS NOT NULL"),
    ),
    Index("ix_users_created_by", "created_by_id", "created_at"),  # one owner's bots
)

read_states = Table(
    "read_states",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("room_cursor", BigInteger, nullable=False, server_default="0"),
    Column("direct_cursor", BigInteger, nullable=False, server_default="0"),
    Column("room_seen", BigInteger, nullable=False, server_default="0"),
    Column("direct_unread", BigInteger, nullable=False, server_default="0"),
)

messages = Table(
    "messages",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("id", String(36), nullable=False, unique=True),
    Column("message_type", String(8), nullable=False),
    Column("from_user_id", String(36), ForeignKey("users.id", ondelete="SET NULL")),
    Column("from_username", String(50), nullable=False),
    Column("to_user_id", String(36), ForeignKey("users.id", ondelete="SET NULL")),
    Column("to_username", String(50), nullable=True),
    Column("content", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("client_message_id", String(128), nullable=True),
    # Whether the author was a bot when it sent: the flag outlives the account.
    Column("from_bot", Boolean, nullable=False, server_default=false()),
    # Set by the newest edit (storage/edits.py). A deleted message stays as a tombstone (its
    # content emptied) so receipts and edit events keep their rows; every query skips it.
    Column("edited_at", BigInteger, nullable=True),
    Column("deleted_at", BigInteger, nullable=True),
    UniqueConstraint("from_user_id", "client_message_id", name="uq_messages_client_id"),
    Index("ix_messages_type_seq", "message_type", "seq"),
    Index("ix_messages_type_created", "message_type", "created_at"),
    Index("ix_messages_from_seq", "from_user_id", "seq"),
    Index("ix_messages_to_seq", "to_user_id", "seq"),
)

receipts = Table(
    "receipts",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "message_seq",
        BigInteger,
        ForeignKey("messages.seq", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("read_at", BigInteger, nullable=False),
    Index("ix_receipts_message", "message_seq"),
)

message_events = Table(
    # Edits and deletes, each with its own ``seq`` from ``counters`` (the same sequence as
    # messages), so a resuming client gets messages and these events in commit order.
    # ``content`` is the text an edit set; emptied (NULL) once the message is deleted.
    "message_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column(
        "message_seq",
        BigInteger,
        ForeignKey("messages.seq", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", String(8), nullable=False),
    Column("actor_id", String(36), ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("content", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_message_events_message", "message_seq"),
)

webhook_deliveries = Table(
    # Each user's newest webhook deliveries and their outcome (storage/webhooks.py keeps a
    # bounded number per user). ``url`` is redacted to scheme, host and port.
    "webhook_deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("message_id", String(36), nullable=False),
    Column("url", String(2083), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=False),
    Index("ix_webhook_deliveries_user", "user_id", "created_at"),
)

conversations = Table(
    # A user's bookmark lists (domain/conversations.py). Owned by ``created_by_id``; the
    # stored ``created_by_username`` is shown only once that account is gone.
    "conversations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("title", String(200), nullable=True),
    Column("description", Text, nullable=True),
    Column("created_by_id", String(36), ForeignKey("users.id", ondelete="SET NULL")),
    Column("created_by_username", String(50), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_conversations_creator", "created_by_id", "created_at"),
    Index("ix_conversations_created", "created_at"),
)

conversation_messages = Table(
    # The messages a conversation lists, in the creator's order. By ``seq``: a message removed
    # from ``messages`` takes its entries with it.
    "conversation_messages",
    metadata,
    Column(
        "conversation_id",
        String(36),
        ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column(
        "message_seq",
        BigInteger,
        ForeignKey("messages.seq", ondelete="CASCADE"),
        nullable=False,
    ),
    Index("ix_conversation_messages_message", "message_seq"),
)

counters = Table(
    "counters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("room_messages", BigInteger, nullable=False),
    # Room messages by bots since the room's last message by a non-bot (domain/bot_turns.py).
    Column("bot_streak", BigInteger, nullable=False, server_default="0"),
)
