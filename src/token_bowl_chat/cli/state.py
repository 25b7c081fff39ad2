"""What every command shares: the global options, the settings they resolve to, and the
public SDK clients built from them.

The root callback stores a :class:`CliState` in the typer context; commands fetch it with
:func:`get_state`. Nothing here talks to the server until a command calls the client.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from token_bowl_chat import TokenBowlClient, TokenBowlWebSocket
from token_bowl_chat.cli import config as cfg
from token_bowl_chat.cli.errors import NO_KEY_HINT, CliError, UsageError

__all__ = ["CliState", "get_state"]


@dataclass
class CliState:
    """The global ``--api-key`` / ``--base-url`` flags plus the environment they run in."""

    api_key_flag: str | None = None
    base_url_flag: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    _resolved: cfg.Resolved | None = None

    @property
    def config_path(self) -> Path:
        return cfg.config_path(self.environ)

    def load_config(self) -> cfg.ConfigFile:
        """The stored file's settings. Raises ``ConfigError`` for an unreadable file."""
        return cfg.load(self.config_path)

    def resolved(self) -> cfg.Resolved:
        """Flag, environment, file, default: the settings this command runs with."""
        if self._resolved is None:
            self._resolved = cfg.resolve(
                api_key=self.api_key_flag,
                base_url=self.base_url_flag,
                config=self.load_config(),
                path=self.config_path,
                environ=self.environ,
            )
        return self._resolved

    def base_url_for_errors(self) -> str | None:
        """The base URL to name in an error line, or ``None`` if even that cannot be worked
        out (a broken config file)."""
        try:
            return self.resolved().base_url
        except Exception:
            return None

    def client(self, *, need_key: bool = True) -> TokenBowlClient:
        """A REST client for the resolved settings; close it (``with``) when done.

        Raises ``CliError`` when ``need_key`` and there is no key, ``UsageError`` for a base
        URL that is not http(s)/ws(s).
        """
        settings = self.resolved()
        if need_key and not settings.api_key:
            raise CliError(f"authentication failed: {NO_KEY_HINT}")
        try:
            return TokenBowlClient(api_key=settings.api_key, base_url=settings.base_url)
        except ValueError as exc:
            raise UsageError(f"invalid base URL: {exc}") from None

    def websocket(self, **options: Any) -> TokenBowlWebSocket:
        """A (not yet connected) WebSocket client; ``options`` go to its constructor."""
        settings = self.resolved()
        if not settings.api_key:
            raise CliError(f"authentication failed: {NO_KEY_HINT}")
        try:
            return TokenBowlWebSocket(
                api_key=settings.api_key, base_url=settings.base_url, **options
            )
        except ValueError as exc:
            raise UsageError(f"invalid base URL: {exc}") from None


def get_state(ctx: typer.Context) -> CliState:
    """The root command's state (a fresh default one when a command runs without the root,
    as in unit tests of a single command)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj
