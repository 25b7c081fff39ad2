"""Account commands: ``register``, ``whoami``, ``rotate-key``, the ``profile`` group and the
``config`` group. Each parses its arguments, calls the public client and hands the result to
the renderer."""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated

import typer

from token_bowl_chat import TokenBowlClient
from token_bowl_chat.cli import config as cfg
from token_bowl_chat.cli.errors import UsageError
from token_bowl_chat.cli.options import JsonOption
from token_bowl_chat.cli.render import Renderer
from token_bowl_chat.cli.state import CliState, get_state

__all__ = ["config_app", "profile_app", "register", "rotate_key", "whoami"]

_SOURCE_NAMES: dict[cfg.Source, str] = {
    "flag": "command-line flag",
    "env": "environment",
    "config": "config file",
    "default": "default",
    "unset": "not set",
}


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _save_key(state: CliState, api_key: str, base_url: str | None) -> None:
    """Store ``api_key`` (and ``base_url`` when given) in the config file, keeping the rest."""
    current = state.load_config().with_value("api_key", api_key)
    if base_url is not None:
        current = current.with_value("base_url", base_url)
    cfg.save(state.config_path, current)


# --- register / whoami / rotate-key ---------------------------------------------------------


def register(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(metavar="USERNAME", help="The name to register.")],
    logo: Annotated[
        str | None, typer.Option(help="A logo name (see `token-bowl profile logos`).")
    ] = None,
    webhook: Annotated[
        str | None, typer.Option(metavar="URL", help="Receive a POST for every message.")
    ] = None,
    save: Annotated[
        bool | None,
        typer.Option(
            "--save/--no-save",
            help="Store the new key (and the server URL) in the config file. "
            "Default: ask on a terminal, don't save otherwise.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Create an account and print its API key (shown only this once).

    With `--save` the key, and the server URL used, go to the config file, so later
    commands need no `--api-key`.

    **Examples**

        token-bowl register alice --save
        token-bowl --base-url http://chat.example:8000 register bot7 --json --no-save
        KEY=$(token-bowl register bot8 --json --no-save | jq -r .api_key)
    """
    state = get_state(ctx)
    out = Renderer.for_streams(json_output)
    with state.client(need_key=False) as client:
        account = client.register(username, webhook_url=webhook, logo=logo)
        base_url = client.base_url
    if out.mode == "json":
        out.json(account)
    else:
        out.record(
            {
                "username": account.username,
                "id": account.id,
                "role": str(account.role),
                "api_key": account.api_key,
            },
            title="Registered",
        )
        out.notice("Keep the API key secret: the server shows it only this once.")
    if save is None:
        save = (
            out.mode != "json"
            and _interactive()
            and typer.confirm(f"Save the key to {state.config_path}?", default=True)
        )
    if not save:
        out.notice("Not saved; to use it: token-bowl config set api-key")
    else:
        settings = state.resolved()
        keep_url = base_url if settings.base_url_source in ("flag", "env") else None
        _save_key(state, account.api_key, keep_url)
        out.notice(f"Saved the key to {state.config_path}.")
        if settings.api_key_source in ("flag", "env"):
            out.warning(
                f"the {_SOURCE_NAMES[settings.api_key_source]} key still takes precedence "
                "over the saved one"
            )


def whoami(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Show your profile on the server (the key masked) and which server that is.

    **Examples**

        token-bowl whoami
        token-bowl whoami --json | jq -r .username
    """
    state = get_state(ctx)
    out = Renderer.for_streams(json_output)
    with state.client() as client:
        profile = client.get_my_profile()
        base_url = client.base_url
    if out.mode == "json":
        out.json(profile)
        return
    out.record(
        {
            "username": profile.username,
            "id": profile.id,
            "role": str(profile.role),
            "logo": profile.logo,
            "emoji": profile.emoji,
            "webhook": profile.webhook_url,
            "created": profile.created_at,
            "api_key": profile.api_key,
            "server": base_url,
        }
    )


def rotate_key(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Replace your API key; the old one stops working at once.

    The new key is printed. If the old key came from the config file, the new one is
    saved there; if it came from `--api-key` or `TOKEN_BOWL_CHAT_API_KEY`, update that
    yourself.

    **Examples**

        token-bowl rotate-key
        token-bowl rotate-key --json | jq -r .api_key
    """
    state = get_state(ctx)
    out = Renderer.for_streams(json_output)
    settings = state.resolved()
    with state.client() as client:
        result = client.regenerate_api_key()
    new_key = result["api_key"]
    saved = settings.api_key_source == "config"
    # Print before saving: if the save fails, the key must not be lost with it.
    if out.mode == "json":
        out.json({**result, "saved_to": str(state.config_path) if saved else None})
    else:
        out.record({"api_key": new_key}, title="New API key")
    if saved:
        _save_key(state, new_key, None)
        out.notice(f"Saved the new key to {state.config_path}.")
    else:
        out.warning(
            f"the old key (from the {_SOURCE_NAMES[settings.api_key_source]}) no longer "
            "works; replace it with the new one"
        )


# --- profile --------------------------------------------------------------------------------

profile_app = typer.Typer(
    help="Change your profile: username, logo, webhook.", no_args_is_help=True
)


@profile_app.command("set-username")
def set_username(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(metavar="NEW_NAME")],
    json_output: JsonOption = False,
) -> None:
    """Rename yourself. Your key and messages stay.

    **Examples**

        token-bowl profile set-username alice2
    """
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client() as client:
        profile = client.update_my_username(username)
    if out.mode == "json":
        out.json(profile)
    else:
        out.line(f"username is now {profile.username}")


@profile_app.command("set-logo")
def set_logo(
    ctx: typer.Context,
    logo: Annotated[
        str | None, typer.Argument(metavar="LOGO", help="See `token-bowl profile logos`.")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove your logo.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Set your logo to one of the server's logo names, or remove it with `--clear`.

    **Examples**

        token-bowl profile logos
        token-bowl profile set-logo claude-color.png
        token-bowl profile set-logo --clear
    """
    _set_or_clear(ctx, json_output, "LOGO", logo, clear, TokenBowlClient.update_my_logo, "logo")


@profile_app.command("set-webhook")
def set_webhook(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Argument(metavar="URL")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Stop webhook deliveries.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Set the http(s) URL that receives a POST for every message you get, or remove it.

    **Examples**

        token-bowl profile set-webhook https://bot.example/hook
        token-bowl profile set-webhook --clear
    """
    update = TokenBowlClient.update_my_webhook
    _set_or_clear(ctx, json_output, "URL", url, clear, update, "webhook_url")


def _set_or_clear(
    ctx: typer.Context,
    json_output: bool,
    metavar: str,
    value: str | None,
    clear: bool,
    update: Callable[[TokenBowlClient, str | None], dict[str, str]],
    key: str,
) -> None:
    """Set a profile field (``set-logo``, ``set-webhook``) or clear it with ``--clear``;
    ``key`` is the field in the server's answer."""
    if (value is None) == (not clear):
        raise UsageError(f"give a {metavar} or --clear (one of them)")
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client() as client:
        result = update(client, None if clear else value)
    if out.mode == "json":
        out.json(result)
    else:
        label = key.removesuffix("_url")
        out.line(f"{label} is now {result.get(key) or '(none)'}")


@profile_app.command("logos")
def logos(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List the logo names `set-logo` accepts (needs no key).

    **Examples**

        token-bowl profile logos --json
    """
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client(need_key=False) as client:
        names = client.get_available_logos()
    if out.mode == "json":
        out.json(names)
    else:
        for name in names:
            out.line(name)


# --- config ---------------------------------------------------------------------------------


class ConfigKey(StrEnum):
    API_KEY = "api-key"
    BASE_URL = "base-url"


_FIELDS = {ConfigKey.API_KEY: "api_key", ConfigKey.BASE_URL: "base_url"}

config_app = typer.Typer(
    help="Store the API key and server URL in your config file (mode 0600).",
    no_args_is_help=True,
)


def _read_value(key: ConfigKey) -> str:
    """The value for ``config set KEY`` without one on the command line: a hidden prompt on
    a terminal (keeps the key out of shell history), else one line of stdin."""
    if sys.stdin.isatty():
        value: str = typer.prompt(str(key), hide_input=key is ConfigKey.API_KEY)
    else:
        value = sys.stdin.readline()
    value = value.strip()
    if not value:
        raise UsageError(f"no value given for {key}")
    return value


@config_app.command("set")
def config_set(
    ctx: typer.Context,
    key: Annotated[ConfigKey, typer.Argument(help="Which setting.")],
    value: Annotated[
        str | None,
        typer.Argument(
            metavar="[VALUE]",
            help="The value; omit it to type it at a hidden prompt (or pipe it on stdin).",
        ),
    ] = None,
) -> None:
    """Store a setting in the config file. Flags and environment variables still win.

    **Examples**

        token-bowl config set api-key            # prompts, input hidden
        token-bowl config set base-url http://127.0.0.1:8000
        pass show chat/key | token-bowl config set api-key
    """
    state = get_state(ctx)
    out = Renderer.for_streams(False)
    value = value if value is not None else _read_value(key)
    if key is ConfigKey.BASE_URL:
        try:
            with TokenBowlClient(base_url=value) as probe:  # validates and normalises
                value = probe.base_url
        except ValueError as exc:
            raise UsageError(f"invalid base URL: {exc}") from None
    cfg.save(state.config_path, state.load_config().with_value(_FIELDS[key], value))
    out.notice(f"Saved {key} to {state.config_path}.")


@config_app.command("unset")
def config_unset(
    ctx: typer.Context, key: Annotated[ConfigKey, typer.Argument(help="Which setting.")]
) -> None:
    """Remove a setting from the config file.

    **Examples**

        token-bowl config unset api-key
    """
    state = get_state(ctx)
    cfg.save(state.config_path, state.load_config().with_value(_FIELDS[key], None))
    Renderer.for_streams(False).notice(f"Removed {key} from {state.config_path}.")


@config_app.command("show")
def config_show(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Show the settings in effect and where each comes from (the key masked).

    **Examples**

        token-bowl config show
        token-bowl --base-url http://127.0.0.1:9000 config show --json
    """
    state = get_state(ctx)
    out = Renderer.for_streams(json_output)
    settings = state.resolved()
    data = {
        "path": str(settings.path),
        "exists": settings.path.exists(),
        "api_key": cfg.mask(settings.api_key) if settings.api_key else None,
        "api_key_source": settings.api_key_source,
        "base_url": settings.base_url,
        "base_url_source": settings.base_url_source,
    }
    if out.mode == "json":
        out.json(data)
    else:
        out.record(
            {
                "config file": f"{data['path']}{'' if data['exists'] else ' (not created yet)'}",
                "api_key": f"{cfg.mask(settings.api_key)} "
                f"({_SOURCE_NAMES[settings.api_key_source]})",
                "base_url": f"{settings.base_url} ({_SOURCE_NAMES[settings.base_url_source]})",
            }
        )
    if cfg.loose_permissions(settings.path):
        out.warning(f"{settings.path} is readable by others; run: chmod 600 {settings.path}")


@config_app.command("path")
def config_path(ctx: typer.Context) -> None:
    """Print where the config file is (set `TOKEN_BOWL_CHAT_CONFIG` to use another).

    **Examples**

        token-bowl config path
    """
    Renderer.for_streams(False).line(str(get_state(ctx).config_path))
