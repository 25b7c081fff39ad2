"""``token-bowl admin ...``: the admin endpoints from a terminal.

``admin create`` runs on the server's machine and opens the server's database itself (the
first admin has no key to call the API with); every other command calls the API with an
admin's key, through the public SDK. Users are named by id or by username.
"""

from __future__ import annotations

import sys
import uuid
from typing import Annotated

import typer

from token_bowl_chat import TokenBowlClient
from token_bowl_chat.cli.errors import CliError, UsageError
from token_bowl_chat.cli.options import JsonOption
from token_bowl_chat.cli.render import Renderer
from token_bowl_chat.cli.state import get_state
from token_bowl_chat.models import (
    AdminUpdateUserRequest,
    MessageResponse,
    Role,
    UserProfileResponse,
)

__all__ = ["admin_app"]

_INSTALL_HINT = "pip install 'token-bowl-chat[server]'"

admin_app = typer.Typer(
    help="Administer the server: accounts, roles, live connections, messages. Needs an "
    "admin's API key (the first admin comes from `token-bowl admin create`).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
users_app = typer.Typer(help="List, show, change, delete accounts.", no_args_is_help=True)
messages_app = typer.Typer(help="Show, edit or delete any message.", no_args_is_help=True)
conversations_app = typer.Typer(help="Delete any conversation.", no_args_is_help=True)
admin_app.add_typer(users_app, name="users")
admin_app.add_typer(messages_app, name="messages")
admin_app.add_typer(conversations_app, name="conversations")

UserArg = Annotated[str, typer.Argument(metavar="USER", help="A user id or username.")]
MessageArg = Annotated[str, typer.Argument(metavar="MESSAGE_ID", help="The message's id.")]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed in scripts).")
]


def _user_id(client: TokenBowlClient, user: str) -> str:
    """``user`` as an id: itself when it is a UUID, else the id of that username."""
    try:
        return str(uuid.UUID(user))
    except ValueError:
        pass
    for account in client.admin_get_all_users():
        if account.username == user:
            return account.id
    raise CliError(f"not found: no user named {user!r}")


def _confirm(what: str, yes: bool) -> None:
    if yes:
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(f"refusing to {what} without --yes (not a terminal)")
    if not typer.confirm(f"Really {what}?", default=False):
        raise typer.Exit(1)


def _profile(out: Renderer, profile: UserProfileResponse, title: str) -> None:
    if out.mode == "json":
        out.json(profile)
        return
    out.record(
        {
            "username": profile.username,
            "id": profile.id,
            "role": str(profile.role),
            "email": profile.email,
            "logo": profile.logo,
            "emoji": profile.emoji,
            "webhook": profile.webhook_url,
            "created": profile.created_at,
        },
        title=title,
    )


def _message(out: Renderer, message: MessageResponse, title: str) -> None:
    if out.mode == "json":
        out.json(message)
    else:
        out.messages([message], title=title)


# --- admin create ---------------------------------------------------------------------------


def create(
    username: Annotated[str, typer.Argument(metavar="USERNAME", help="Who becomes an admin.")],
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar=["TOKEN_BOWL_DATABASE_URL", "DATABASE_URL"],
            metavar="URL",
            help="The server's database (default: what the server reads from DATABASE_URL "
            "or .env, else sqlite+aiosqlite:///./data/token_bowl_chat.db).",
            show_default=False,
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Make USERNAME an admin, on the server's machine, and print its new API key once.

    Opens the server's database directly (run it where the server runs, with the same
    settings): creates the user as an admin, or promotes an existing user and gives it a
    new key (the old one stops working). Needs the `[server]` extra.

    **Examples**

        token-bowl admin create root
        DATABASE_URL=postgresql+asyncpg://chat@db/chat token-bowl admin create root --json
    """
    try:
        from sqlalchemy.exc import SQLAlchemyError

        from token_bowl_chat_server.__main__ import make_admin
        from token_bowl_chat_server.domain.errors import DomainError
    except ImportError as exc:
        missing = f" (missing: {exc.name})" if exc.name else ""
        raise CliError(f"the server is not installed; run: {_INSTALL_HINT}{missing}") from None
    try:
        made = make_admin(username, database_url)
    except DomainError as exc:
        raise CliError(exc.message) from None
    except (SQLAlchemyError, OSError) as exc:
        raise CliError(f"cannot use the server's database: {exc}") from None
    out = Renderer.for_streams(json_output)
    if out.mode == "json":
        out.json(
            {
                "id": made.user.id,
                "username": made.user.username,
                "role": made.user.role.value,
                "api_key": made.api_key,
                "created": made.created,
            }
        )
        return
    out.record(
        {
            "username": made.user.username,
            "id": made.user.id,
            "role": made.user.role.value,
            "api_key": made.api_key,
        },
        title="Created admin" if made.created else "Promoted to admin (new key)",
    )
    if not made.created:
        out.notice(f"{made.user.username} existed: promoted, and its old key no longer works.")
    out.notice("Keep the API key secret: it is shown only this once.")


admin_app.command("create")(create)


# --- users ----------------------------------------------------------------------------------


@users_app.command("list")
def users_list(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Every account, viewers and bots included, oldest first.

    **Examples**

        token-bowl admin users list
        token-bowl admin users list --json | jq -r '.[] | select(.role == "admin") | .username'
    """
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client() as client:
        accounts = client.admin_get_all_users()
    if out.mode == "json":
        out.json(accounts)
        return
    out.table(
        ["username", "role", "email", "created", "id"],
        [(a.username, str(a.role), a.email, a.created_at, a.id) for a in accounts],
        title="Accounts",
        styles={"username": "bold", "id": "dim"},
    )


