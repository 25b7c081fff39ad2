"""``/metrics``: off without a token, refused without the right one, and the gauges a soak
run watches (memory, descriptors, tasks, outbox depths) report what the node holds."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import LiveServer
from tests.waiting import eventually
from tests.wsclient import WsClient, ws_url_for

TOKEN = "scrape-me"


def scrape(server: LiveServer, token: str = TOKEN) -> dict[str, float]:
    """Every sample by name (with its labels, ``name{le="1.0"}``), parsed as Prometheus does."""
    resp = httpx.get(f"{server.http_url}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


async def test_metrics_are_off_without_a_token(live_server: LiveServer) -> None:
    someone = live_server.register()
    for headers in ({}, {"X-API-Key": someone.api_key}, {"Authorization": "Bearer x"}):
        resp = httpx.get(f"{live_server.http_url}/metrics", headers=headers)
        assert resp.status_code == 404
        assert resp.json()["code"] == "not_configured"
        assert "tbc_" not in resp.text


async def test_metrics_need_the_token(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(TOKEN_BOWL_METRICS_TOKEN=TOKEN)
    someone = server.register()
    refused = [
        {},
        {"X-API-Key": someone.api_key},  # a user's key is not the metrics token
        {"Authorization": TOKEN},  # no scheme
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer \xe9".encode("latin-1")},  # a non-ASCII byte
    ]
    for headers in refused:
        resp = httpx.get(f"{server.http_url}/metrics", headers=headers)
        assert resp.status_code == 401, headers
        assert resp.json()["code"] == "authentication_required"
        assert "tbc_" not in resp.text
    values = scrape(server)
    assert values["tbc_process_rss_bytes"] > 10_000_000  # a Python server is tens of MB
    assert values["tbc_process_open_fds"] >= 3
    assert values["tbc_asyncio_tasks"] >= 1
    assert values["tbc_outbox_frames"] == values["tbc_outbox_frames_max"] == 0


@pytest.mark.single_node(reason="/metrics counts one process")
async def test_outbox_gauges_see_a_connection_that_stops_reading(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(TOKEN_BOWL_METRICS_TOKEN=TOKEN, TOKEN_BOWL_OUTBOX_SIZE="100000")
    sender_acct, stuck_acct = server.register(), server.register()
    sender = await WsClient.connect(server.ws_url, sender_acct.api_key)
    # A tiny receive buffer and a one-frame library queue: the server's frames back up.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.proc.port))
    sock.setblocking(False)
    stuck = await websockets.connect(
        ws_url_for(server.ws_url, stuck_acct.api_key), sock=sock, max_queue=1
    )
    baseline = scrape(server)
    assert baseline["tbc_connections"] == 2
    content = "y" * 8000
    sent = 0

    def backed_up() -> bool:
        return scrape(server)["tbc_outbox_frames_max"] >= 50

    async def send_until_backed_up() -> None:
        nonlocal sent
        while sent < 2000 and not await asyncio.to_thread(backed_up):
            for _ in range(50):
                await sender.request({"content": f"{sent} {content}"}, timeout=10)
                sent += 1

    await asyncio.wait_for(send_until_backed_up(), 60)
    values = scrape(server)
    assert values["tbc_outbox_frames_max"] >= 50, f"only {values} after {sent} sends"
    # One stuck connection holds everything queued: the sender's own outbox is empty.
    assert values["tbc_outbox_frames"] == values["tbc_outbox_frames_max"]
    stuck.transport.abort()
    await eventually(
        lambda: scrape(server)["tbc_outbox_frames"] == 0, 20, "the stuck outbox was not freed"
    )
    await sender.close()


@pytest.mark.single_node(reason="/metrics counts one process")
async def test_histograms_count_commits_messages_and_queueing(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(TOKEN_BOWL_METRICS_TOKEN=TOKEN)
    listener_acct = server.register()
    senders = [server.register() for _ in range(4)]
    listener = await WsClient.connect(server.ws_url, listener_acct.api_key)
    before = scrape(server)

    async def post(key: str, n: int) -> None:
        async with httpx.AsyncClient(base_url=server.http_url) as client:
            for i in range(n):
                resp = await client.post(
                    "/messages", headers={"X-API-Key": key}, json={"content": f"histogram {i}"}
                )
                assert resp.status_code == 201, resp.text

    # Concurrent senders, so some commits store several messages.
    await asyncio.gather(*(post(s.api_key, 10) for s in senders))
    after = scrape(server)

    stored = after["tbc_messages_stored_total"] - before["tbc_messages_stored_total"]
    commits = after["tbc_message_commits_total"] - before["tbc_message_commits_total"]
    assert stored == 40 and 1 <= commits <= 40
    # One observation per commit; together they hold exactly the stored messages.
    assert after["tbc_commit_seconds_count"] == after["tbc_message_commits_total"]
    assert after["tbc_messages_per_commit_count"] == after["tbc_message_commits_total"]
    assert after["tbc_messages_per_commit_sum"] == after["tbc_messages_stored_total"]
    assert after["tbc_commit_seconds_sum"] > 0
    assert after['tbc_commit_seconds_bucket{le="+Inf"}'] == after["tbc_commit_seconds_count"]
    # One send-to-queue observation per stored message.
    assert after["tbc_send_to_queue_seconds_count"] == after["tbc_messages_stored_total"]
    # The outbox depths: one bucket count per open connection (the listener).
    assert after['tbc_outbox_depth_bucket{le="+Inf"}'] == after["tbc_connections"] == 1
    assert after["tbc_outbox_depth_gcount"] == 1
    # Every REST call above authenticated; after each sender's first, from the cache.
    assert after["tbc_account_cache_hits_total"] >= 36
    # The collector's pauses, one histogram per generation. The young generation has been
    # collected by now (the first requests of each kind fill the framework's caches, a net
    # growth of well over its 2,000 objects); the older ones may not have been.
    assert after['tbc_gc_pause_seconds_count{generation="0"}'] >= 1
    for generation in ("0", "1", "2"):
        label = f'generation="{generation}"'
        count = after[f"tbc_gc_pause_seconds_count{{{label}}}"]
        assert after[f'tbc_gc_pause_seconds_bucket{{{label},le="+Inf"}}'] == count
        assert count >= before[f"tbc_gc_pause_seconds_count{{{label}}}"]
        assert (after[f"tbc_gc_pause_seconds_sum{{{label}}}"] > 0) == (count > 0)
    await listener.close()
