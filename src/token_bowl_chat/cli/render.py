"""Everything the CLI prints, in one of three modes.

* ``json``: one JSON document per command (``--json``), or one compact JSON object per line
  for event streams; the shapes are the SDK's models dumped with ``mode="json"``.
* ``rich``: tables and colour, when stdout is a terminal.
* ``plain``: when stdout is not a terminal: tables become tab-separated lines with a header
  row, event lines lose their colour, nothing is wrapped to a terminal width.

User text is never parsed as rich markup: it is always wrapped in :class:`rich.text.Text`.
Commands decide *what* to print; this module decides *how*.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from token_bowl_chat import MessageResponse, MessageType, PublicUserProfile, UnreadCountResponse
from token_bowl_chat.events import (
    ConnectedEvent,
    DisconnectedEvent,
    ErrorEvent,
    Event,
    MessageEvent,
    ReadReceiptEvent,
    TypingEvent,
    TypingStoppedEvent,
    UnreadCountEvent,
)

__all__ = [
    "Mode",
    "Renderer",
    "chronological",
    "event_json",
    "event_text",
    "jsonable",
    "message_text",
]

Mode = Literal["json", "rich", "plain"]

_NAME_STYLES = ("cyan", "green", "yellow", "magenta", "blue", "bright_cyan", "bright_green")


def jsonable(value: Any) -> Any:
    """``value`` with every pydantic model (nested in lists and dicts too) dumped for JSON."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def event_json(event: Event) -> dict[str, Any]:
    """The JSON-lines shape of a live event: ``{"event": <kind>, ...fields}``."""
    if isinstance(event, MessageEvent):
        return {"event": "message", "message": jsonable(event.message)}
    if isinstance(event, TypingEvent):
        return {"event": "typing", "username": event.username, "to_username": event.to_username}
    if isinstance(event, TypingStoppedEvent):
        return {
            "event": "typing_stopped",
            "username": event.username,
            "to_username": event.to_username,
        }
    if isinstance(event, ReadReceiptEvent):
        return {"event": "read_receipt", "message_id": event.message_id, "read_by": event.read_by}
    if isinstance(event, UnreadCountEvent):
        return {"event": "unread_count", **jsonable(event.count)}
    if isinstance(event, ConnectedEvent):
        return {"event": "connected", "resumed": event.resumed}
    if isinstance(event, DisconnectedEvent):
        return {
            "event": "disconnected",
            "code": event.code,
            "reason": event.reason,
            "will_reconnect": event.will_reconnect,
        }
    if isinstance(event, ErrorEvent):
        return {"event": "error", "error": str(event.error), "type": type(event.error).__name__}
    raise TypeError(f"unknown event {event!r}")  # pragma: no cover - the union is closed


def _name_style(name: str) -> str:
    # A stable colour per name (not hash(): that is salted per process).
    return _NAME_STYLES[sum(name.encode()) % len(_NAME_STYLES)]


def _clock(timestamp: str, with_date: bool = False) -> str:
    try:
        when = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return timestamp
    return when.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def message_text(message: MessageResponse, *, me: str | None = None) -> Text:
    """``HH:MM:SS alice: hello`` for the room, ``HH:MM:SS alice → bob: hi`` for a DM."""
    text = Text(_clock(message.timestamp) + " ", style="dim")
    text.append(message.from_username, style=f"bold {_name_style(message.from_username)}")
    if message.message_type is MessageType.DIRECT:
        to = message.to_username or "?"
        text.append(" → ", style="magenta")
        text.append("you" if me is not None and to == me else to, style="bold magenta")
    elif message.message_type is MessageType.SYSTEM:
        text.append(" (system)", style="dim")
    text.append(": ")
    text.append(message.content)
    return text


def event_text(event: Event, *, me: str | None = None) -> Text | None:
    """One line for a live event; ``None`` for events not worth a line (unread counts)."""
    if isinstance(event, MessageEvent):
        return message_text(event.message, me=me)
    if isinstance(event, TypingEvent):
        where = " to you" if event.to_username is not None else ""
        return Text(f"{event.username} is typing{where}…", style="dim italic")
    if isinstance(event, TypingStoppedEvent):
        return Text(f"{event.username} stopped typing", style="dim italic")
    if isinstance(event, ReadReceiptEvent):
        return Text(f"✓ {event.read_by} read message {event.message_id}", style="dim green")
    if isinstance(event, ConnectedEvent):
        return Text("reconnected; nothing missed" if event.resumed else "connected", style="dim")
    if isinstance(event, DisconnectedEvent):
        code = f" (code {event.code})" if event.code is not None else ""
        then = "; reconnecting…" if event.will_reconnect else ""
        return Text(f"disconnected{code}{then}", style="yellow")
    if isinstance(event, ErrorEvent):
        return Text(f"error: {event.error}", style="red")
    return None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    # Tabs and newlines would break the plain (tab-separated) layout.
    return str(value).replace("\t", " ").replace("\r", "\\r").replace("\n", "\\n")


