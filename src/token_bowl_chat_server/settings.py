"""Server settings, read from environment variables and ``.env``.

Every variable has the prefix ``TOKEN_BOWL_`` (``TOKEN_BOWL_PORT``), except ``DATABASE_URL``
and ``REDIS_URL``, which are also read without it because every deployment tool knows those
names. Only ``__main__`` instantiates this class; everything else receives the instance.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/token_bowl_chat.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TOKEN_BOWL_", env_file=".env", extra="ignore", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("TOKEN_BOWL_DATABASE_URL", "DATABASE_URL"),
    )
    log_level: str = "info"

    # Several server processes (behind a load balancer, on PostgreSQL): set a Redis URL
    # (``REDIS_URL`` is read too), e.g. redis://127.0.0.1:6379/0. Live delivery, presence,
    # typing, account changes and the rate limits then cross processes through it. Unset:
    # everything stays in this process's memory (one process only).
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("TOKEN_BOWL_REDIS_URL", "REDIS_URL")
    )
    # Each process renews its presence in Redis this often; a process that stops renewing
    # (killed, frozen, cut off) drops out of ``GET /users/online`` after the timeout.
    node_heartbeat_interval: float = Field(default=5.0, gt=0)
    node_heartbeat_timeout: float = Field(default=15.0, gt=0)
    # A message or edit with a seq that has not reached a process while a later one has is
    # waited for this long (seconds), then read from the database, so receivers on every
    # process see seq order with no gap.
    sequence_hold: float = Field(default=0.3, gt=0)

    # WebSocket heartbeat: an app-level ping every interval; a connection silent for longer
    # than the stale timeout is closed (close code 1001).
    heartbeat_interval: float = Field(default=30.0, gt=0)
    heartbeat_timeout: float = Field(default=90.0, gt=0)

    # Typing: an indicator not renewed within this time is announced as stopped.
    typing_timeout: float = Field(default=5.0, gt=0)
    # A renewal is relayed at most this often per typist and target.
    typing_relay_interval: float = Field(default=2.0, ge=0)

    # Per-connection outbox, in frames. A connection that falls this far behind is closed
    # with 4001 (slow consumer) instead of slowing anyone else down.
    outbox_size: int = Field(default=1024, ge=1)
    # Largest inbound WebSocket frame in bytes; bigger frames close the socket with 1009.
    max_frame_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Inbound budget per WebSocket connection, over every frame it sends (typing and pong
    # included): a bucket of ws_frame_burst frames refilled at ws_frame_rate per second. A
    # frame beyond it is not processed and gets an error frame with code rate_limited; a
    # connection refused more than ws_frame_burst times (one refusal forgiven per 10 frames'
    # worth of refill) is closed with 4002.
    ws_frame_rate: float = Field(default=50.0, gt=0)
    ws_frame_burst: int = Field(default=300, ge=1)
    # Sends of one WebSocket connection in flight at once: each is admitted in frame order
    # and joins the next group commit without waiting for the one before; replies still come
    # back in frame order. At the bound the connection's next frame waits for the oldest
    # reply. 1: no pipelining (every frame answered before the next is read).
    ws_pipeline_window: int = Field(default=64, ge=1)
    # A server-side close waits this long for the peer to take the close frame, then cuts
    # the socket off; the connection and its presence are freed either way.
    ws_close_timeout: float = Field(default=5.0, gt=0)
    # Open WebSocket connections per user and per client address on this node; beyond them
    # the upgrade is refused with HTTP 429 too_many_connections.
    ws_max_connections_per_user: int = Field(default=20, ge=1)
    ws_max_connections_per_address: int = Field(default=200, ge=1)
    # Per-user send limit: a bucket of send_burst messages refilled at send_rate per second.
    # Beyond it a send gets 429 / an error frame with code rate_limited.
    send_rate: float = Field(default=20.0, gt=0)
    send_burst: int = Field(default=200, ge=1)
    # Bots get a stricter bucket on top of the per-user one, so a runaway bot is slowed down
    # long before it could flood the room: bot_send_burst at once, then bot_send_rate per s.
    bot_send_rate: float = Field(default=2.0, gt=0)
    bot_send_burst: int = Field(default=20, ge=1)
    # The most bot messages the room takes in a row; the next bot room message is refused
    # (429 / error frame bot_turn_limit) until a non-bot posts there. 0: no cap.
    bot_turn_cap: int = Field(default=20, ge=0)
    # Registrations per client address: a bucket of register_burst refilled at register_rate
    # per second (default: 20 at once, then one every 5 s). Beyond it: 429 rate_limited.
    register_rate: float = Field(default=0.2, gt=0)
    register_burst: int = Field(default=20, ge=1)
    # Messages committed in one database transaction under load (group commit).
    write_batch_max: int = Field(default=256, ge=1)

    # Webhooks (PROTOCOL.md 7.9), delivered in the background, never awaited by the sender.
    # Tries per target; each try may take at most webhook_timeout seconds in total.
    webhook_attempts: int = Field(default=3, ge=1)
    webhook_timeout: float = Field(default=10.0, gt=0)
    # Wait before the second try, doubled before each later one (1 s, 2 s, ...).
    webhook_backoff: float = Field(default=1.0, ge=0)
    # Messages waiting for delivery; when full, new messages get no webhooks (dropped, logged).
    webhook_queue_size: int = Field(default=10_000, ge=1)
    # Worker tasks; each handles one message at a time, its targets concurrently.
    webhook_workers: int = Field(default=4, ge=1)
    # No longer used: every webhook is signed with its owner's own secret (shown when the
    # webhook is set). Kept only so that startup can warn a deployment that still sets it.
    webhook_secret: SecretStr | None = None
    # Webhooks never go to loopback, private (RFC 1918, fc00::/7), link-local or CGNAT
    # addresses unless this is true (receivers on the server's own network). Unspecified,
    # multicast, reserved and cloud metadata addresses are refused either way.
    webhook_allow_private: bool = False
    # Deliveries kept per user for GET /users/me/webhook/deliveries (the newest).
    webhook_log_size: int = Field(default=50, ge=1, le=1000)
    # At shutdown, queued and in-flight deliveries get this long before they are cancelled.
    webhook_shutdown_grace: float = Field(default=2.0, ge=0)

    # The first admin (registration never grants admin): when both are set and no user of
    # that name exists yet, startup creates it as an admin with this key (32-128 characters).
    # Nothing happens once the user exists. `token-bowl admin create NAME` is the other way.
    bootstrap_admin_username: str | None = Field(default=None, min_length=1, max_length=50)
    bootstrap_admin_key: SecretStr | None = None

    # How long this process trusts an account it remembers (by API key hash, and who has a
    # webhook) without reading it again. Changes made through this process apply at once
    # whatever the value; this bounds only changes made elsewhere (`token-bowl admin create`,
    # another node). 0: read the account on every request.
    account_cache_seconds: float = Field(default=1.0, ge=0)

    # GET /metrics is served only when this is set, and only to requests carrying
    # Authorization: Bearer <token>: the numbers describe the whole node, not one user.
    metrics_token: SecretStr | None = None
