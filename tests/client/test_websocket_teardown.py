"""Teardown ends every task the client started, even one that swallowed a cancellation."""

from __future__ import annotations

import asyncio

from token_bowl_chat.websocket import _cancel_until_done


async def test_a_task_that_swallows_its_first_cancellation_is_still_ended() -> None:
    # Python 3.11's asyncio.wait_for swallows a cancellation that arrives as the awaited
    # operation completes; the receive loop then ran on until its connection dropped, and
    # disconnect() waited that long (90-120 s in the suite).
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(10):
        await _cancel_until_done([task])
    assert task.cancelled() and swallowed == 1
