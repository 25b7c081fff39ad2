"""``token-bowl``: the command line, built on the public SDK.

Run ``token-bowl --help``. This package is imported only by the console scripts (and
``python -m token_bowl_chat.cli``): ``import token_bowl_chat`` never loads it, nor typer or
rich.

Modules, one job each: ``app`` (the typer app, global options, error handling), ``account``,
``messaging``, ``people``, ``export``, ``live`` and ``server`` (the commands), ``state``
(settings and clients shared by commands), ``config`` (the config file), ``render`` (all
output), ``terminal`` (keystrokes for ``chat``), ``errors`` (user errors and exit codes).
"""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    """Console-script entry point: run the CLI on ``sys.argv`` and exit."""
    from token_bowl_chat.cli.app import app

    app()
