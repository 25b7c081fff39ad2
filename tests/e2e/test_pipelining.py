"""Pipelined sends over one WebSocket, or over one keep-alive HTTP connection: a client that
writes many frames (requests) without waiting gets its replies in order, its messages stored
in that order and in fewer commits than messages, and loses no acknowledged message to a
SIGKILL or to its own disconnect."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import Account, LiveServer, NewServer, stop_server
from tests.waiting import eventually
from tests.wsclient import Frame, WsClient

TOKEN = "pipelining-metrics"
BOT_TURN_CAP = 3
MAX_CONTENT_LENGTH = 10_000
_SAMPLE = re.compile(r"^(\w+)(?:\{[^}]*\})? (\S+)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, new_server: NewServer) -> Iterator[LiveServer]:
    """A server of this module's own, one process even with two nodes: the commit counters
    and the connection and task gauges must see only this module's connections."""
    proc = new_server(
        tmp_path_factory.mktemp("pipelining"),
        env={"TOKEN_BOWL_METRICS_TOKEN": TOKEN, "TOKEN_BOWL_BOT_TURN_CAP": str(BOT_TURN_CAP)},
        single_node=True,
    )
    try:
        proc.start()
        yield LiveServer(proc)
    finally:
        stop_server(proc)


def metrics(server: LiveServer) -> dict[str, float]:
    resp = httpx.get(f"{server.http_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status_code == 200, resp.text
    values: dict[str, float] = {}
    for line in resp.text.splitlines():
        found = _SAMPLE.match(line)
        if found:
            values[found[1]] = values.get(found[1], 0.0) + float(found[2])
    return values


def history(server: LiveServer, account: Account, path: str = "/messages") -> list[Frame]:
    """Every message at ``path`` the account may read, oldest first."""
    found: list[Frame] = []
    with httpx.Client(base_url=server.http_url, headers={"X-API-Key": account.api_key}) as http:
        while True:
            page = http.get(path, params={"limit": 1000, "offset": len(found)}).json()
            found += page["messages"]
            if not page["pagination"]["has_more"]:
                return sorted(found, key=lambda m: m["seq"])


async def write_all(client: WsClient, frames: list[Frame]) -> None:
    """Every frame written before any reply is read."""
    for frame in frames:
        await client.conn.send(json.dumps(frame))


async def replies_to(client: WsClient, request_ids: list[str], timeout: float = 30) -> list[Frame]:
    """The frames echoing ``request_ids``, in the order they arrived (others skipped)."""
    wanted = set(request_ids)
    got: list[Frame] = []
    async with asyncio.timeout(timeout):
        while len(got) < len(request_ids):
            frame = await client.recv(timeout)
            if frame.get("request_id") in wanted:
                got.append(frame)
    return got


def burst(tag: str, count: int) -> list[Frame]:
    return [
        {"type": "message", "content": f"{tag} {i}", "request_id": f"{tag}-{i}"}
        for i in range(count)
    ]


async def test_a_burst_is_answered_in_frame_order_and_stored_in_that_order(
    server: LiveServer,
) -> None:
    alice, bob = server.register(), server.register()
    frames: list[dict[str, Any]] = burst("order", 60)
    frames[20] = {**frames[20], "to_username": bob.username}
    frames[30] = {**frames[30], "content": "x" * (MAX_CONTENT_LENGTH + 1)}
    frames[40] = {"type": "no_such_command", "request_id": "order-40"}
    frames[45] = {"type": "ping", "request_id": "order-45"}  # not a send: waits for those before
    frames[50] = {"type": "message", "request_id": "order-50"}  # no content
    refused = {30: "content_too_long", 40: None, 50: "missing_field"}
    client = await WsClient.connect(server.ws_url, alice.api_key)
    try:
        await write_all(client, frames)
        replies = await replies_to(client, [f["request_id"] for f in frames])
    finally:
        await client.close()

    assert [r["request_id"] for r in replies] == [f["request_id"] for f in frames]
    seqs = []
    for i, reply in enumerate(replies):
        if i in refused:
            assert reply["type"] == "error", reply
            assert refused[i] is None or reply["code"] == refused[i], reply
        elif i == 45:
            assert reply["type"] == "pong", reply
        else:
            assert reply["type"] == "message_sent", reply
            assert reply["message"]["content"] == frames[i]["content"]
            seqs.append(reply["message"]["seq"])
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    assert replies[20]["message"]["to_username"] == bob.username

    mine = [m for m in history(server, alice) if m["from_username"] == alice.username]
    sent = [f["content"] for i, f in enumerate(frames) if i not in refused and i not in (20, 45)]
    assert [m["content"] for m in mine if m["content"].startswith("order ")] == sent
    dms = history(server, bob, "/messages/direct")
    assert [m["content"] for m in dms] == ["order 20"]


async def test_a_burst_over_one_connection_shares_commits(server: LiveServer) -> None:
    alice = server.register()
    frames = burst("shared", 60)
    before = metrics(server)
    client = await WsClient.connect(server.ws_url, alice.api_key)
    try:
        await write_all(client, frames)
        replies = await replies_to(client, [f["request_id"] for f in frames])
    finally:
        await client.close()
    assert all(r["type"] == "message_sent" for r in replies)
    after = metrics(server)
    stored = after["tbc_messages_stored_total"] - before["tbc_messages_stored_total"]
    commits = after["tbc_message_commits_total"] - before["tbc_message_commits_total"]
    assert stored == 60
    # One connection's sends no longer wait for each other's commits: they join them.
    assert commits < stored, f"{commits} commits for {stored} messages"


async def test_a_send_refused_inside_a_shared_commit_fails_alone_in_its_place(
    server: LiveServer,
) -> None:
    owner = server.register()
    resp = httpx.post(
        f"{server.http_url}/bots",
        json={"username": server.unique("bot")},
        headers={"X-API-Key": owner.api_key},
    )
    assert resp.status_code == 201, resp.text
    bot = Account(**{k: resp.json()[k] for k in ("id", "username", "api_key")})
    said = httpx.post(
        f"{server.http_url}/messages",
        json={"content": "a human speaks first"},
        headers={"X-API-Key": owner.api_key},
    )
    assert said.status_code == 201, said.text  # the room's bot count starts at zero
    frames = burst("capped", BOT_TURN_CAP + 2)
    frames.append({"type": "ping", "request_id": "capped-ping"})
    client = await WsClient.connect(server.ws_url, bot.api_key)
    try:
        await write_all(client, frames)
        replies = await replies_to(client, [f["request_id"] for f in frames])
    finally:
        await client.close()
    # The cap is judged inside the transaction, which pipelined sends share: the refused
    # ones fail alone, answered in their own places, and the stored ones keep their order.
    assert [r["request_id"] for r in replies] == [f["request_id"] for f in frames]
    assert [r["type"] for r in replies[:BOT_TURN_CAP]] == ["message_sent"] * BOT_TURN_CAP
    assert [r.get("code") for r in replies[BOT_TURN_CAP:-1]] == ["bot_turn_limit"] * 2
    assert replies[-1]["type"] == "pong"
    stored = [m["content"] for m in history(server, owner) if m["from_username"] == bot.username]
    assert stored == [f"capped {i}" for i in range(BOT_TURN_CAP)]


async def test_a_connection_dropped_with_sends_in_flight_frees_everything(
    server: LiveServer,
) -> None:
    alice = server.register()
    tasks_before = metrics(server)["tbc_asyncio_tasks"]
    client = await WsClient.connect(server.ws_url, alice.api_key)
    frames = burst("dropped", 200)
    await write_all(client, frames)
    await client.recv_until(lambda f: f.get("type") == "message_sent", 10)
    client.conn.transport.abort()  # gone without a close handshake, sends still in flight

    await eventually(lambda: metrics(server)["tbc_connections"] == 0, 20, "connection kept")
    # Queued after everything the dropped connection had queued: once it is answered, the
    # batcher has flushed all of those.
    other = await WsClient.connect(server.ws_url, alice.api_key)
    try:
        marker = await other.request({"type": "message", "content": "dropped marker"})
        assert marker["type"] == "message_sent", marker
    finally:
        await other.close()
    stored = [
        m["content"]
        for m in history(server, alice)
        if m["from_username"] == alice.username and m["content"].startswith("dropped ")
    ]
    assert stored[-1] == "dropped marker"
    numbers = [int(c.split()[1]) for c in stored[:-1]]
    assert numbers, "not even the acknowledged send was stored"
    assert numbers == list(range(len(numbers))), "stored twice, out of order or with a gap"
    await eventually(
        lambda: (
            metrics(server)["tbc_connections"] == 0
            and metrics(server)["tbc_asyncio_tasks"] <= tasks_before
        ),
        20,
        "tasks of the dropped connection left behind",
    )


async def test_acknowledged_pipelined_sends_survive_sigkill(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server()
    alice = server.register()
    client = await WsClient.connect(server.ws_url, alice.api_key)
    acked: list[str] = []
    frames = burst("killed", 250)  # under the frame budget's burst: none refused

    async def collect() -> None:
        while True:
            frame = await client.recv()
            if frame.get("type") == "message_sent":
                acked.append(frame["message"]["id"])
                if len(acked) == 50:
                    server.proc.kill()  # SIGKILL with the rest of the burst in flight

    collector = asyncio.create_task(collect())
    with pytest.raises((websockets.ConnectionClosed, TimeoutError, OSError)):
        async with asyncio.timeout(30):
            await write_all(client, frames)
            await collector
    collector.cancel()
    assert len(acked) >= 50

    server.proc.start()
    stored = {m["id"] for m in history(server, alice)}
    assert [message_id for message_id in acked if message_id not in stored] == []


# --- POST /messages pipelined over one keep-alive HTTP connection ---------------------------


def rest_request(account: Account, content: str | None = None, get: str | None = None) -> bytes:
    """One HTTP/1.1 request: a send of ``content``, or a GET of ``get``."""
    key = account.api_key.encode()
    if get is not None:
        return b"GET " + get.encode() + b" HTTP/1.1\r\nHost: t\r\nX-API-Key: " + key + b"\r\n\r\n"
    body = json.dumps({"content": content}).encode()
    head = b"POST /messages HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    head += b"X-API-Key: " + key + b"\r\nContent-Length: %d\r\n\r\n" % len(body)
    return head + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, Any]:
    """The next response on the connection: its status and its JSON body."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("the server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, json.loads(await reader.readexactly(length)) if length else None


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close and wait until closed: a transport closed as the test's loop ends is never
    freed, and its socket's ResourceWarning fails a later test."""
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def _http_address(server: LiveServer) -> tuple[str, int]:
    url = httpx.URL(server.http_url)
    assert url.host in ("127.0.0.1", "::1", "localhost"), url
    return url.host, url.port or 80


async def test_pipelined_rest_sends_answer_in_order_share_commits_and_respect_barriers(
    server: LiveServer,
) -> None:
    alice = server.register()
    host, port = _http_address(server)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(rest_request(alice, "warm-up"))  # the key is in the account cache now
        assert (await read_response(reader))[0] == 201
        before = metrics(server)
        contents = [f"rest {i}" for i in range(40)]
        requests = [rest_request(alice, c) for c in contents]
        requests[10] = rest_request(alice, "x" * (MAX_CONTENT_LENGTH + 1))  # refused: 422
        requests[25] = rest_request(alice, get="/messages?limit=100")  # not a send: a barrier
        writer.write(b"".join(requests))  # every request before any response is read
        await writer.drain()
        async with asyncio.timeout(60):
            answers = [await read_response(reader) for _ in requests]
    finally:
        await _close(writer)
    after = metrics(server)

    sends = [i for i in range(40) if i not in (10, 25)]
    assert answers[10][0] == 422 and answers[10][1]["code"] == "validation_error"
    assert answers[25][0] == 200
    assert all(answers[i][0] == 201 for i in sends), [a[0] for a in answers]
    assert [answers[i][1]["content"] for i in sends] == [contents[i] for i in sends]
    seqs = [answers[i][1]["seq"] for i in sends]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    # The barrier saw every send before it stored, and none after it.
    listed = {m["content"] for m in answers[25][1]["messages"]}
    assert {contents[i] for i in sends if i < 25} <= listed
    assert not {contents[i] for i in sends if i > 25} & listed
    mine = [m["content"] for m in history(server, alice) if m["content"].startswith("rest ")]
    assert mine == [contents[i] for i in sends]  # stored in request order
    stored = after["tbc_messages_stored_total"] - before["tbc_messages_stored_total"]
    commits = after["tbc_message_commits_total"] - before["tbc_message_commits_total"]
    assert stored == len(sends)
    # Sends pipelined on one connection no longer wait for each other's commits.
    assert commits < stored, f"{commits} commits for {stored} messages"


async def test_acknowledged_pipelined_rest_sends_survive_sigkill(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server()
    alice = server.register()
    host, port = _http_address(server)
    reader, writer = await asyncio.open_connection(host, port)
    acked: list[str] = []
    requests = [rest_request(alice, f"killed {i}") for i in range(250)]
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError, TimeoutError, OSError)):
        async with asyncio.timeout(30):
            writer.write(b"".join(requests))
            await writer.drain()
            while True:
                status, body = await read_response(reader)
                assert status == 201, body
                acked.append(body["id"])
                if len(acked) == 50:
                    server.proc.kill()  # SIGKILL with the rest of the burst in flight
    await _close(writer)
    assert len(acked) >= 50

    server.proc.start()
    stored = {m["id"] for m in history(server, alice)}
    assert [message_id for message_id in acked if message_id not in stored] == []


