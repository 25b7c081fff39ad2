"""A connection's outbox against a fake wire: one write per loop turn, the bound while the
socket is paused, the flush on resume, and the end when the socket is gone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from tests.server.unit.test_hub import user
from tests.waiting import eventually
from token_bowl_chat.protocol.close_codes import CloseCode
from token_bowl_chat_server.realtime.connection import Connection
from token_bowl_chat_server.ws_protocol import text_frame


class PausableWire:
    def __init__(self) -> None:
        self.writes: list[list[bytes]] = []
        self.paused = False
        self.gone = False
        self.on_writable: Callable[[], None] | None = None
        self.closed_with: int | None = None

    def frame(self, text: str) -> bytes:
        return text_frame(text)

    def when_writable(self, callback: Callable[[], None]) -> None:
        self.on_writable = callback

    def resume(self) -> None:
        self.paused = False
        callback, self.on_writable = self.on_writable, None
        if callback is not None:
            callback()

    def write_frames(self, frames: Sequence[bytes]) -> bool:
        if self.gone:
            return False
        self.writes.append(list(frames))
        return True

    async def close_with(self, code: int, reason: str) -> None:
        self.closed_with = code

    def texts(self) -> list[str]:
        return [frame[2:].decode() for write in self.writes for frame in write]


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_frames_queued_in_one_turn_go_out_in_one_write_in_order() -> None:
    wire = PausableWire()
    conn = Connection(wire, user("me"), 16, now=0.0)
    for i in range(5):
        assert conn.push(f"f{i}")
    assert wire.writes == []  # never written from inside push
    await settle()
    assert len(wire.writes) == 1
    assert wire.texts() == [f"f{i}" for i in range(5)]
    conn.push("f5")
    await settle()
    assert len(wire.writes) == 2 and wire.texts()[-1] == "f5"
    await conn.finish()


async def test_a_paused_socket_keeps_frames_until_resumed_and_overflow_closes_4001() -> None:
    wire = PausableWire()
    wire.paused = True
    conn = Connection(wire, user("me"), 3, now=0.0)
    for i in range(3):
        assert conn.push(f"f{i}")
    await settle()
    assert wire.writes == [] and conn.queued == 3
    wire.resume()
    await settle()
    assert wire.texts() == ["f0", "f1", "f2"] and conn.queued == 0

    wire.paused = True
    for i in range(3, 6):
        assert conn.push(f"f{i}")
    assert not conn.push("one too many")
    assert conn.close_code == CloseCode.SLOW_CONSUMER
    await eventually(lambda: wire.closed_with == CloseCode.SLOW_CONSUMER)
    assert conn.ended.is_set() and conn.queued == 0
    wire.resume()
    await settle()
    assert wire.texts() == ["f0", "f1", "f2"]  # dropped with the close
    await conn.finish()


async def test_a_replay_waits_for_room_and_a_lost_socket_ends_the_connection() -> None:
    wire = PausableWire()
    wire.paused = True
    conn = Connection(wire, user("me"), 2, now=0.0)
    conn.begin_replay()
    conn.push("live", 9)  # held during the replay
    await conn.replay("r1")
    await conn.replay("r2")
    third = asyncio.create_task(conn.replay("r3"))
    await settle()
    assert not third.done()  # paced by the client
    wire.resume()
    await eventually(third.done)
    await conn.end_replay(0, final="resumed")
    await settle()
    assert wire.texts() == ["r1", "r2", "r3", "live", "resumed"]

    wire.gone = True
    conn.push("to nobody")
    await eventually(conn.ended.is_set)
    assert conn.close_code == 1006
    await conn.finish()


def test_text_frame_lengths() -> None:
    for size, head in ((0, b"\x81\x00"), (125, b"\x81\x7d"), (126, b"\x81\x7e\x00\x7e")):
        assert text_frame("x" * size).startswith(head)
    assert text_frame("x" * 70000)[:10] == b"\x81\x7f" + (70000).to_bytes(8, "big")
    assert text_frame("é") == b"\x81\x02" + "é".encode()
