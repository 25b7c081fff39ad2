"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat.protocol.models import HealthResponse
from token_bowl_chat_server.api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> HealthResponse:
    """200 once the server has started (migrations applied, broker running)."""
    return HealthResponse(status="healthy")


@router.get("/ready", response_model=None)
async def ready(services: ServicesDep) -> JSONResponse | HealthResponse:
    """200 when the database answers, and Redis too when the server runs on it; 503 otherwise.

    A node whose Redis is away still serves its own clients, but a load balancer should
    send new ones to a node that reaches the others."""
    try:
        await services.db.ping()
        if services.node is not None and not await services.node.ready():
            raise ConnectionError("Redis unavailable")
    except Exception:
        return JSONResponse(
            {"status": "unavailable", "code": ErrorCode.NOT_READY.value}, status_code=503
        )
    return HealthResponse(status="ready")
