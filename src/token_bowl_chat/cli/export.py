"""``export``: the whole history you can see (room messages and your DMs) as JSON lines."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from token_bowl_chat import MessageResponse, MessageType, PaginatedMessagesResponse
from token_bowl_chat.cli.errors import CliError
from token_bowl_chat.cli.messaging import PAGE_SIZE
from token_bowl_chat.cli.options import JsonOption, SinceOption
from token_bowl_chat.cli.render import Renderer, chronological
from token_bowl_chat.cli.state import get_state

__all__ = ["export", "history_pages", "write_jsonl"]

Fetch = Callable[..., PaginatedMessagesResponse]


def history_pages(fetch: Fetch, since: str | None) -> Iterator[PaginatedMessagesResponse]:
    """Every page of a newest-first history, ``PAGE_SIZE`` at a time, until it runs out.

    Messages that arrive meanwhile shift later pages back, so a message may appear twice
    (the caller deduplicates by id) but none is skipped.
    """
    offset = 0
    while True:
        page = fetch(limit=PAGE_SIZE, offset=offset, since=since)
        yield page
        offset += len(page.messages)
        if not page.messages or not page.pagination.has_more:
            return


def write_jsonl(messages: list[MessageResponse], out: TextIO) -> None:
    """One message per line, as the SDK model dumps it (``mode="json"``)."""
    for message in messages:
        out.write(json.dumps(message.model_dump(mode="json"), ensure_ascii=False) + "\n")


def _write_file(path: Path, messages: list[MessageResponse]) -> None:
    # Write beside the target, then rename: a failed export never leaves half a file there.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            write_jsonl(messages, handle)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None


def export(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(metavar="FILE", help="Where to write; `-` for stdout.")],
    since: SinceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Write every message you can see (the room and your DMs) to FILE as JSON lines,
    oldest first, one message object per line, each message once.

    A progress bar shows on a terminal (on stderr). `--json` prints a summary:
    `{"path", "messages", "room", "direct"}`.

    **Examples**

        token-bowl export history.jsonl
        token-bowl export - --since 2025-01-01T00:00:00Z | jq -r .content
    """
    out = Renderer.for_streams(json_output)
    to_stdout = path == "-"
    if not to_stdout and Path(path).is_dir():
        raise CliError(f"{path} is a directory; give a file name")
    found: dict[str, MessageResponse] = {}
    progress = Progress(
        TextColumn("{task.description:>14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out.err_console,
        disable=not out.err_console.is_terminal,
        transient=False,
    )
    with get_state(ctx).client() as client, progress:
        sources: list[tuple[str, Fetch]] = [
            ("room", client.get_messages),
            ("direct messages", client.get_direct_messages),
        ]
        for label, fetch in sources:
            task = progress.add_task(label, total=None)
            for page in history_pages(fetch, since):
                for message in page.messages:
                    found.setdefault(message.id, message)
                progress.update(task, total=page.pagination.total, advance=len(page.messages))
            progress.update(task, total=progress.tasks[task].completed)
    history = sorted(found.values(), key=chronological)
    if to_stdout:
        write_jsonl(history, sys.stdout)
        sys.stdout.flush()
    else:
        _write_file(Path(path), history)
    direct = sum(1 for m in history if m.message_type is MessageType.DIRECT)
    summary = {
        "path": path,
        "messages": len(history),
        "room": len(history) - direct,
        "direct": direct,
    }
    if to_stdout:
        if not json_output:
            out.notice(f"exported {len(history)} messages")
        return  # stdout holds the data; a JSON summary there would corrupt it
    if out.mode == "json":
        out.json(summary)
    else:
        out.line(
            f"exported {summary['messages']} messages ({summary['room']} room, "
            f"{summary['direct']} direct) to {path}"
        )
