"""Messaging commands: ``send``, ``messages``, ``dms``, ``unread``, ``read``."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from token_bowl_chat import (
    MessageResponse,
    PaginatedMessagesResponse,
    PaginationMetadata,
    TokenBowlClient,
    TokenBowlError,
)
from token_bowl_chat.cli.errors import CliError, UsageError
from token_bowl_chat.cli.options import JsonOption, LimitOption, OffsetOption, SinceOption
from token_bowl_chat.cli.render import Renderer
from token_bowl_chat.cli.state import CliState, get_state

__all__ = ["dms", "messages", "read", "send", "unread"]

# The server's largest page; used when the CLI must walk a whole history.
PAGE_SIZE = 1000


def send(
    ctx: typer.Context,
    text: Annotated[
        str, typer.Argument(metavar="TEXT", help="The message; `-` reads it from stdin.")
    ],
    to: Annotated[
        str | None, typer.Option("--to", metavar="USER", help="Send a direct message.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Send TEXT to the room, or a direct message to USER with `--to`.

    Prints the stored message's id (what `read` takes).

    **Examples**

        token-bowl send "hello everyone"
        token-bowl send --to bob "lunch?"
        git log -1 --format=%s | token-bowl send -
    """
    if text == "-":
        text = sys.stdin.read().rstrip("\n")
    if not text.strip():
        raise UsageError("the message is empty")
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client() as client:
        message = client.send_message(text, to_username=to)
    if out.mode == "json":
        out.json(message)
    else:
        where = f"to {message.to_username}" if to else "to the room"
        out.line(f"sent {where}: {message.id}")


def _page_footer(out: Renderer, page: PaginatedMessagesResponse) -> None:
    meta = page.pagination
    shown = len(page.messages)
    if meta.has_more:
        out.notice(f"{shown} of {meta.total}; older ones with --offset {meta.offset + shown}")


