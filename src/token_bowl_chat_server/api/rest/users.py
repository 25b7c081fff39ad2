"""Users, presence, logos and the caller's own profile."""

from __future__ import annotations

from fastapi import APIRouter

from token_bowl_chat.protocol.models import (
    LOGOS,
    ApiKeyResponse,
    LogoUpdateResponse,
    PublicUserProfile,
    UpdateLogoRequest,
    UpdateUsernameRequest,
    UserProfileResponse,
)
from token_bowl_chat_server import render
from token_bowl_chat_server.api.deps import CurrentUser, ProfileEditor, ServicesDep
from token_bowl_chat_server.api.rest.responses import errors

# 401 on every route but /logos, which needs no key.
router = APIRouter(tags=["users"], responses=errors(401, 422))


@router.get("/users")
async def list_users(user: CurrentUser, services: ServicesDep) -> list[PublicUserProfile]:
    return [render.public_profile(u) for u in await services.accounts.chat_users()]


@router.get("/users/online")
async def online_users(user: CurrentUser, services: ServicesDep) -> list[PublicUserProfile]:
    return [render.public_profile(u) for u in await services.accounts.online_users()]


@router.get("/logos")
async def logos() -> list[str]:
    return list(LOGOS)


@router.get("/users/me")
async def my_profile(user: CurrentUser) -> UserProfileResponse:
    return render.private_profile(user)


@router.patch("/users/me/logo", responses=errors(403))
async def update_logo(
    body: UpdateLogoRequest, user: ProfileEditor, services: ServicesDep
) -> LogoUpdateResponse:
    updated = await services.accounts.set_logo(user, body.logo)
    return LogoUpdateResponse(message="Logo updated successfully", logo=updated.logo or "")


# PATCH /users/me/webhook lives in webhooks.py, with the webhook's secret and deliveries.


@router.patch("/users/me/username", responses=errors(403, 409))
async def update_username(
    body: UpdateUsernameRequest, user: ProfileEditor, services: ServicesDep
) -> UserProfileResponse:
    return render.private_profile(await services.accounts.rename(user, body.username))


@router.post("/users/me/regenerate-api-key")
async def regenerate_api_key(user: CurrentUser, services: ServicesDep) -> ApiKeyResponse:
    key = await services.accounts.rotate_key(user)
    return ApiKeyResponse(message="API key regenerated successfully", api_key=key)


@router.get("/users/{user_id}", responses=errors(400, 404))
async def user_profile(user_id: str, user: CurrentUser, services: ServicesDep) -> PublicUserProfile:
    return render.public_profile(await services.accounts.by_id(user_id))
