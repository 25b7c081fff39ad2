"""``/admin/*`` for accounts and live connections (PROTOCOL.md 4.8).

The admin gate is a dependency, so a non-admin gets 403 before the body is validated, as
upstream answers. The role endpoint is gated by ``users:assign_roles`` (the permission-style
403), every other route by ``admin:access`` ("Admin privileges required").
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.models import (
    AdminUpdateUserRequest,
    AssignRoleRequest,
    AssignRoleResponse,
    InviteUserRequest,
    UserProfileResponse,
    WebSocketConnectionInfo,
    WebSocketConnectionsResponse,
)
from token_bowl_chat_server import render
from token_bowl_chat_server.api.deps import CurrentUser, ServicesDep
from token_bowl_chat_server.api.rest.responses import errors
from token_bowl_chat_server.domain.entities import User
from token_bowl_chat_server.domain.permissions import Action, require, require_admin

router = APIRouter(tags=["admin"], responses=errors(401, 403, 422))


async def _admin(user: CurrentUser) -> User:
    require_admin(user)
    return user


async def _role_assigner(user: CurrentUser) -> User:
    require(user, Action.ASSIGN_ROLES)
    return user


Admin = Annotated[User, Depends(_admin)]
RoleAssigner = Annotated[User, Depends(_role_assigner)]


@router.get("/admin/users")
async def list_users(admin: Admin, services: ServicesDep) -> list[UserProfileResponse]:
    """Every account, viewers included, oldest first. Keys are masked, as on /users/me."""
    return [render.private_profile(u) for u in await services.admin.list_users(admin)]


@router.get("/admin/websocket/connections")
async def websocket_connections(
    admin: Admin, services: ServicesDep
) -> WebSocketConnectionsResponse:
    stats = services.admin.connection_stats(admin)
    return WebSocketConnectionsResponse(
        total_users=len({s.user_id for s in stats}),
        total_connections=len(stats),
        connections=[
            WebSocketConnectionInfo(
                username=s.username,
                connection_id=s.connection_id,
                last_activity=s.last_activity,
                last_pong=s.last_pong,
                seconds_since_activity=s.seconds_since_activity,
                seconds_since_pong=s.seconds_since_pong,
                is_healthy=s.is_healthy,
            )
            for s in stats
        ],
    )


@router.post("/admin/invite", status_code=503, responses=errors(503))
async def invite(body: InviteUserRequest, admin: Admin) -> JSONResponse:
    """Email invitations need an identity provider, and none is configured: nothing is
    sent and no role is promised (upstream accepted a role it never stored)."""
    return JSONResponse(
        {
            "detail": "Email invitations are not available. Stytch is not configured.",
            "code": ErrorCode.NOT_CONFIGURED.value,
        },
        status_code=503,
    )


@router.get("/admin/users/{user_id}", responses=errors(400, 404))
async def get_user(user_id: str, admin: Admin, services: ServicesDep) -> UserProfileResponse:
    return render.private_profile(await services.admin.get_user(admin, user_id))


@router.patch("/admin/users/{user_id}", responses=errors(400, 404, 409))
async def update_user(
    user_id: str, body: AdminUpdateUserRequest, admin: Admin, services: ServicesDep
) -> UserProfileResponse:
    given = body.model_dump(include=body.model_fields_set)
    return render.private_profile(await services.admin.update_user(admin, user_id, given))


@router.delete("/admin/users/{user_id}", status_code=204, responses=errors(400, 404, 409))
async def delete_user(user_id: str, admin: Admin, services: ServicesDep) -> Response:
    await services.admin.delete_user(admin, user_id)
    return Response(status_code=204)


@router.patch("/admin/users/{user_id}/role", responses=errors(400, 404, 409))
async def assign_role(
    user_id: str, body: AssignRoleRequest, admin: RoleAssigner, services: ServicesDep
) -> AssignRoleResponse:
    user = await services.admin.assign_role(admin, user_id, body.role)
    return AssignRoleResponse(
        username=user.username,
        role=user.role,
        message=f"Successfully assigned role '{user.role.value}' to user {user.username}",
    )