def messages(
    ctx: typer.Context,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    since: SinceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Room history: the newest LIMIT messages, shown oldest first.

    `--json` prints the server's page as is: newest first, with `pagination`.

    **Examples**

        token-bowl messages
        token-bowl messages --limit 200 --offset 200
        token-bowl messages --since 2025-01-31T12:00:00Z --json | jq '.messages[].content'
    """
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client() as client:
        page = client.get_messages(limit=limit, offset=offset, since=since)
    if out.mode == "json":
        out.json(page)
        return
    out.messages(page.messages, title="Room")
    _page_footer(out, page)


def _conversation(client: TokenBowlClient, other: str, since: str | None) -> list[MessageResponse]:
    """Every DM between the caller and ``other``, newest first (the server's order)."""
    me = client.get_my_profile().username
    names = {user.username for user in client.get_users()}
    if other not in names:
        raise CliError(f"not found: no user named {other!r}")
    pair = {me, other}
    found: dict[str, MessageResponse] = {}
    offset = 0
    while True:
        page = client.get_direct_messages(limit=PAGE_SIZE, offset=offset, since=since)
        for message in page.messages:
            if {message.from_username, message.to_username} == pair:
                found.setdefault(message.id, message)  # pages may overlap: dedupe by id
        offset += len(page.messages)
        if not page.pagination.has_more or not page.messages:
            break
    return list(found.values())


def dms(
    ctx: typer.Context,
    with_user: Annotated[
        str | None,
        typer.Option("--with", metavar="USER", help="Only the conversation with USER."),
    ] = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    since: SinceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Your direct messages, sent and received: the newest LIMIT, shown oldest first.

    With `--with USER` only the conversation with USER; `--limit`/`--offset` then count
    within it.

    **Examples**

        token-bowl dms
        token-bowl dms --with bob --limit 20
        token-bowl dms --with bob --json | jq -r '.messages[] | .from_username + ": " + .content'
    """
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client() as client:
        if with_user is None:
            page = client.get_direct_messages(limit=limit, offset=offset, since=since)
        else:
            talk = _conversation(client, with_user, since)
            chunk = talk[offset : offset + limit]
            page = PaginatedMessagesResponse(
                messages=chunk,
                pagination=PaginationMetadata(
                    total=len(talk),
                    offset=offset,
                    limit=limit,
                    has_more=offset + len(chunk) < len(talk),
                ),
            )
    if out.mode == "json":
        out.json(page)
        return
    title = f"Direct messages with {with_user}" if with_user else "Direct messages"
    out.messages(page.messages, title=title)
    _page_footer(out, page)


def unread(
    ctx: typer.Context,
    limit: LimitOption = 50,
    counts_only: Annotated[
        bool, typer.Option("--counts", help="Only the counts, not the messages.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """What you have not read: counts, then the unread room messages and DMs (up to LIMIT
    of each, oldest first). Nothing is marked read; use `read` for that.

    `--json` prints `{"counts": {...}, "room": [...], "direct": [...]}`.

    **Examples**

        token-bowl unread
        token-bowl unread --counts --json | jq .counts.total_unread
    """
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client() as client:
        counts = client.get_unread_count()
        room = None if counts_only else client.get_unread_messages(limit=limit)
        direct = None if counts_only else client.get_unread_direct_messages(limit=limit)
    if out.mode == "json":
        data: dict[str, object] = {"counts": counts}
        if not counts_only:
            data.update(room=room, direct=direct)
        out.json(data)
        return
    out.unread(counts, room, direct)


async def _mark_over_websocket(state: CliState, from_user: str | None) -> int | None:
    """Mark the room (``from_user`` None) or one sender's DMs read in one server-side step;
    only the WebSocket has these commands. Raises the server's refusal (unknown user...)."""
    errors: list[Exception] = []
    async with state.websocket(reconnect=False, on_error=errors.append) as ws:
        if from_user is None:
            count = await ws.mark_room_messages_read()
        else:
            count = await ws.mark_direct_messages_read(from_user)
    # disconnect() has run every callback by now, so a refusal is in ``errors``.
    if count is None:
        refusal = next((e for e in errors if isinstance(e, TokenBowlError)), None)
        if refusal is not None:
            raise refusal
        raise CliError("the server did not confirm the change")
    return count


def read(
    ctx: typer.Context,
    message_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="Mark this one message read.")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Mark everything read.")] = False,
    room: Annotated[bool, typer.Option("--room", help="Mark every room message read.")] = False,
    from_user: Annotated[
        str | None,
        typer.Option("--from", metavar="USER", help="Mark every DM from USER read."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Mark messages read: one ID, `--all`, `--room` or `--from USER` (exactly one).

    Authors get read receipts. `--json` prints `{"scope", "marked_as_read", ...}`;
    `marked_as_read` is null for one ID (the server does not say whether it was unread).

    **Examples**

        token-bowl read 6f1c...e2
        token-bowl read --all
        token-bowl read --from bob --json
    """
    chosen = [message_id is not None, all_, room, from_user is not None]
    if sum(chosen) != 1:
        raise UsageError("give exactly one of ID, --all, --room, --from USER")
    state = get_state(ctx)
    out = Renderer.for_streams(json_output)
    result: dict[str, object]
    if message_id is not None:
        with state.client() as client:
            client.mark_message_read(message_id)
        result = {"scope": "message", "message_id": message_id, "marked_as_read": None}
        text = f"marked {message_id} read"
    elif all_:
        with state.client() as client:
            total = client.mark_all_messages_read().get("marked_as_read", 0)
        result = {"scope": "all", "marked_as_read": total}
        text = f"marked {total} message(s) read"
    else:
        count = asyncio.run(_mark_over_websocket(state, from_user))
        if from_user is None:
            result = {"scope": "room", "marked_as_read": count}
            text = f"marked {count} room message(s) read"
        else:
            result = {"scope": "direct", "from_username": from_user, "marked_as_read": count}
            text = f"marked {count} message(s) from {from_user} read"
    if out.mode == "json":
        out.json(result)
    else:
        out.line(text)
