"""The application factory. Its lifespan builds every resource and hands it down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from token_bowl_chat.protocol.close_codes import CloseCode
from token_bowl_chat_server.api import errors
from token_bowl_chat_server.api.cors import CORS
from token_bowl_chat_server.api.deps import Services
from token_bowl_chat_server.api.rest import (
    accounts,
    admin_users,
    bots,
    conversations,
    health,
    message_edits,
    messages,
    read_marks,
    users,
    web,
)
from token_bowl_chat_server.api.rest import metrics as metrics_api
from token_bowl_chat_server.api.rest.webhooks import router as webhook_router
from token_bowl_chat_server.api.ws import endpoint
from token_bowl_chat_server.observability import ServerMetrics
from token_bowl_chat_server.realtime.admission import ConnectionCaps
from token_bowl_chat_server.realtime.broker_memory import MemoryBroker
from token_bowl_chat_server.realtime.hub import Hub
from token_bowl_chat_server.realtime.presence_memory import MemoryPresenceStore
from token_bowl_chat_server.realtime.presence_store import PresenceStore
from token_bowl_chat_server.realtime.profile_frames import profile_announcer
from token_bowl_chat_server.realtime.rate_limit_memory import MemoryRateLimit
from token_bowl_chat_server.realtime.sessions import NodeSessions
from token_bowl_chat_server.scaleout import build_node
from token_bowl_chat_server.services.account_cache import AccountCache, CachedWebhookDirectory
from token_bowl_chat_server.services.accounts import Accounts
from token_bowl_chat_server.services.admin import AdminService
from token_bowl_chat_server.services.bots import BotService
from token_bowl_chat_server.services.conversations import ConversationService
from token_bowl_chat_server.services.edits import EditService
from token_bowl_chat_server.services.messages import MessageService
from token_bowl_chat_server.services.ports import Publisher, RateLimit
from token_bowl_chat_server.services.read_marks import ReadMarks
from token_bowl_chat_server.services.reads import ReadService
from token_bowl_chat_server.services.resume import ResumeService
from token_bowl_chat_server.services.typing import TypingService
from token_bowl_chat_server.services.webhook_log import DeliveryLog
from token_bowl_chat_server.services.webhook_setup import WebhookSetup
from token_bowl_chat_server.services.webhook_transport import CheckedTransport
from token_bowl_chat_server.services.webhooks import WebhookService
from token_bowl_chat_server.settings import Settings
from token_bowl_chat_server.storage.bots import SqlBotStore
from token_bowl_chat_server.storage.conversations import SqlConversationStore
from token_bowl_chat_server.storage.database import Database
from token_bowl_chat_server.storage.edits import SqlEditStore
from token_bowl_chat_server.storage.messages import SqlMessageStore
from token_bowl_chat_server.storage.read_marks import SqlReadMarkStore
from token_bowl_chat_server.storage.reads import SqlReadStore
from token_bowl_chat_server.storage.user_admin import SqlUserAdminStore
from token_bowl_chat_server.storage.users import SqlUserStore
from token_bowl_chat_server.storage.webhooks import SqlWebhookStore

VERSION = "3.0.0.dev0"

logger = logging.getLogger(__name__)


async def build_services(settings: Settings) -> Services:
    db = Database(settings.database_url)
    await db.migrate()
    hub = Hub(
        caps=ConnectionCaps(
            settings.ws_max_connections_per_user, settings.ws_max_connections_per_address
        )
    )
    user_store = SqlUserStore(db)
    metrics = ServerMetrics()
    message_store = SqlMessageStore(
        db, bot_turn_cap=settings.bot_turn_cap, on_commit=metrics.commit
    )
    node = await build_node(settings, hub, db, message_store) if settings.redis_url else None
    broker: Publisher = node.broker if node else MemoryBroker(hub)
    presence: PresenceStore = node.presence if node else MemoryPresenceStore(hub)
    sessions = NodeSessions(hub, presence, node.broker if node else None)

    def rate_limit(name: str, rate: float, burst: int) -> RateLimit:
        """Buckets every node shares, or this process's own."""
        return node.rate_limit(name, rate, burst) if node else MemoryRateLimit(rate, burst)

    account_cache = AccountCache(settings.account_cache_seconds)
    sessions.account_changed.append(account_cache.forget)
    typing = TypingService(
        user_store, broker, settings.typing_timeout, settings.typing_relay_interval
    )
    if node is not None:
        node.relay_typing_stops(typing)
    if settings.webhook_secret is not None:
        logger.warning(
            "TOKEN_BOWL_WEBHOOK_SECRET is no longer used: each webhook is signed with its "
            "owner's secret (X-Token-Bowl-Signature: v1=...), see docs/protocol-extensions.md"
        )
    webhook_store = SqlWebhookStore(db)
    webhook_directory = CachedWebhookDirectory(user_store, account_cache)
    webhooks = WebhookService(
        webhook_directory,
        user_agent=f"token-bowl-chat-server/{VERSION}",
        endpoints=webhook_store,
        log=DeliveryLog(webhook_store, keep=settings.webhook_log_size),
        transport=CheckedTransport(allow_private=settings.webhook_allow_private),
        attempts=settings.webhook_attempts,
        timeout=settings.webhook_timeout,
        backoff=settings.webhook_backoff,
        queue_size=settings.webhook_queue_size,
        workers=settings.webhook_workers,
        shutdown_grace=settings.webhook_shutdown_grace,
        nobody_has_a_webhook=webhook_directory.nobody_has_a_webhook,
    )
    edit_store = SqlEditStore(db)
    message_service = MessageService(
        user_store,
        message_store,
        broker,
        typing,
        settings.write_batch_max,
        webhooks=webhooks.enqueue,
        limiter=rate_limit("send", settings.send_rate, settings.send_burst),
        bot_limiter=rate_limit("bot_send", settings.bot_send_rate, settings.bot_send_burst),
    )
    message_service.on_queued = metrics.queued
    webhook_setup = WebhookSetup(
        webhook_store, user_store, sessions, allow_private=settings.webhook_allow_private
    )
    accounts = Accounts(
        user_store,
        sessions,
        registrations=rate_limit("register", settings.register_rate, settings.register_burst),
        profile_changed=profile_announcer(broker.publish),
        cache=account_cache,
    )
    services = Services(
        settings=settings,
        db=db,
        hub=hub,
        presence=presence,
        node=node,
        accounts=accounts,
        messages=message_service,
        reads=ReadService(user_store, message_store, SqlReadStore(db), broker),
        typing=typing,
        webhooks=webhooks,
        webhook_setup=webhook_setup,
        resume=ResumeService(message_store, settings.heartbeat_interval, edit_store),
        admin=AdminService(
            user_store,
            SqlUserAdminStore(db),
            sessions,
            hub,
            stale_after=settings.heartbeat_timeout,
            monotonic=hub.clock,
            profile_changed=profile_announcer(broker.publish),
        ),
        read_marks=ReadMarks(SqlReadMarkStore(db)),
        bots=BotService(
            user_store,
            SqlBotStore(db),
            sessions,
            webhook_setup,
            admit_new_account=accounts.admit_new_account,
        ),
        conversations=ConversationService(SqlConversationStore(db)),
        edits=EditService(edit_store, broker, message_service.publish_order),
        metrics=metrics,
        account_cache=account_cache,
    )
    metrics.registry.register(metrics_api.NodeCollector(services))
    return services


