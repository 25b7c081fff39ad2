"""``GET /metrics``: this node's counters, gauges and histograms in the Prometheus text format,
written by prometheus-client from the app's own registry (docs/metrics.md lists them).

Off unless ``TOKEN_BOWL_METRICS_TOKEN`` is set (404 ``not_configured``); then a scrape must
carry ``Authorization: Bearer <token>`` (Prometheus' ``authorization`` setting), else 401. The
numbers describe the whole node, not one user, so a user's API key does not open them.
"""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from token_bowl_chat.protocol.errors import ErrorCode
from token_bowl_chat_server.api.deps import Services, ServicesDep

router = APIRouter(tags=["health"])

_PROC_SELF = "/proc/self"

# The text format generate_latest writes (newer prometheus-client versions call a later one
# "latest", which older Prometheus servers do not know).
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"

# Upper bounds of the outbox depth buckets, in frames (the outbox holds TOKEN_BOWL_OUTBOX_SIZE).
OUTBOX_DEPTH_BUCKETS = (0, 1, 4, 16, 64, 256, 1024, 4096)


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


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


def _counter(name: str, text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, text, value=value)


def _outbox_depths(depths: list[int]) -> GaugeHistogramMetricFamily:
    """How many connections hold how many queued frames, now: a gauge histogram, read at
    the scrape so that no frame pays for it."""
    buckets = [
        (str(bound), float(sum(1 for depth in depths if depth <= bound)))
        for bound in OUTBOX_DEPTH_BUCKETS
    ]
    buckets.append(("+Inf", float(len(depths))))
    return GaugeHistogramMetricFamily(
        "tbc_outbox_depth",
        "Open connections by frames queued on their outbox, at the scrape",
        buckets=buckets,
        gsum_value=float(sum(depths)),
    )


class NodeCollector(Collector):
    """Reads the services' own counters and the process's gauges at every scrape."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        yield from self._realtime()
        yield from self._node()
        yield from self._messages()
        yield from self._webhooks()
        yield from self._scaleout()
        yield from self._process()

    def _realtime(self) -> Iterator[Metric]:
        hub = self.services.hub
        connections = hub.all_connections()
        depths = [conn.queued for conn in connections]
        yield _gauge("tbc_connections", "Open WebSocket connections", len(connections))
        yield _gauge(
            "tbc_online_users", "Users with an open connection", len(hub.online_user_ids())
        )
        yield _gauge("tbc_outbox_frames", "Frames queued on all connections", sum(depths))
        yield _gauge(
            "tbc_outbox_frames_max", "Most frames queued on one connection", max(depths, default=0)
        )
        yield _outbox_depths(depths)
        yield _counter(
            "tbc_frames_delivered_total", "Frames queued to connections", hub.frames_delivered
        )
        yield _counter(
            "tbc_slow_consumer_closes_total", "Connections closed 4001", hub.slow_consumer_closes
        )
        resume = self.services.resume
        yield _counter("tbc_resumes_total", "Connections that resumed", resume.resumes)
        yield _counter("tbc_replayed_messages_total", "Messages replayed", resume.replayed)
        yield _counter("tbc_resume_gaps_total", "Unknown resume points", resume.gaps)

    def _node(self) -> Iterator[Metric]:
        """With REDIS_URL: this node's link to the others (``scaleout.Node.stats``)."""
        if self.services.node is None:
            return
        for name, kind, text, value in self.services.node.stats():
            yield (_gauge if kind == "gauge" else _counter)(name, text, float(value))

    def _messages(self) -> Iterator[Metric]:
        messages = self.services.messages
        yield _counter("tbc_messages_stored_total", "Messages stored", messages.stored)
        yield _counter("tbc_message_commits_total", "Transactions storing them", messages.commits)
        yield _counter(
            "tbc_message_commit_splits_total",
            "Failed group commits retried in halves to isolate a failing message",
            messages.commit_splits,
        )
        cache = self.services.account_cache
        yield _counter(
            "tbc_account_cache_hits_total",
            "Requests authenticated from the in-process account cache",
            cache.hits,
        )
        yield _counter(
            "tbc_account_cache_misses_total",
            "Requests whose key was looked up in the database",
            cache.misses,
        )

    def _webhooks(self) -> Iterator[Metric]:
        stats = self.services.webhooks.stats
        yield _counter(
            "tbc_webhooks_enqueued_total", "Messages queued for webhooks", stats.enqueued
        )
        yield _counter(
            "tbc_webhooks_dropped_total", "Messages refused by a full queue", stats.dropped
        )
        yield _counter(
            "tbc_webhooks_delivered_total", "Webhook deliveries answered 2xx", stats.delivered
        )
        yield _counter("tbc_webhooks_failed_total", "Webhook deliveries that failed", stats.failed)
        yield _counter(
            "tbc_webhooks_refused_total",
            "Webhook deliveries not sent: the host resolved to a refused address",
            stats.refused,
        )

    def _scaleout(self) -> Iterator[Metric]:
        """With REDIS_URL: this node's link to the others (scaleout.py)."""
        node = self.services.node
        if node is None:
            return
        for name, kind, text, value in node.stats():
            yield _counter(name, text, value) if kind == "counter" else _gauge(name, text, value)

    @staticmethod
    def _process() -> Iterator[Metric]:
        """What a soak run watches for leaks: memory, descriptors and tasks must level off."""
        yield _gauge("tbc_asyncio_tasks", "asyncio tasks alive", len(asyncio.all_tasks()))
        rss = _rss_bytes()
        if rss is not None:
            yield _gauge("tbc_process_rss_bytes", "Resident memory", rss)
        fds = _open_fds()
        if fds is not None:
            yield _gauge("tbc_process_open_fds", "Open file descriptors", fds)


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
    return Response(generate_latest(services.metrics.registry), media_type=TEXT_FORMAT)
