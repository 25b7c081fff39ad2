"""Reading what the user types in ``chat``, without extra dependencies.

Two sources with one interface (:class:`LineSource`):

* :class:`TerminalEditor`: stdin is a terminal. It is put in cbreak mode (no line buffering,
  no echo; Ctrl-C still interrupts) and read byte by byte, so the chat learns about each
  keystroke (``on_edit``) and can send typing indicators *while* a line is composed. It echoes
  and edits the line itself (backspace, Ctrl-U; arrow keys are ignored) and lets the chat
  print above the line being typed (:meth:`above`). The terminal mode is restored on exit.
* :class:`StreamLines`: stdin is a pipe or a file: whole lines, no keystrokes.

Both read through the event loop (``add_reader``), so incoming messages keep flowing while
the user types; where the loop cannot watch stdin (a regular file, Windows) lines are read on
a worker thread instead.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any, TextIO

__all__ = ["LineSource", "StreamLines", "TerminalEditor", "open_line_source"]

_EOF = object()
_INTERRUPT = object()
_CLEAR_LINE = "\r\x1b[K"


class LineSource:
    """Lines the user entered, as an async iterator that ends at end of input.

    ``on_edit(buffer)`` is called after every change to the line being typed (terminals
    only). :meth:`above` prints something without garbling that line.
    """

    interactive = False

    def __init__(self) -> None:
        self.on_edit: Callable[[str], None] | None = None

    async def __aenter__(self) -> LineSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def lines(self) -> AsyncIterator[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def above(self, draw: Callable[[], None]) -> None:
        """Run ``draw`` (which prints whole lines) so its output appears above the prompt."""
        draw()

    def set_prompt(self, prompt: str) -> None:
        """Change the prompt shown before the line being typed (terminals only)."""


class _ReaderMixin:
    """Feeds bytes from ``fd`` to ``_feed`` through the event loop (or a thread)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._watching = False
        self._thread_task: asyncio.Task[None] | None = None

    def _feed(self, data: bytes) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            loop.add_reader(self._fd, self._readable)
        except (NotImplementedError, PermissionError, OSError, ValueError):
            # epoll refuses regular files; Windows loops have no add_reader.
            self._thread_task = asyncio.create_task(self._read_on_thread())
        else:
            self._watching = True

    def _stop(self) -> None:
        if self._watching:
            asyncio.get_running_loop().remove_reader(self._fd)
            self._watching = False
        if self._thread_task is not None:
            self._thread_task.cancel()

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._stop()
        self._feed(data)

    async def _read_on_thread(self) -> None:
        while True:
            data = await asyncio.to_thread(os.read, self._fd, 4096)
            self._feed(data)
            if not data:
                return


class StreamLines(_ReaderMixin, LineSource):
    """Whole lines from a pipe or file (no keystroke events)."""

    def __init__(self, fd: int) -> None:
        LineSource.__init__(self)
        _ReaderMixin.__init__(self, fd)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    async def __aenter__(self) -> StreamLines:
        self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop()

    def _feed(self, data: bytes) -> None:
        self._pending += self._decoder.decode(data, final=not data)
        *complete, self._pending = self._pending.split("\n")
        for line in complete:
            self._queue.put_nowait(line.rstrip("\r"))
        if not data:
            if self._pending:
                self._queue.put_nowait(self._pending)
                self._pending = ""
            self._queue.put_nowait(_EOF)

    async def lines(self) -> AsyncIterator[str]:
        while True:
            item = await self._queue.get()
            if item is _EOF:
                return
            assert isinstance(item, str)
            yield item


class TerminalEditor(_ReaderMixin, LineSource):
    """A one-line editor on a terminal in cbreak mode (POSIX only)."""

    interactive = True

    def __init__(self, fd: int, out: TextIO, prompt: str = "> ") -> None:
        LineSource.__init__(self)
        _ReaderMixin.__init__(self, fd)
        self._out = out
        self._prompt = prompt
        self._buffer = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._escape = ""  # an escape sequence (arrow key...) being skipped
        self._saved: list[Any] | None = None

    async def __aenter__(self) -> TerminalEditor:
        import termios
        import tty

        self._saved = termios.tcgetattr(self._fd)
        tty.setcbreak(self._fd, termios.TCSANOW)
        self._start()
        self._redraw()
        return self

    async def __aexit__(self, *exc: object) -> None:
        import termios

        self._stop()
        if self._saved is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
            self._saved = None
        self._write(_CLEAR_LINE)

    # -- output ------------------------------------------------------------------------------

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def _redraw(self) -> None:
        self._write(_CLEAR_LINE + self._prompt + self._buffer)

    def above(self, draw: Callable[[], None]) -> None:
        self._write(_CLEAR_LINE)
        draw()
        self._redraw()

    def set_prompt(self, prompt: str) -> None:
        if prompt != self._prompt:
            self._prompt = prompt
            self._redraw()

    # -- input -------------------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        if not data:
            self._queue.put_nowait(_EOF)
            return
        before = self._buffer
        for char in self._decoder.decode(data):
            self._key(char)
        if self._buffer != before:
            self._redraw()
            if self.on_edit is not None:
                self.on_edit(self._buffer)

    def _key(self, char: str) -> None:
        if self._escape:
            self._escape += char
            if _escape_done(self._escape):
                self._escape = ""
            return
        if char in "\r\n":
            line, self._buffer = self._buffer, ""
            self._write(_CLEAR_LINE)
            self._queue.put_nowait(line)
            self._redraw()
        elif char in "\x7f\x08":
            self._buffer = self._buffer[:-1]
        elif char == "\x15":  # Ctrl-U
            self._buffer = ""
        elif char == "\x04":  # Ctrl-D ends the session on an empty line, as in a shell
            if not self._buffer:
                self._queue.put_nowait(_EOF)
        elif char == "\x03":  # Ctrl-C arrives as a byte only if signals are off
            self._queue.put_nowait(_INTERRUPT)
        elif char == "\x1b":
            self._escape = char
        elif char == "\t":
            self._buffer += " "
        elif char.isprintable():
            self._buffer += char

    async def lines(self) -> AsyncIterator[str]:
        while True:
            item = await self._queue.get()
            if item is _EOF:
                return
            if item is _INTERRUPT:
                raise KeyboardInterrupt
            assert isinstance(item, str)
            yield item


def _escape_done(sequence: str) -> bool:
    """True once ``sequence`` (starting with ESC) is complete: ESC plus one character, or a
    CSI/SS3 sequence (``ESC [`` / ``ESC O``) ended by a byte in ``@``..``~``."""
    if len(sequence) == 2:
        return sequence[1] not in "[O"
    return "@" <= sequence[-1] <= "~" or len(sequence) > 16


def open_line_source(stdin: TextIO | None = None, stdout: TextIO | None = None) -> LineSource:
    """A :class:`TerminalEditor` when stdin and stdout are terminals (POSIX), else
    :class:`StreamLines`. Use it with ``async with``."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    fd = stdin.fileno()
    if os.name == "posix" and stdin.isatty() and stdout.isatty():
        with contextlib.suppress(ImportError):
            import termios  # noqa: F401  (present on every POSIX Python)

            return TerminalEditor(fd, stdout)
    return StreamLines(fd)
