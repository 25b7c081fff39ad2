"""``serve``: start the server (the ``[server]`` extra), with its settings as options.

Every option mirrors a field of ``token_bowl_chat_server.settings.Settings`` and reads the
same environment variable (``TOKEN_BOWL_<NAME>``; the database URL also ``DATABASE_URL``).
The server package is imported only when the command runs, so the client install, which lacks
it, still has a working ``token-bowl``.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from pydantic import ValidationError as SettingsError

from token_bowl_chat.cli.errors import CliError

__all__ = ["serve"]

_INSTALL_HINT = "pip install 'token-bowl-chat[server]'"


def _opt(name: str, help: str, metavar: str | None = None) -> Any:
    """An option named like the Settings field, reading its ``TOKEN_BOWL_`` variable."""
    return typer.Option(
        f"--{name}",
        envvar=f"TOKEN_BOWL_{name.upper().replace('-', '_')}",
        help=help,
        metavar=metavar,
        show_default=False,
    )


def serve(
    host: Annotated[str | None, _opt("host", "Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, _opt("port", "Port to bind (default 8000).")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar=["TOKEN_BOWL_DATABASE_URL", "DATABASE_URL"],
            metavar="URL",
            help="SQLAlchemy async URL (default sqlite+aiosqlite:///./data/token_bowl_chat.db).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str | None, _opt("log-level", "debug, info, warning or error (default info).")
    ] = None,
    heartbeat_interval: Annotated[
        float | None, _opt("heartbeat-interval", "Seconds between server pings (30).")
    ] = None,
    heartbeat_timeout: Annotated[
        float | None, _opt("heartbeat-timeout", "Close connections silent this long (90).")
    ] = None,
    typing_timeout: Annotated[
        float | None, _opt("typing-timeout", "Seconds until unrenewed typing stops (5).")
    ] = None,
    typing_relay_interval: Annotated[
        float | None, _opt("typing-relay-interval", "Relay typing renewals this often (2).")
    ] = None,
    outbox_size: Annotated[
        int | None, _opt("outbox-size", "Frames queued per connection (1024).")
    ] = None,
    max_frame_bytes: Annotated[
        int | None, _opt("max-frame-bytes", "Largest inbound WebSocket frame (1048576).")
    ] = None,
    send_rate: Annotated[
        float | None, _opt("send-rate", "Messages per second per user, sustained (20).")
    ] = None,
    send_burst: Annotated[
        int | None, _opt("send-burst", "Messages per user in a burst (200).")
    ] = None,
    write_batch_max: Annotated[
        int | None, _opt("write-batch-max", "Most messages per transaction (256).")
    ] = None,
    webhook_attempts: Annotated[
        int | None, _opt("webhook-attempts", "Tries per webhook target (3).")
    ] = None,
    webhook_timeout: Annotated[
        float | None, _opt("webhook-timeout", "Seconds per webhook try (10).")
    ] = None,
    webhook_backoff: Annotated[
        float | None, _opt("webhook-backoff", "Seconds before the second try, doubled (1).")
    ] = None,
    webhook_queue_size: Annotated[
        int | None, _opt("webhook-queue-size", "Messages waiting for webhooks (10000).")
    ] = None,
    webhook_workers: Annotated[
        int | None, _opt("webhook-workers", "Webhook worker tasks (4).")
    ] = None,
    webhook_allow_private: Annotated[
        bool | None,
        _opt("webhook-allow-private", "Let webhooks reach loopback and private addresses."),
    ] = None,
    webhook_shutdown_grace: Annotated[
        float | None, _opt("webhook-shutdown-grace", "Seconds for deliveries at shutdown (2).")
    ] = None,
) -> None:
    """Run the Token Bowl Chat server until Ctrl-C (needs the `[server]` extra).

    Each option can also be set with the environment variable shown beside it; an option
    on the command line wins. The database schema is migrated at start.

    **Examples**

        token-bowl serve
        token-bowl serve --host 0.0.0.0 --port 8123 --database-url sqlite+aiosqlite:///./chat.db
        TOKEN_BOWL_SEND_RATE=5 token-bowl serve --log-level debug
    """
    try:
        from token_bowl_chat_server.__main__ import serve as run_server
    except ImportError as exc:
        missing = f" (missing: {exc.name})" if exc.name else ""
        raise CliError(f"the server is not installed; run: {_INSTALL_HINT}{missing}") from None

    argv: list[str] = []
    flags: dict[str, str | int | None] = {
        "--host": host,
        "--port": port,
        "--database-url": database_url,
        "--log-level": log_level,
    }
    for flag, given in flags.items():
        if given is not None:
            argv += [flag, str(given)]
    # The server's own parser takes only the four above; the rest reach Settings through
    # the environment variables it reads anyway (this process becomes the server).
    environment: dict[str, str | int | float | None] = {
        "heartbeat_interval": heartbeat_interval,
        "heartbeat_timeout": heartbeat_timeout,
        "typing_timeout": typing_timeout,
        "typing_relay_interval": typing_relay_interval,
        "outbox_size": outbox_size,
        "max_frame_bytes": max_frame_bytes,
        "send_rate": send_rate,
        "send_burst": send_burst,
        "write_batch_max": write_batch_max,
        "webhook_attempts": webhook_attempts,
        "webhook_timeout": webhook_timeout,
        "webhook_backoff": webhook_backoff,
        "webhook_queue_size": webhook_queue_size,
        "webhook_workers": webhook_workers,
        "webhook_allow_private": webhook_allow_private,
        "webhook_shutdown_grace": webhook_shutdown_grace,
    }
    for name, value in environment.items():
        if value is not None:
            os.environ[f"TOKEN_BOWL_{name.upper()}"] = str(value)
    try:
        run_server(argv, prog="token-bowl serve")
    except SettingsError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise CliError(f"invalid server setting: {problems}") from None
