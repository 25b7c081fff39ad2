"""An event and a queue for objects held once per open connection, small while nobody waits.

``asyncio.Event`` and ``asyncio.Queue`` allocate their deques up front (about 600 bytes
each, three for a queue); a server holding tens of thousands of idle connections pays that
for every one. These allocate a future only while someone waits, and offer just the part of
the asyncio API their users call.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class Flag:
    """``asyncio.Event``'s ``set``, ``clear``, ``is_set`` and ``wait``."""

    __slots__ = ("_value", "_waiters")

    def __init__(self, value: bool = False) -> None:
        self._value = value
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._value = False

    def wake(self, waiter: asyncio.Future[None]) -> None:
        """Resolve ``waiter`` when the flag is set (now, if it is): a wait that takes no task
        of its own, for a caller that waits on several things with one future."""
        if self._value:
            if not waiter.done():
                waiter.set_result(None)
            return
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.wake(waiter)
        waiters = self._waiters
        assert waiters is not None  # wake() listed it: the flag is not set
        try:
            await waiter
        finally:
            if waiter in waiters:  # cancelled before set() took the list
                waiters.remove(waiter)
        return True


class Mailbox(Generic[T]):
    """An unbounded FIFO with ``asyncio.Queue``'s ``put_nowait``, ``get``, ``empty``, ``qsize``.

    A getter is only woken; it takes the item itself, so a getter cancelled after its wake-up
    leaves the item for the next one.
    """

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._getters: list[asyncio.Future[None]] | None = None

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        getters = self._getters
        if getters:
            for getter in getters:
                if not getter.done():
                    getter.set_result(None)
                    break

    async def get(self) -> T:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            getters = self._getters
            getters.append(getter)
            try:
                await getter
            finally:
                getters.remove(getter)
                if self._items and getters:  # woken but cancelled: pass the wake-up on
                    for other in getters:
                        if not other.done():
                            other.set_result(None)
                            break
        return self._items.pop(0)