@users_app.command("get")
def users_get(ctx: typer.Context, user: UserArg, json_output: JsonOption = False) -> None:
    """One account's profile (the key masked).

    **Examples**

        token-bowl admin users get alice
    """
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client() as client:
        profile = client.admin_get_user(_user_id(client, user))
    _profile(out, profile, "Account")


@users_app.command("update")
def users_update(
    ctx: typer.Context,
    user: UserArg,
    username: Annotated[str | None, typer.Option(help="A new username.")] = None,
    email: Annotated[str | None, typer.Option(help="A new email address.")] = None,
    webhook: Annotated[str | None, typer.Option(metavar="URL", help="A new webhook URL.")] = None,
    logo: Annotated[str | None, typer.Option(help="A logo name.")] = None,
    emoji: Annotated[str | None, typer.Option(help="An emoji avatar.")] = None,
    role: Annotated[Role | None, typer.Option(help="A new role.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Change an account's profile (and role); options left out stay as they are.

    A rename works like the user's own: old messages show the new name.

    **Examples**

        token-bowl admin users update alice --username alice2 --emoji 🦊
    """
    fields = {
        "username": username,
        "email": email,
        "webhook_url": webhook,
        "logo": logo,
        "emoji": emoji,
        "role": role,
    }
    given = {name: value for name, value in fields.items() if value is not None}
    if not given:
        raise UsageError("nothing to change: give at least one option (see --help)")
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client() as client:
        request = AdminUpdateUserRequest(**given)
        profile = client.admin_update_user(_user_id(client, user), request)
    _profile(out, profile, "Updated")


@users_app.command("role")
def users_role(
    ctx: typer.Context,
    user: UserArg,
    role: Annotated[Role, typer.Argument(metavar="ROLE", help="admin, member, viewer or bot.")],
    json_output: JsonOption = False,
) -> None:
    """Give an account a role. Open connections act with it from their next frame; the
    last admin cannot be demoted.

    **Examples**

        token-bowl admin users role alice admin
        token-bowl admin users role spammer viewer
    """
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client() as client:
        result = client.admin_assign_role(_user_id(client, user), role)
    if out.mode == "json":
        out.json(result)
    else:
        out.line(result.message)


@users_app.command("delete")
def users_delete(
    ctx: typer.Context, user: UserArg, yes: YesOption = False, json_output: JsonOption = False
) -> None:
    """Delete an account and the bots it created; their connections are closed at once.
    Their messages stay. The last admin cannot be deleted.

    **Examples**

        token-bowl admin users delete spammer --yes
    """
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client() as client:
        user_id = _user_id(client, user)
        _confirm(f"delete user {user}", yes)
        client.admin_delete_user(user_id)
    if out.mode == "json":
        out.json({"deleted": user_id})
    else:
        out.line(f"Deleted user {user}")


# --- connections ----------------------------------------------------------------------------


@admin_app.command("connections")
def connections(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Open WebSocket connections now: who, and how long since each last spoke.

    **Examples**

        token-bowl admin connections
        token-bowl admin connections --json | jq .total_connections
    """
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client() as client:
        stats = client.admin_get_websocket_connections()
    if out.mode == "json":
        out.json(stats)
        return
    out.table(
        ["username", "connection", "idle s", "since pong s", "healthy"],
        [
            (
                c.username,
                c.connection_id,
                f"{c.seconds_since_activity:.1f}",
                f"{c.seconds_since_pong:.1f}",
                c.is_healthy,
            )
            for c in stats.connections
        ],
        title=f"{stats.total_connections} connections of {stats.total_users} users",
    )


# --- messages and conversations -------------------------------------------------------------


@messages_app.command("get")
def messages_get(
    ctx: typer.Context, message_id: MessageArg, json_output: JsonOption = False
) -> None:
    """Any message, room or DM.

    **Examples**

        token-bowl admin messages get 0b7c...-...
    """
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client() as client:
        message = client.admin_get_message(message_id)
    _message(out, message, "Message")


@messages_app.command("edit")
def messages_edit(
    ctx: typer.Context,
    message_id: MessageArg,
    content: Annotated[str, typer.Argument(metavar="CONTENT", help="The new text.")],
    json_output: JsonOption = False,
) -> None:
    """Replace any message's text.

    **Examples**

        token-bowl admin messages edit 0b7c...-... "[removed by a moderator]"
    """
    out = Renderer.for_streams(json_output)
    with get_state(ctx).client() as client:
        message = client.admin_update_message(message_id, content)
    _message(out, message, "Edited")


@messages_app.command("delete")
def messages_delete(
    ctx: typer.Context,
    message_id: MessageArg,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Delete any message.

    **Examples**

        token-bowl admin messages delete 0b7c...-... --yes
    """
    out = Renderer.for_streams(json_output)
    _confirm(f"delete message {message_id}", yes)
    with get_state(ctx).client() as client:
        client.admin_delete_message(message_id)
    if out.mode == "json":
        out.json({"deleted": message_id})
    else:
        out.line(f"Deleted message {message_id}")


@conversations_app.command("delete")
def conversations_delete(
    ctx: typer.Context,
    conversation_id: Annotated[str, typer.Argument(metavar="CONVERSATION_ID")],
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Delete anyone's conversation.

    **Examples**

        token-bowl admin conversations delete 5f1e...-... --yes
    """
    out = Renderer.for_streams(json_output)
    _confirm(f"delete conversation {conversation_id}", yes)
    with get_state(ctx).client() as client:
        client.admin_delete_conversation(conversation_id)
    if out.mode == "json":
        out.json({"deleted": conversation_id})
    else:
        out.line(f"Deleted conversation {conversation_id}")
