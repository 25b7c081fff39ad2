"""Start the server: ``python -m token_bowl_chat_server`` (``token-bowl serve`` calls
:func:`serve` too).

The only place :class:`Settings` is instantiated.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
from collections.abc import Sequence

import uvicorn

from token_bowl_chat_server.admin_tool import MadeAdmin, create_admin
from token_bowl_chat_server.api.rest.hot_routes import HotRoutes
from token_bowl_chat_server.app import create_app
from token_bowl_chat_server.http_protocol import CoalescingHttpProtocol
from token_bowl_chat_server.logging_setup import log_config
from token_bowl_chat_server.settings import Settings
from token_bowl_chat_server.ws_protocol import WebSocketProtocol
from token_bowl_chat_server.ws_shortcut import WebSocketsDirect


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the Token Bowl Chat server. Every option can also be set with an "
        "environment variable (TOKEN_BOWL_HOST, TOKEN_BOWL_PORT, DATABASE_URL, ...).",
    )
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (default 8000)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite under ./data/)")
    parser.add_argument("--log-level", help="debug, info, warning or error (default info)")
    return parser


# The collector's thresholds (CPython's defaults: 700, 10, 10). Measured with 500 open
# WebSockets, a full collection (one per 25 % growth of the oldest generation) takes 33-42 ms
# and stalls every delivery behind it. With the defaults, the one a burst of connections makes
# due waited for ten more middle-generation passes and fell among the next messages (it set
# steady-500's p99 in every run measured); the per-message objects the young generation
# promoted at 700 also made one due within seconds. So: the young generation every 2,000 net
# allocations (Python 3.13's default), and the oldest one considered at every other
# middle-generation pass, so that it is collected while the growth that made it due happens.
COLLECTOR_THRESHOLDS = (2000, 10, 1)


def _shows_info(level: str) -> bool:
    number = logging.getLevelName(level.upper())
    return not isinstance(number, int) or number <= logging.INFO


def serve(argv: Sequence[str] | None = None, prog: str = "token_bowl_chat_server") -> None:
    args = _parser(prog).parse_args(argv)
    overrides = {
        key: value
        for key, value in {
            "host": args.host,
            "port": args.port,
            "database_url": args.database_url,
            "log_level": args.log_level,
        }.items()
        if value is not None
    }
    settings = Settings(**overrides)
    api = create_app(settings)
    app = HotRoutes(WebSocketsDirect(api), api)
    # What is loaded by now (modules, the app, SQLAlchemy's and pydantic's machinery: about
    # 150,000 objects) lives as long as the process. Frozen, the collector stops re-scanning
    # it: with 500 connections open a full collection took 160-180 ms, stalling every
    # delivery behind it (steady-500's p99 went from about 30 ms to 200 ms in most runs);
    # frozen it takes 30-40 ms.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=log_config(settings.log_level),
        log_level=settings.log_level.lower(),
        # The outer layers are plain functions handing back a coroutine, which uvicorn's
        # guess would take for ASGI 2.
        interface="asgi3",
        # uvicorn formats every request's access line (address, quoted path) before the
        # logger drops it; at a level that hides them, it need not.
        access_log=_shows_info(settings.log_level),
        http=CoalescingHttpProtocol,  # uvicorn's, with each response's head and body in one write
        ws=WebSocketProtocol,  # uvicorn's, answering upgrades it refuses while parsing
        ws_max_size=settings.max_frame_bytes,
        # Deflate would compress each frame once per connection; fan-out sends the same
        # encoded text to every recipient, so it stays off.
        ws_per_message_deflate=False,
        # The app sends its own JSON pings; protocol pings are answered but not needed.
        ws_ping_interval=None,
        timeout_graceful_shutdown=5,
        server_header=False,
    )


def make_admin(username: str, database_url: str | None = None) -> MadeAdmin:
    """``token-bowl admin create``: the server's settings, then its database directly."""
    settings = Settings(database_url=database_url) if database_url else Settings()
    return asyncio.run(create_admin(settings, username))


if __name__ == "__main__":
    serve()
