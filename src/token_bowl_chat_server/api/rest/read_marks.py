"""``GET /messages/read-marks``: who has read the caller's messages (extension)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from token_bowl_chat.protocol.commands import MAX_INT, MAX_PAGE_LIMIT
from token_bowl_chat.protocol.read_marks import ReaderMark, ReadMarksResponse, SingleReadReceipt
from token_bowl_chat_server.api.deps import CurrentUser, ServicesDep
from token_bowl_chat_server.api.rest.responses import errors
from token_bowl_chat_server.domain.entities import iso

router = APIRouter(tags=["messages"], responses=errors(401, 422))

AfterSeq = Annotated[int, Query(ge=0, le=MAX_INT)]
ReceiptLimit = Annotated[int, Query(ge=1, le=MAX_PAGE_LIMIT)]


@router.get("/messages/read-marks")
async def read_marks(
    user: CurrentUser,
    services: ServicesDep,
    after_seq: AfterSeq = 0,
    limit: ReceiptLimit = MAX_PAGE_LIMIT,
) -> ReadMarksResponse:
    """Read marks on your messages with ``seq > after_seq``: per reader, the newest of your
    room messages (``room``) and of your DMs to them (``direct``) they have read everything
    up to, and single receipts above those (newest first, at most ``limit``)."""
    marks = await services.read_marks.of_my_messages(user, after_seq, limit)
    return ReadMarksResponse(
        room=[ReaderMark(read_by=m.reader, up_to_seq=m.up_to) for m in marks.room],
        direct=[ReaderMark(read_by=m.reader, up_to_seq=m.up_to) for m in marks.direct],
        receipts=[
            SingleReadReceipt(
                message_id=r.message_id, seq=r.seq, read_by=r.reader, read_at=iso(r.read_at)
            )
            for r in marks.receipts
        ],
        has_more_receipts=marks.more_receipts,
    )
