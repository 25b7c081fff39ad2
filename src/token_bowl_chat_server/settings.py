"""Server settings, read from environment variables and ``.env``.

Every variable has the prefix ``TOKEN_BOWL_`` (``TOKEN_BOWL_PORT``), except ``DATABASE_URL``,
which is also read without it because every deployment tool knows that name. Only
``__main__`` instantiates this class; everything else receives the instance.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
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
    # Messages committed in one database transaction under load (group commit).
    write_batch_max: int = Field(default=256, ge=1)
