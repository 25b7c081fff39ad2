"""Option declarations shared by several commands, so each reads and documents the same."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["JsonOption", "LimitOption", "OffsetOption", "SinceOption"]

JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document instead of text, for scripts."),
]
LimitOption = Annotated[
    int,
    typer.Option("--limit", "-n", min=1, max=1000, help="How many messages (1-1000)."),
]
OffsetOption = Annotated[
    int,
    typer.Option("--offset", min=0, help="Skip this many of the newest messages first."),
]
SinceOption = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="TIME",
        help="Only messages after this ISO-8601 time (e.g. 2025-01-31T12:00:00Z; "
        "no zone means UTC).",
    ),
]
