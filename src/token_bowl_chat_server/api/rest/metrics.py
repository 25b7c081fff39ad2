"""``GET /metrics``: Prometheus text exposition of this node's counters and gauges."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from token_bowl_chat_server.api.deps import Services, ServicesDep

router = APIRouter(tags=["health"])


def _samples(services: Services) -> list[tuple[str, str, str, float]]:
    """(name, type, help, value) for every metric."""
    hub, webhooks = services.hub, services.webhooks.stats
    return [
        ("tbc_connections", "gauge", "Open WebSocket connections", len(hub.all_connections())),
        ("tbc_online_users", "gauge", "Users with an open connection", len(hub.online_user_ids())),
        ("tbc_messages_stored_total", "counter", "Messages stored", services.messages.stored),
        (
            "tbc_message_commits_total",
            "counter",
            "Transactions storing them",
            services.messages.commits,
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
    ]


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(services: ServicesDep) -> str:
    lines = []
    for name, kind, text, value in _samples(services):
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value:g}"]
    return "\n".join(lines) + "\n"