async def _bootstrap_admin(services: Services, settings: Settings) -> None:
    username, key = settings.bootstrap_admin_username, settings.bootstrap_admin_key
    if username is None or key is None:
        return
    created = await services.accounts.bootstrap_admin(username, key.get_secret_value())
    if created is not None:
        logger.info("bootstrap admin %s created", created.username)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await build_services(settings)
        app.state.services = services
        await _bootstrap_admin(services, settings)
        services.webhooks.start()
        if services.node is not None:
            await services.node.start()
        background = [
            asyncio.create_task(
                services.hub.run_heartbeat(
                    settings.heartbeat_interval, settings.heartbeat_timeout, time.time
                ),
                name="heartbeat",
            ),
            asyncio.create_task(services.typing.run_expiry(), name="typing-expiry"),
        ]
        services.metrics.gc_pauses.install()
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            services.hub.close_all(CloseCode.SERVICE_RESTART, "server shutting down")
            await services.messages.drain()
            # After the drain, so the last messages' webhooks are queued; before the database
            # closes, because the workers read it.
            await services.webhooks.stop()
            if services.node is not None:
                await services.node.stop()
            await services.db.close()
            services.metrics.gc_pauses.uninstall()

    app = FastAPI(title="Token Bowl Chat", version=VERSION, lifespan=lifespan)
    app.add_middleware(CORS)  # any origin, method and header (api/cors.py)
    errors.install(app)
    for router in (
        accounts.router,
        bots.router,
        conversations.router,
        # Before messages: GET /messages/{message_id} would take /messages/read-marks.
        read_marks.router,
        messages.router,
        message_edits.router,
        users.router,
        admin_users.router,
        webhook_router,
        health.router,
        metrics_api.router,
        endpoint.router,
        web.router,
    ):
        app.include_router(router)
    return app
