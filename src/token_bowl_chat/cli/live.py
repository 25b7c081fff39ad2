"""The real-time commands: ``listen`` (stream events) and ``chat`` (interactive session).

Both ride on :class:`~token_bowl_chat.TokenBowlWebSocket`, which reconnects by itself and
resumes without gaps; these loops only print its typed events and send what the user types.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import typer
from rich.text import Text

from token_bowl_chat import TokenBowlError, TokenBowlWebSocket
from token_bowl_chat.cli.errors import EXIT_INTERRUPTED, CliError, describe
from token_bowl_chat.cli.render import Renderer, event_json, event_text, message_text
from token_bowl_chat.cli.state import CliState, get_state
from token_bowl_chat.cli.terminal import LineSource, open_line_source
from token_bowl_chat.events import (
    ConnectedEvent,
    ErrorEvent,
    Event,
    MessageEvent,
    TypingEvent,
    TypingStoppedEvent,
    UnreadCountEvent,
)

__all__ = ["chat", "listen"]

# Resend the typing indicator this often while a line is composed: the server forgets an
# indicator after TOKEN_BOWL_TYPING_TIMEOUT (5 s by default) without a renewal.
TYPING_RENEW_SECONDS = 3.0

CHAT_HELP = "Type to the room; `@user text` sends a DM; /quit (or Ctrl-D) leaves; /help."


class _Typists:
    """Who is typing where, so a renewed indicator is shown once, not every few seconds."""

    def __init__(self) -> None:
        self.active: set[tuple[str, str | None]] = set()

    def changed(self, event: Event) -> bool:
        """True when ``event`` is a real change worth showing (always True for non-typing)."""
        if isinstance(event, TypingEvent):
            key = (event.username, event.to_username)
            if key in self.active:
                return False
            self.active.add(key)
        elif isinstance(event, TypingStoppedEvent):
            key = (event.username, event.to_username)
            if key not in self.active:
                return False
            self.active.discard(key)
        return True

    def names(self) -> list[str]:
        return sorted({name for name, _ in self.active})


@contextlib.asynccontextmanager
async def _connected(ws: TokenBowlWebSocket) -> AsyncIterator[asyncio.Queue[Event | None]]:
    """Connect ``ws`` and yield a queue of its events; ``None`` in the queue means the
    client gave up for good (a rotated key, say). Disconnects on exit.

    The subscription starts before connecting, so the first ``ConnectedEvent`` is seen.
    """
    queue: asyncio.Queue[Event | None] = asyncio.Queue()

    async def pump() -> None:
        async for event in ws.events():
            await queue.put(event)
        await queue.put(None)

    pumping = asyncio.create_task(pump())
    await asyncio.sleep(0)  # let pump() subscribe
    try:
        await ws.connect()
        yield queue
    finally:
        await ws.disconnect()
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping


def _profile_name(state: CliState) -> str:
    """The caller's username, over REST: also a clear auth/reachability check up front."""
    with state.client() as client:
        return client.get_my_profile().username


# --- listen ---------------------------------------------------------------------------------


async def _listen(
    state: CliState, out: Renderer, me: str, max_events: int | None, duration: float | None
) -> None:
    typists = _Typists()
    shown = 0
    ws = state.websocket(reconnect=True)
    async with _connected(ws) as queue:
        if out.mode != "json":
            out.notice(f"listening as {me} on {ws.base_url}; Ctrl-C to stop")
        deadline = None if duration is None else asyncio.get_running_loop().time() + duration
        while max_events is None or shown < max_events:
            try:
                async with asyncio.timeout_at(deadline):
                    event = await queue.get()
            except TimeoutError:
                return
            if event is None:
                raise CliError("connection lost and could not be re-established")
            if isinstance(event, UnreadCountEvent) or not typists.changed(event):
                continue
            first_connect = isinstance(event, ConnectedEvent) and not event.resumed
            if out.mode == "json":
                out.json_line(event_json(event))
            elif isinstance(event, ErrorEvent):
                out.error(str(event.error))
            elif not first_connect:  # (in text, the notice above said so)
                text = event_text(event, me=me)
                if text is not None:
                    out.line(text)
            if not first_connect:  # --max-events N: the next N things that happen
                shown += 1


def listen(
    ctx: typer.Context,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON object per event and line, for scripts.")
    ] = False,
    max_events: Annotated[
        int | None,
        typer.Option(
            "--max-events",
            min=1,
            metavar="N",
            help="Stop after N events (the first `connected` is not counted).",
        ),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=0, metavar="SECONDS", help="Stop after this long."),
    ] = None,
) -> None:
    """Stream what happens, live: room messages, your DMs, typing indicators and read
    receipts. Reconnects by itself after a drop, without missing messages; Ctrl-C stops.

    `--json` prints one object per line: `{"event": "message", "message": {...}}`, and
    `typing`, `typing_stopped`, `read_receipt`, `connected`, `disconnected`, `error`.

    **Examples**

        token-bowl listen
        token-bowl listen --json | jq -c 'select(.event == "message") | .message.content'
        token-bowl listen --json --max-events 10 --duration 60 > events.jsonl
    """
    state = get_state(ctx)
    out = Renderer.for_streams(json_output)
    me = _profile_name(state)
    try:
        asyncio.run(_listen(state, out, me, max_events, duration))
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None