async def test_an_http_connection_dropped_with_pipelined_sends_leaves_nothing_behind(
    server: LiveServer,
) -> None:
    alice = server.register()
    host, port = _http_address(server)
    tasks_before = metrics(server)["tbc_asyncio_tasks"]
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"".join(rest_request(alice, f"gone {i}") for i in range(100)))
    await writer.drain()
    async with asyncio.timeout(30):
        assert (await read_response(reader))[0] == 201  # sends are in flight
    writer.transport.abort()  # gone, with responses unread and requests still running
    await _close(writer)

    # A send on another connection, after everything the dropped one had admitted.
    with httpx.Client(base_url=server.http_url, headers={"X-API-Key": alice.api_key}) as http:
        assert http.post("/messages", json={"content": "gone marker"}).status_code == 201
    stored = [m["content"] for m in history(server, alice) if m["content"].startswith("gone ")]
    numbers = [int(c.split()[1]) for c in stored if c != "gone marker"]
    assert numbers, "not even the acknowledged send was stored"
    # Whatever ran was stored once, in request order, with no gap.
    assert numbers == list(range(len(numbers))), "stored twice, out of order or with a gap"
    await eventually(
        lambda: metrics(server)["tbc_asyncio_tasks"] <= tasks_before,
        20,
        "tasks of the dropped connection left behind",
    )
