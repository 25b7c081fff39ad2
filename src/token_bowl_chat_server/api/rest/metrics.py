"""``GET /metrics``: Prometheus text exposition of this node's counters and gauges.

Off unless ``TOKEN_BOWL_METRICS_TOKEN`` is set (404 ``not_configured``); then a scrape must
carry ``Authorization: Bearer <token>`` (Prometheus' ``authorization`` setting), else 401. The
numbers describe the whole node, not one user, so a user's API key does not open them.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat_server.api.deps import Services, ServicesDep

router = APIRouter(tags=["health"])

_PROC_SELF = "/proc/self"


def _rss_bytes() -> int | None:
    """Resident set size now (not the peak), from ``/proc``; ``None`` where there is none."""
    try:
        with open(f"{_PROC_SELF}/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def _open_fds() -> int | None:
    try:
        return len(os.listdir(f"{_PROC_SELF}/fd"))
    except OSError:
        return None


def _process_samples() -> list[tuple[str, str, str, float]]:
    """What a soak run watches for leaks: memory, descriptors and tasks must level off."""
    samples = [
        ("tbc_asyncio_tasks", "gauge", "asyncio tasks alive", float(len(asyncio.all_tasks())))
    ]
    rss = _rss_bytes()
    if rss is not None:
        samples.append(("tbc_process_rss_bytes", "gauge", "Resident memory", float(rss)))
    fds = _open_fds()
    if fds is not None:
        samples.append(("tbc_process_open_fds", "gauge", "Open file descriptors", float(fds)))
    return samples


def _samples(services: Services) -> list[tuple[str, str, str, float]]:
    """(name, type, help, value) for every metric."""
    hub, webhooks = services.hub, services.webhooks.stats
    depths = [conn.queued for conn in hub.all_connections()]
    return [
        ("tbc_connections", "gauge", "Open WebSocket connections", len(hub.all_connections())),
        ("tbc_online_users", "gauge", "Users with an open connection", len(hub.online_user_ids())),
        ("tbc_outbox_frames", "gauge", "Frames queued on all connections", sum(depths)),
        (
            "tbc_outbox_frames_max",
            "gauge",
            "Most frames queued on one connection",
            max(depths, default=0),
        ),
        ("tbc_messages_stored_total", "counter", "Messages stored", services.messages.stored),
        (
            "tbc_message_commits_total",
            "counter",
            "Transactions storing them",
            services.messages.commits,
        ),
        (
            "tbc_message_commit_splits_total",
            "counter",
            "Failed group commits retried in halves to isolate a failing message",
            services.messages.commit_splits,
        ),
        (
            "tbc_frames_delivered_total",
            "counter",
            "Frames queued to connections",
            hub.frames_delivered,
        ),
        (
            "tbc_slow_consumer_closes_total",
            "counter",
            "Connections closed 4001",
            hub.slow_consumer_closes,
        ),
        ("tbc_resumes_total", "counter", "Connections that resumed", services.resume.resumes),
        ("tbc_replayed_messages_total", "counter", "Messages replayed", services.resume.replayed),
        ("tbc_resume_gaps_total", "counter", "Unknown resume points", services.resume.gaps),
        (
            "tbc_webhooks_enqueued_total",
            "counter",
            "Messages queued for webhooks",
            webhooks.enqueued,
        ),
        (
            "tbc_webhooks_dropped_total",
            "counter",
            "Messages refused by a full queue",
            webhooks.dropped,
        ),
        (
            "tbc_webhooks_delivered_total",
            "counter",
            "Webhook deliveries answered 2xx",
            webhooks.delivered,
        ),
        ("tbc_webhooks_failed_total", "counter", "Webhook deliveries that failed", webhooks.failed),
        (
            "tbc_webhooks_refused_total",
            "counter",
            "Webhook deliveries not sent: the host resolved to a refused address",
            webhooks.refused,
        ),
        *_process_samples(),
    ]


def _refusal(status: int, code: ErrorCode, detail: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": detail, "code": code.value}, status, headers=headers)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        401: {"description": "Missing or wrong metrics token (authentication_required)"},
        404: {"description": "Metrics are off: no metrics token set (not_configured)"},
    },
)
async def metrics(
    services: ServicesDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    token = services.settings.metrics_token
    if token is None or not token.get_secret_value():
        return _refusal(
            404,
            ErrorCode.NOT_CONFIGURED,
            "Metrics are off: set TOKEN_BOWL_METRICS_TOKEN to serve them",
        )
    expected = f"Bearer {token.get_secret_value()}".encode()
    # Starlette decodes header values as latin-1, so this always encodes.
    given = (authorization or "").encode("latin-1")
    if not hmac.compare_digest(given, expected):
        return _refusal(
            401,
            ErrorCode.AUTHENTICATION_REQUIRED,
            "Metrics need the header Authorization: Bearer <TOKEN_BOWL_METRICS_TOKEN>",
        )
    lines = []
    for name, kind, text, value in _samples(services):
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value:g}"]
    return PlainTextResponse("\n".join(lines) + "\n")