class Renderer:
    """Prints command results to ``out`` in ``mode``; notices and errors go to ``err``.

    Build one per command with :meth:`for_streams`, after any ``--json`` flag is known.
    """

    def __init__(self, mode: Mode, out: TextIO, err: TextIO) -> None:
        self.mode = mode
        self.out = out
        self.err = err
        # soft_wrap: never insert line breaks of our own; the terminal wraps long lines.
        self.console = Console(file=out, highlight=False, soft_wrap=True)
        self.err_console = Console(file=err, highlight=False, soft_wrap=True)

    @classmethod
    def for_streams(
        cls, json_output: bool, out: TextIO | None = None, err: TextIO | None = None
    ) -> Renderer:
        """``json`` when asked; else ``rich`` if ``out`` is a terminal, ``plain`` otherwise."""
        out = out or sys.stdout
        err = err or sys.stderr
        mode: Mode = "json" if json_output else "rich" if _isatty(out) else "plain"
        return cls(mode, out, err)

    # -- primitives --------------------------------------------------------------------------

    def json(self, data: Any) -> None:
        """One JSON document (pretty-printed); models are dumped first."""
        self.out.write(json.dumps(jsonable(data), indent=2, ensure_ascii=False) + "\n")
        self.out.flush()

    def json_line(self, data: Any) -> None:
        """One compact JSON object on its own line, flushed (for event streams)."""
        self.out.write(json.dumps(jsonable(data), ensure_ascii=False) + "\n")
        self.out.flush()

    def line(self, text: Text | str) -> None:
        """A line of text on stdout: styled in rich mode, plain otherwise."""
        if self.mode == "rich":
            self.console.print(text if isinstance(text, Text) else Text(text))
        else:
            self.out.write((text.plain if isinstance(text, Text) else text) + "\n")
            self.out.flush()

    def notice(self, message: str, style: str = "dim") -> None:
        """A human-only remark on stderr, so it never mixes into data on stdout."""
        self.err_console.print(Text(message, style=style))

    def warning(self, message: str) -> None:
        self.err_console.print(Text.assemble(("warning:", "bold yellow"), " ", message))

    def error(self, message: str) -> None:
        self.err_console.print(Text.assemble(("error:", "bold red"), " ", message))

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        title: str | None = None,
        styles: Mapping[str, str] | None = None,
    ) -> None:
        """A table: a rich one on a terminal, tab-separated lines with a header otherwise."""
        rows = list(rows)
        if self.mode != "rich":
            self.out.write("\t".join(columns) + "\n")
            for row in rows:
                self.out.write("\t".join(_cell(v) for v in row) + "\n")
            self.out.flush()
            return
        table = Table(title=title, title_justify="left", header_style="bold")
        for column in columns:
            # Ids and times stay whole (they are copied and compared); text folds instead.
            table.add_column(
                column,
                style=(styles or {}).get(column),
                overflow="fold",
                no_wrap=column in ("id", "time"),
            )
        for row in rows:
            table.add_row(*(v if isinstance(v, Text) else Text(_cell(v)) for v in row))
        if not rows:
            table.caption = "(none)"
        self.console.print(table)

    def record(self, fields: Mapping[str, Any], *, title: str | None = None) -> None:
        """``key: value`` lines (a two-column grid on a terminal); ``None`` values skipped."""
        shown = {k: v for k, v in fields.items() if v is not None and v != ""}
        if self.mode != "rich":
            for key, value in shown.items():
                self.out.write(f"{key}: {_cell(value)}\n")
            self.out.flush()
            return
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        for key, value in shown.items():
            grid.add_row(key, Text(_cell(value)))
        if title:
            self.console.print(Text(title, style="bold underline"))
        self.console.print(grid)

    # -- the CLI's data ----------------------------------------------------------------------

    def messages(self, messages: Sequence[MessageResponse], *, title: str | None = None) -> None:
        """Messages as a table, **oldest first** (the order a chat is read in)."""
        ordered = sorted(messages, key=chronological)
        rows = [
            (
                _clock(m.timestamp, with_date=True),
                Text(m.from_username, style=_name_style(m.from_username))
                if self.mode == "rich"
                else m.from_username,
                m.to_username if m.message_type is MessageType.DIRECT else "room",
                m.content,
                m.id,
            )
            for m in ordered
        ]
        self.table(
            ["time", "from", "to", "message", "id"],
            rows,
            title=title,
            styles={"time": "dim", "to": "magenta", "id": "dim"},
        )

    def users(self, users: Sequence[PublicUserProfile], *, title: str | None = None) -> None:
        rows = [
            (
                u.username,
                str(u.role),
                "bot" if u.bot else ("viewer" if u.viewer else ""),
                u.emoji or u.logo or "",
                u.id,
            )
            for u in users
        ]
        self.table(
            ["username", "role", "kind", "avatar", "id"],
            rows,
            title=title,
            styles={"username": "bold", "id": "dim"},
        )

    def unread(
        self,
        counts: UnreadCountResponse,
        room: Sequence[MessageResponse] | None,
        direct: Sequence[MessageResponse] | None,
    ) -> None:
        self.record(
            {
                "room": counts.unread_room_messages,
                "direct": counts.unread_direct_messages,
                "total": counts.total_unread,
            },
            title="Unread",
        )
        if room:
            self.line("")
            self.messages(room, title="Unread in the room")
        if direct:
            self.line("")
            self.messages(direct, title="Unread direct messages")


def chronological(message: MessageResponse) -> tuple[datetime, int, str]:
    """Sort key: time (naive means UTC; unreadable sorts first), then ``seq``, then id."""
    try:
        when = message.timestamp_dt
    except ValueError:
        when = datetime.min
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when, message.seq or 0, message.id)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