# --- chat -----------------------------------------------------------------------------------


def parse_line(line: str) -> tuple[str | None, str]:
    """``(recipient, text)`` for one chat line: ``@bob hi`` is ``("bob", "hi")``, anything
    else goes to the room (``None``). ``@bob`` alone has no text (``("bob", "")``)."""
    if line.startswith("@") and len(line) > 1:
        name, _, text = line[1:].partition(" ")
        return name, text.strip()
    return None, line.strip()


def typing_target(buffer: str) -> tuple[bool, str | None]:
    """Where the line being typed will go: ``(known, recipient)``. A line that starts with
    ``@`` is a DM whose recipient is known once the space after the name is typed."""
    if buffer.startswith("@"):
        if " " not in buffer:
            return False, None
        return True, buffer[1:].split(" ", 1)[0] or None
    return True, None


class _TypingNotifier:
    """Sends typing indicators for the line being composed, at most one per target every
    :data:`TYPING_RENEW_SECONDS`, without blocking the keystroke that caused it."""

    def __init__(self, ws: TokenBowlWebSocket, clock: Callable[[], float] = time.monotonic):
        self._ws = ws
        self._clock = clock
        self._last: tuple[str | None, float] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def on_edit(self, buffer: str) -> None:
        if not buffer.strip():
            self._last = None  # a new line starts a new indicator
            return
        known, target = typing_target(buffer)
        if not known:
            return
        now = self._clock()
        if self._last is not None:
            last_target, sent_at = self._last
            if last_target == target and now - sent_at < TYPING_RENEW_SECONDS:
                return
        self._last = (target, now)
        task = asyncio.create_task(self.send(target))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send(self, target: str | None) -> None:
        # Typing is best effort: while reconnecting it fails, and that is fine.
        with contextlib.suppress(TokenBowlError, ValueError):
            await self._ws.send_typing_indicator(target)

    def reset(self) -> None:
        self._last = None


async def _chat(state: CliState, out: Renderer, me: str, source: LineSource) -> None:
    typists = _Typists()
    sent_ids: set[str] = set()
    ws = state.websocket(reconnect=True)
    notifier = _TypingNotifier(ws)

    def show(text: Text) -> None:
        source.above(lambda: out.line(text))

    def update_prompt() -> None:
        names = typists.names()
        source.set_prompt(f"[{', '.join(names)} typing…] > " if names else "> ")

    async def receive(queue: asyncio.Queue[Event | None]) -> None:
        while (event := await queue.get()) is not None:
            if isinstance(event, UnreadCountEvent) or not typists.changed(event):
                continue
            if isinstance(event, MessageEvent) and event.message.id in sent_ids:
                continue  # already shown when the send returned
            if isinstance(event, ConnectedEvent) and not event.resumed:
                continue  # the greeting said so
            if source.interactive and isinstance(event, TypingEvent | TypingStoppedEvent):
                update_prompt()  # on a terminal typing shows in the prompt, not as lines
                continue
            text = event_text(event, me=me)
            if text is not None:
                show(text)
        show(Text("connection lost and could not be re-established", style="red"))

    async def submit(line: str) -> bool:
        """Act on one line; False to leave."""
        stripped = line.strip()
        if stripped in ("/quit", "/exit"):
            return False
        if stripped == "/help":
            show(Text(CHAT_HELP, style="dim"))
            return True
        if not stripped:
            return True
        to, text = parse_line(stripped)
        if not text:
            show(Text(f"nothing to send to {to}", style="yellow"))
            return True
        if not source.interactive:
            # No keystrokes from a pipe: announce typing just before the send instead.
            await notifier.send(to)
        notifier.reset()
        try:
            message = await ws.send_message(text, to)
        except (TokenBowlError, ValueError) as exc:
            show(Text(f"error: {_send_error(exc)}", style="red"))
            return True
        sent_ids.add(message.id)
        show(message_text(message, me=me))
        return True

    async with _connected(ws) as queue, source:
        source.on_edit = notifier.on_edit
        show(Text(f"chatting as {me} on {ws.base_url}. {CHAT_HELP}", style="dim"))
        receiving = asyncio.create_task(receive(queue))
        try:
            async for line in source.lines():
                if not await submit(line):
                    break
        finally:
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiving


def _send_error(exc: Exception) -> str:
    described = describe(exc)
    return described[0] if described is not None else str(exc)


def chat(ctx: typer.Context) -> None:
    """An interactive session: see the room and your DMs live, and type to send.

    `@user text` sends a DM; `/quit` or Ctrl-D leaves. On a terminal the people you
    write to see that you are typing while you compose; with stdin from a pipe each
    line is announced as typing just before it is sent.

    **Examples**

        token-bowl chat
        printf 'hello\\n@bob see you at 5\\n/quit\\n' | token-bowl chat
    """
    state = get_state(ctx)
    out = Renderer.for_streams(False)
    me = _profile_name(state)
    source = open_line_source()
    try:
        asyncio.run(_chat(state, out, me, source))
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
