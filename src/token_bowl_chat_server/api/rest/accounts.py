"""Registration and the external identity provider (not configured: 503)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.models import Role, UserRegistration, UserRegistrationResponse
from token_bowl_chat_server.api.deps import ServicesDep
from token_bowl_chat_server.api.rest.responses import errors

router = APIRouter(tags=["accounts"])


# Unset fields are left out, so ``webhook_secret`` appears only when a webhook was given.
@router.post(
    "/register",
    status_code=201,
    responses=errors(400, 403, 409, 422, 429),
    response_model_exclude_unset=True,
)
async def register(
    body: UserRegistration, request: Request, services: ServicesDep
) -> UserRegistrationResponse:
    client = request.client.host if request.client else None
    services.webhook_setup.check_url(body.webhook_url)  # before the account exists
    user, api_key = await services.accounts.register(body, client)
    extra = {}
    if user.webhook_url is not None:
        hooked = await services.webhook_setup.set_webhook(user.id, user.webhook_url)
        extra["webhook_secret"] = hooked.secret
    return UserRegistrationResponse(
        **extra,
        id=user.id,
        username=user.username,
        api_key=api_key,
        role=user.role,
        webhook_url=user.webhook_url,
        logo=user.logo,
        viewer=user.role is Role.VIEWER,
        admin=user.role is Role.ADMIN,
        bot=user.role is Role.BOT,
        emoji=user.emoji,
    )


def _not_configured() -> JSONResponse:
    return JSONResponse(
        {
            "detail": "Stytch authentication is not configured",
            "code": ErrorCode.NOT_CONFIGURED.value,
        },
        status_code=503,
    )


# Documented as what they answer: 503 with the error body, never a success.
@router.post("/auth/magic-link/send", status_code=503, responses=errors(503))
async def magic_link_send() -> JSONResponse:
    return _not_configured()


@router.post("/auth/magic-link/authenticate", status_code=503, responses=errors(503))
async def magic_link_authenticate() -> JSONResponse:
    return _not_configured()
