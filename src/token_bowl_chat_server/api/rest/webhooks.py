"""The caller's webhook: set or clear it, rotate its secret, read its recent deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from token_bowl_chat.protocol.models import (
    UpdateWebhookRequest,
    WebhookDelivery,
    WebhookDeliveryOutcome,
    WebhookSecretResponse,
    WebhookUpdateResponse,
)
from token_bowl_chat_server.api.deps import CurrentUser, ProfileEditor, ServicesDep
from token_bowl_chat_server.api.rest.responses import errors
from token_bowl_chat_server.domain.entities import iso
from token_bowl_chat_server.domain.webhook_policy import DeliveryRecord

router = APIRouter(tags=["users"], responses=errors(401, 422))


# The secret key is left out when the webhook is cleared, so that answer is upstream's.
@router.patch("/users/me/webhook", responses=errors(403), response_model_exclude_none=True)
async def update_webhook(
    body: UpdateWebhookRequest, user: ProfileEditor, services: ServicesDep
) -> WebhookUpdateResponse:
    result = await services.webhook_setup.set_webhook(user.id, body.webhook_url)
    return WebhookUpdateResponse(
        message="Webhook URL updated successfully",
        webhook_url=result.user.webhook_url or "",
        webhook_secret=result.secret,
    )


@router.post("/users/me/webhook/secret", responses=errors(400, 403))
async def rotate_webhook_secret(
    user: ProfileEditor, services: ServicesDep
) -> WebhookSecretResponse:
    secret = await services.webhook_setup.rotate_secret(user.id)
    return WebhookSecretResponse(
        message="Webhook secret regenerated successfully", webhook_secret=secret
    )


@router.get("/users/me/webhook/deliveries")
async def webhook_deliveries(
    user: CurrentUser,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[WebhookDelivery]:
    """The caller's newest webhook deliveries, newest first (the server keeps a bounded
    number per user, ``TOKEN_BOWL_WEBHOOK_LOG_SIZE``). A delivery is listed once it has
    finished: delivered, failed after every attempt, or refused for its address."""
    return [_delivery(r) for r in await services.webhook_setup.deliveries(user.id, limit)]


def _delivery(record: DeliveryRecord) -> WebhookDelivery:
    return WebhookDelivery(
        id=record.id,
        message_id=record.message_id,
        url=record.url,
        outcome=WebhookDeliveryOutcome(record.outcome.value),
        attempts=record.attempts,
        status_code=record.status_code,
        error=record.error,
        created_at=iso(record.created_at),
        finished_at=iso(record.finished_at),
    )
