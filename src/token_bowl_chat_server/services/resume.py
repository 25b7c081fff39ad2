"""Starting a connection: the ``hello`` frame, and the gap-free replay a resuming client asks for.

Only connections that asked for the extended protocol get ``hello``, ``resumed`` and
``resume_gap`` (a legacy client would take them for chat messages); the replay itself is
plain message deliveries, which every client reads. A client that reconnects with
``?since_seq=N`` gets every message live delivery would have
sent it after ``N``, read from the database in ``seq`` order, then the frames that arrived
live meanwhile, then ``resumed``. The connection is registered for live delivery *before* the
database is read, and live frames are held back until the replay is done, so no message falls
between the two; the ones that are in both are dropped from the held frames by ``seq``.
Edits and deletes are events with seqs of their own (``storage/edits.py``): an extended
connection gets them replayed too, interleaved with the messages in ``seq`` order.
"""

from __future__ import annotations

from typing import Protocol

from token_bowl_chat.protocol.events import Hello, Resumed, ResumeGap, encode_event
from token_bowl_chat.protocol.version import PROTOCOL_VERSION
from token_bowl_chat_server import render
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.services.edits import deleted_frame, edited_frame
from token_bowl_chat_server.services.ports import EditStore, MessageStore
from token_bowl_chat_server.storage.edits import EventKind, MessageEvent

REPLAY_PAGE = 500


class ReplayTarget(Protocol):
    """A connection that holds live frames back while it is being replayed to."""

    extended: bool  # asked for the extension frames (hello, resumed, resume_gap)

    def begin_replay(self) -> None: ...
    async def replay(self, text: str) -> None: ...
    async def end_replay(self, replayed_through: int, final: str | None = None) -> None: ...
    def push(self, text: str, seq: int | None = None) -> bool: ...


class ResumeService:
    def __init__(
        self, messages: MessageStore, heartbeat_interval: float, edits: EditStore | None = None
    ) -> None:
        self.messages = messages
        # Edits and deletes are replayed too, interleaved by seq, to extended connections.
        self.edits = edits
        self.heartbeat_interval = heartbeat_interval
        self.resumes = 0  # connections that resumed from a seq
        self.replayed = 0  # messages those replays sent
        self.gaps = 0  # resume points the server did not know

    async def start(self, user: User, conn: ReplayTarget, since_seq: int | None) -> None:
        """Send the opening frames. ``conn`` must already be registered for live delivery and
        must have called ``begin_replay()``; this ends the replay in every case, unless the
        connection closes meanwhile (``conn.replay`` raises then, and so does this)."""
        last_seq = await self.messages.last_seq()
        gap = since_seq is not None and since_seq > last_seq
        resuming = since_seq is not None and not gap
        hello = Hello(
            protocol_version=PROTOCOL_VERSION,
            user_id=user.id,
            username=user.username,
            last_seq=None if resuming else last_seq,
            heartbeat_interval=self.heartbeat_interval,
        )
        if conn.extended:
            await conn.replay(encode_event(hello))
        if since_seq is None or gap:
            if since_seq is not None:
                self.gaps += 1
                if conn.extended:
                    await conn.replay(
                        encode_event(ResumeGap(requested_seq=since_seq, last_seq=last_seq))
                    )
            # Nothing was replayed, so every held live frame goes out, also one whose seq is
            # not above hello's last_seq: it was published after this connection joined the
            # hub (the client was connected when it was sent), and the clients take hello's
            # last_seq as their resume point, so dropping it would lose it for good.
            await conn.end_replay(0)
            return
        cursor, replayed = since_seq, 0
        while True:
            page, more = await self._page(user, cursor, conn.extended)
            for seq, text in page:
                await conn.replay(text)
                cursor = seq
            replayed += len(page)
            if not more:
                break
        self.resumes += 1
        self.replayed += replayed
        # Everything up to the last_seq read before the pages was committed before they were
        # read (seq order is commit order), so the pages hold all of it that is meant for this
        # user. A newer last_seq would not do: a message committed after the last page but not
        # yet published is neither replayed nor held, and a client told it had seen it would
        # resume past it after its next disconnect and lose it.
        last_seq = max(last_seq, cursor)
        resumed = Resumed(since_seq=since_seq, replayed=replayed, last_seq=last_seq)
        await conn.end_replay(cursor, encode_event(resumed) if conn.extended else None)

    async def _page(
        self, user: User, after: int, extended: bool
    ) -> tuple[list[tuple[int, str]], bool]:
        """The next frames to replay after ``after`` as ``(seq, text)`` in seq order, and
        whether more may follow. Messages and (for extended connections) edit and delete
        events come from two queries of up to a page each; the first page's worth of the two
        merged is exact, since each holds every item of its kind below the other's last."""
        messages = await self.messages.delivered_after(user.id, after, REPLAY_PAGE)
        frames = [(m.seq, encode_event(render.message(m))) for m in messages]
        more = len(messages) == REPLAY_PAGE
        if self.edits is not None and extended:
            events = await self.edits.events_after(user.id, after, REPLAY_PAGE)
            frames += [(e.seq, _event_text(e)) for e in events]
            frames.sort(key=lambda frame: frame[0])
            more = more or len(events) == REPLAY_PAGE or len(frames) > REPLAY_PAGE
            del frames[REPLAY_PAGE:]
        return frames, more


def _event_text(event: MessageEvent) -> str:
    if event.kind is EventKind.EDITED:
        return encode_event(edited_frame(event))
    return encode_event(deleted_frame(event))
