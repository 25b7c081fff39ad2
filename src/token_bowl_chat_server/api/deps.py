"""Request dependencies: the services from app state, and the authenticated user."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.permissions import check_can_update_own_profile
from token_bowl_chat_server.observability import ServerMetrics
from token_bowl_chat_server.realtime.hub import Hub
from token_bowl_chat_server.realtime.presence_store import PresenceStore
from token_bowl_chat_server.scaleout import Node
from token_bowl_chat_server.services.account_cache import AccountCache
from token_bowl_chat_server.services.accounts import Accounts
from token_bowl_chat_server.services.admin import AdminService
from token_bowl_chat_server.services.bots import BotService
from token_bowl_chat_server.services.conversations import ConversationService
from token_bowl_chat_server.services.edits import EditService
from token_bowl_chat_server.services.messages import MessageService
from token_bowl_chat_server.services.read_marks import ReadMarks
from token_bowl_chat_server.services.reads import ReadService
from token_bowl_chat_server.services.resume import ResumeService
from token_bowl_chat_server.services.typing import TypingService
from token_bowl_chat_server.services.webhook_setup import WebhookSetup
from token_bowl_chat_server.services.webhooks import WebhookService
from token_bowl_chat_server.settings import Settings
from token_bowl_chat_server.storage.database import Database


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    hub: Hub
    presence: PresenceStore  # who is online on every node; the endpoint reports this node's
    node: Node | None  # with REDIS_URL: this process as one node of many
    accounts: Accounts
    messages: MessageService
    reads: ReadService
    typing: TypingService
    webhooks: WebhookService
    webhook_setup: WebhookSetup  # set_webhook(user_id, url): the one way to set a webhook URL
    resume: ResumeService
    admin: AdminService
    read_marks: ReadMarks
    bots: BotService
    conversations: ConversationService
    edits: EditService
    metrics: ServerMetrics  # the histograms the hot paths feed; GET /metrics reads them
    # Accounts by key and webhook users; forget(user_id) / forget_all() on outside changes.
    account_cache: AccountCache


async def get_services(request: Request) -> Services:
    """Async, though it awaits nothing: FastAPI runs a plain ``def`` dependency on a worker
    thread, which cost every request a thread round trip."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def current_user(
    services: ServicesDep,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key")] = None,
) -> User:
    """REST credentials: the ``X-API-Key`` header only (never a query parameter)."""
    return await services.accounts.authenticate(x_api_key)


CurrentUser = Annotated[User, Depends(current_user)]


async def profile_editor(user: CurrentUser) -> User:
    """The caller, if their role may change their own profile.

    A dependency, so the permission is checked before the body is validated: a viewer gets
    403 even for an invalid body, as upstream answers.
    """
    check_can_update_own_profile(user)
    return user


ProfileEditor = Annotated[User, Depends(profile_editor)]
