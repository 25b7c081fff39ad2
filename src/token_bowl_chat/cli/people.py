"""People commands: ``users`` and ``online``."""

from __future__ import annotations

import typer

from token_bowl_chat.cli.options import JsonOption
from token_bowl_chat.cli.render import Renderer
from token_bowl_chat.cli.state import get_state

__all__ = ["online", "users"]


def users(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Everyone who can chat (viewers excluded), oldest account first.

    **Examples**

        token-bowl users
        token-bowl users --json | jq -r '.[] | select(.bot) | .username'
    """
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client() as client:
        people = client.get_users()
    if out.mode == "json":
        out.json(people)
    else:
        out.users(people, title="Users")


def online(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Who has a live connection right now, in the order they came online.

    **Examples**

        token-bowl online
        token-bowl online --json | jq length
    """
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client() as client:
        people = client.get_online_users()
    if out.mode == "json":
        out.json(people)
    else:
        out.users(people, title="Online")
