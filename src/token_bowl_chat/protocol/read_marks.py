"""Extension: ``GET /messages/read-marks``, who has read the caller's own messages.

Live, an author learns of reads from ``read_receipt`` and ``read_up_to`` frames; this is the
same information for messages read before the client connected (a page just opened, a
reload), in the same two shapes: per-reader "read up to" marks and single receipts.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ReaderMark(BaseModel):
    """``read_by`` has read every message of yours in the scope with ``seq <= up_to_seq``:
    your room messages (in ``room``) or your DMs to ``read_by`` (in ``direct``)."""

    read_by: str
    up_to_seq: int


class SingleReadReceipt(BaseModel):
    """``read_by`` read this one message of yours (a single mark above their "up to")."""

    message_id: str
    seq: int
    read_by: str
    read_at: str


class ReadMarksResponse(BaseModel):
    room: list[ReaderMark] = Field(default_factory=list)
    direct: list[ReaderMark] = Field(default_factory=list)
    receipts: list[SingleReadReceipt] = Field(
        default_factory=list, description="Newest message first"
    )
    has_more_receipts: bool = Field(
        False, description="Older receipts above after_seq were left out (beyond limit)"
    )
