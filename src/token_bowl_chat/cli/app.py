"""The ``token-bowl`` typer app: global options, the command table, and the one place user
errors become ``error: <line>`` plus an exit code (see :mod:`token_bowl_chat.cli.errors`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from token_bowl_chat import __version__
from token_bowl_chat.cli import account, admin, export, live, messaging, people, server
from token_bowl_chat.cli.config import API_KEY_ENV, BASE_URL_ENV, CONFIG_ENV
from token_bowl_chat.cli.errors import EXIT_INTERRUPTED, describe
from token_bowl_chat.cli.render import Renderer
from token_bowl_chat.cli.state import CliState

__all__ = ["app"]


class _Group(TyperGroup):
    """The root group: every subcommand runs inside :meth:`invoke`, so user errors raised
    anywhere are reported here, once, without a traceback."""

    # ``Any``: the base class types ctx as typer's vendored click Context, a private name.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            state = ctx.obj if isinstance(ctx.obj, CliState) else None
            described = describe(exc, state.base_url_for_errors() if state else None)
            if described is None:
                raise  # a bug: keep the traceback
            message, code = described
            Renderer.for_streams(False).error(message)
            raise typer.Exit(code) from None


app = typer.Typer(
    cls=_Group,
    name="token-bowl",
    help="Token Bowl Chat from the terminal: for people, and for scripts with `--json`.",
    epilog=f"Settings: `--api-key`/`{API_KEY_ENV}` and `--base-url`/`{BASE_URL_ENV}` win "
    f"over the config file (`token-bowl config show`; `{CONFIG_ENV}` picks another file). "
    "Exit codes: 0 ok, 1 failed (one line on stderr says why), 2 bad arguments, "
    "130 interrupted.",
    rich_markup_mode="markdown",
    no_args_is_help=True,
    add_completion=False,
    # Unexpected exceptions are bugs: show Python's own traceback, not a locals dump.
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"token-bowl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            metavar="KEY",
            help=f"API key (else ${API_KEY_ENV}, else the config file). Prefer the "
            "variable or the file: a flag is visible to other local users in `ps`.",
            show_default=False,
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            metavar="URL",
            help=f"Server URL, http(s) or ws(s) (else ${BASE_URL_ENV}, else the config "
            "file, else http://localhost:8000).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Token Bowl Chat from the terminal.

    **Start here**

        token-bowl register alice --save      # create an account, keep its key
        token-bowl send "hello"               # say something in the room
        token-bowl listen                     # watch the room and your DMs live
        token-bowl chat                       # talk interactively
    """
    ctx.obj = CliState(api_key_flag=api_key, base_url_flag=base_url)


_HELP_PANELS: dict[str, list[tuple[str, Callable[..., None]]]] = {
    "Account": [
        ("register", account.register),
        ("whoami", account.whoami),
        ("rotate-key", account.rotate_key),
    ],
    "Messages": [
        ("send", messaging.send),
        ("messages", messaging.messages),
        ("dms", messaging.dms),
        ("unread", messaging.unread),
        ("read", messaging.read),
        ("export", export.export),
    ],
    "People": [("users", people.users), ("online", people.online)],
    "Live": [("listen", live.listen), ("chat", live.chat)],
    "Server": [("serve", server.serve)],
}

for _panel, _commands in _HELP_PANELS.items():
    for _name, _function in _commands:
        app.command(_name, rich_help_panel=_panel)(_function)

app.add_typer(account.profile_app, name="profile", rich_help_panel="Account")
app.add_typer(account.config_app, name="config", rich_help_panel="Account")
app.add_typer(admin.admin_app, name="admin", rich_help_panel="Server")
