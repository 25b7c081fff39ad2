"""The lean event and queue held once per connection behave as asyncio's do where used."""

from __future__ import annotations

import asyncio

from tests.waiting import eventually
from token_bowl_chat_server.realtime.lean_sync import Flag, Mailbox


async def test_flag_wakes_every_waiter_and_survives_a_cancelled_one() -> None:
    flag = Flag()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    waiters[0].cancel()
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters[1:])
    flag.set()
    assert await asyncio.gather(*waiters[1:]) == [True, True]
    assert waiters[0].cancelled()
    assert flag.is_set()
    assert await flag.wait()  # set: returns at once
    flag.clear()
    again = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    assert not again.done()
    flag.set()
    assert await again


async def test_flag_wake_resolves_a_future_when_set_and_skips_one_already_done() -> None:
    loop = asyncio.get_running_loop()
    flag = Flag()
    later, cancelled, resolved = (loop.create_future() for _ in range(3))
    for future in (later, cancelled, resolved):
        flag.wake(future)
    cancelled.cancel()
    resolved.set_result(None)  # someone else resolved it first (the session ended)
    assert not later.done()
    flag.set()  # must not raise on the futures already done
    assert later.done() and later.result() is None
    now = loop.create_future()
    flag.wake(now)  # set already: at once
    assert now.done()


async def test_mailbox_is_fifo_and_a_cancelled_getter_leaves_the_item() -> None:
    box: Mailbox[str] = Mailbox()
    first = asyncio.create_task(box.get())
    second = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    box.put_nowait("a")  # wakes the first getter...
    first.cancel()  # ...which is cancelled before it runs
    assert await asyncio.wait_for(second, 5) == "a"
    assert first.cancelled()
    box.put_nowait("b")
    box.put_nowait("c")
    assert box.qsize() == 2 and not box.empty()
    assert [await box.get(), await box.get()] == ["b", "c"]
    assert box.empty()
    late = asyncio.create_task(box.get())
    box.put_nowait("d")
    await eventually(late.done)
    assert late.result() == "d"
