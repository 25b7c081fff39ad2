"""Two server processes on one PostgreSQL database and one Redis: whatever one node does
reaches the users connected to the other, as it reaches the users of the same node.

Every test starts on node 0 and looks at node 1 (and the other way where it matters).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import httpx
import websockets

from tests.conftest import Account
from tests.scaleout.conftest import Deployment
from tests.waiting import eventually
from tests.wsclient import Frame, WsClient, is_delivery

_texts = itertools.count(1)


def text(tag: str) -> str:
    """Content no other test on the deployment sends."""
    return f"{tag} #{next(_texts)}"


async def connect(
    deployment: Deployment, node: int, account: Account, query: str = "", **options: Any
) -> WsClient:
    """An extended connection on ``node``, past its ``hello`` (registered for delivery);
    ``options`` go to ``websockets.connect``."""
    client = await WsClient.connect(
        deployment.node[node].ws_url, account.api_key, query=query, **options
    )
    await client.recv_until(lambda f: f.get("type") == "hello", timeout=10)
    return client


def delivery_of(content: str) -> Callable[[Frame], bool]:
    return lambda f: is_delivery(f) and f["content"] == content


async def close_code(client: WsClient, timeout: float = 10.0) -> int | None:
    """Read until the server closes the connection; its close code."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await client.recv(timeout)
    except websockets.ConnectionClosed:
        return client.conn.close_code


def auth(account: Account) -> dict[str, str]:
    return {"X-API-Key": account.api_key}


async def test_room_messages_and_dms_reach_users_on_the_other_node(deployment: Deployment) -> None:
    alice, bob, carol = (deployment.register() for _ in range(3))
    a = await connect(deployment, 0, alice)
    b = await connect(deployment, 1, bob)
    c = await connect(deployment, 1, carol)

    room = text("room over ws")
    sent = await a.request({"content": room})
    assert sent["type"] == "message_sent", sent
    for other in (b, c):
        frame = await other.recv_until(delivery_of(room), timeout=10)
        assert frame["seq"] == sent["message"]["seq"]

    over_rest = text("room over rest")
    resp = httpx.post(
        f"{deployment.node[0].http_url}/messages", json={"content": over_rest}, headers=auth(alice)
    )
    assert resp.status_code == 201, resp.text
    for other in (b, c):
        await other.recv_until(delivery_of(over_rest), timeout=10)

    # A DM reaches its recipient on the other node and nobody else there: Carol gets the
    # room message sent after it, and from one sender everything arrives in order.
    dm = text("dm")
    await a.request({"content": dm, "to_username": bob.username})
    frame = await b.recv_until(delivery_of(dm), timeout=10)
    assert frame["to_username"] == bob.username
    after = text("after the dm")
    await a.request({"content": after})
    await c.recv_until(delivery_of(after), timeout=10)
    assert not any(is_delivery(f) and f["content"] == dm for f in c.seen)
    for client in (a, b, c):
        await client.close()


async def test_edits_and_deletes_reach_users_on_the_other_node(deployment: Deployment) -> None:
    alice, bob = deployment.register(), deployment.register()
    a = await connect(deployment, 0, alice)
    b = await connect(deployment, 1, bob)
    original = text("to be edited")
    sent = await a.request({"content": original})
    message_id = sent["message"]["id"]
    await b.recv_until(delivery_of(original), timeout=10)

    edited = text("edited")
    reply = await a.request({"type": "edit_message", "message_id": message_id, "content": edited})
    assert reply["type"] == "message_edited", reply
    frame = await b.recv_until(lambda f: f.get("type") == "message_edited", timeout=10)
    assert frame["message"]["id"] == message_id and frame["message"]["content"] == edited
    assert frame["seq"] == reply["seq"]

    resp = httpx.delete(f"{deployment.node[0].http_url}/messages/{message_id}", headers=auth(alice))
    assert resp.status_code == 204, resp.text
    frame = await b.recv_until(lambda f: f.get("type") == "message_deleted", timeout=10)
    assert frame["message_id"] == message_id and frame["seq"] > reply["seq"]
    for client in (a, b):
        await client.close()


def is_typing(frame: Frame) -> bool:
    return frame.get("type") == "typing"


def is_stop(frame: Frame) -> bool:
    return frame.get("type") == "typing_stopped"


async def test_typing_and_its_stop_reach_users_on_the_other_node(deployment: Deployment) -> None:
    alice, bob = deployment.register(), deployment.register()
    a = await connect(deployment, 0, alice)
    b = await connect(deployment, 1, bob)

    await a.send({"type": "typing"})
    frame = await b.recv_until(is_typing, timeout=10)
    assert frame["username"] == alice.username and frame["to_username"] is None
    # Stopped by a send: the stop comes with (after) the message.
    done = text("done typing")
    await a.request({"content": done})
    stop = await b.recv_until(is_stop, timeout=10)
    assert stop == {"type": "typing_stopped", "username": alice.username, "to_username": None}
    assert any(is_delivery(f) and f["content"] == done for f in b.seen)

    # Stopped by expiry (0.6 s on this deployment), on the typist's node.
    await a.send({"type": "typing", "to_username": bob.username})
    frame = await b.recv_until(is_typing, timeout=10)
    assert frame["to_username"] == bob.username
    stop = await b.recv_until(is_stop, timeout=10)
    assert stop["username"] == alice.username and stop["to_username"] == bob.username
    for client in (a, b):
        await client.close()


async def test_read_receipts_and_pushed_unread_counts_cross_nodes(deployment: Deployment) -> None:
    alice, bob = deployment.register(), deployment.register()
    a = await connect(deployment, 0, alice)
    bob_on_1 = await connect(deployment, 1, bob)
    bob_on_0 = await connect(deployment, 0, bob)
    content = text("read me")
    sent = await a.request({"content": content, "to_username": bob.username})
    message_id = sent["message"]["id"]
    await bob_on_1.recv_until(delivery_of(content), timeout=10)

    marked = await bob_on_1.request({"type": "mark_read", "message_id": message_id})
    assert marked["type"] == "marked_read", marked
    receipt = await a.recv_until(lambda f: f.get("type") == "read_receipt", timeout=10)
    assert receipt["message_id"] == message_id and receipt["read_by"] == bob.username
    # Bob's connection on the other node follows his count.
    count = await bob_on_0.recv_until(lambda f: f.get("type") == "unread_count", timeout=10)
    assert count["unread_direct_messages"] == 0
    for client in (a, bob_on_1, bob_on_0):
        await client.close()


async def listed(
    deployment: Deployment,
    node: int,
    asker: Account,
    usernames: set[str],
    not_listed: str | None = None,
) -> None:
    """Until ``GET /users/online`` on ``node`` lists ``usernames`` (and not ``not_listed``)."""

    def holds() -> bool:
        online = deployment.online(node, asker.api_key)
        return usernames <= online and not_listed not in online

    await eventually(holds, 10, f"node {node}: online users are not {usernames}")


def presence_of(username: str) -> Callable[[Frame], bool]:
    return lambda f: f.get("type") == "presence" and f["username"] == username


async def test_online_users_are_the_union_of_the_nodes(deployment: Deployment) -> None:
    alice, bob = deployment.register(), deployment.register()
    a = await connect(deployment, 0, alice)
    b = await connect(deployment, 1, bob)
    # Pushed across nodes as it is on one.
    pushed = await a.recv_until(presence_of(bob.username), timeout=10)
    assert pushed["online"] is True
    for node in (0, 1):
        await listed(deployment, node, alice, {alice.username, bob.username})
    await b.close()
    gone = await a.recv_until(presence_of(bob.username), timeout=10)
    assert gone["online"] is False
    for node in (0, 1):
        await listed(deployment, node, alice, {alice.username}, not_listed=bob.username)
    await a.close()


def admin_connections_of(deployment: Deployment, node: int, username: str) -> int:
    """How many sockets ``node`` itself holds for ``username`` (its admin list is its own)."""
    resp = httpx.get(
        f"{deployment.node[node].http_url}/admin/websocket/connections",
        headers=auth(deployment.node[node].admin),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return sum(1 for c in resp.json()["connections"] if c["username"] == username)


async def test_a_user_on_two_nodes_stays_online_until_the_last_socket_closes(
    deployment: Deployment,
) -> None:
    alice, bob = deployment.register(), deployment.register()
    watcher = await connect(deployment, 0, bob)
    first = await connect(deployment, 0, alice)
    await watcher.recv_until(presence_of(alice.username), timeout=10)
    second = await connect(deployment, 1, alice)
    await first.close()
    # Node 0 has let go of Alice's socket there; whatever it announced is queued before the
    # reply to the watcher's next request.
    await eventually(
        lambda: admin_connections_of(deployment, 0, alice.username) == 0, 10, "never let go"
    )
    await watcher.request({"type": "get_unread_count"})
    assert [f["online"] for f in watcher.seen if f.get("type") == "presence"] == [True], (
        "announced offline while her socket on the other node is open"
    )
    await listed(deployment, 0, bob, {alice.username})
    await second.close()
    gone = await watcher.recv_until(presence_of(alice.username), timeout=10)
    assert gone["online"] is False
    await watcher.close()


async def test_a_rotated_key_closes_the_users_sockets_on_every_node(
    deployment: Deployment,
) -> None:
    alice = deployment.register()
    on_0 = await connect(deployment, 0, alice)
    on_1 = await connect(deployment, 1, alice)
    resp = httpx.post(
        f"{deployment.node[0].http_url}/users/me/regenerate-api-key", headers=auth(alice)
    )
    assert resp.status_code == 200, resp.text
    assert await close_code(on_0) == 1008
    assert await close_code(on_1) == 1008


async def test_a_role_change_reaches_open_sockets_on_the_other_node(
    deployment: Deployment,
) -> None:
    admin = deployment.node[0].admin
    member = deployment.register()
    on_1 = await connect(deployment, 1, member)
    resp = httpx.patch(
        f"{deployment.node[0].http_url}/admin/users/{member.id}/role",
        json={"role": "viewer"},
        headers=auth(admin),
    )
    assert resp.status_code == 200, resp.text
    # Node 1 hears of it through Redis, a moment after the REST reply: until then a send
    # may still pass as the member's; from then on every one is refused.
    refused: list[Frame] = []
    async with asyncio.timeout(10):
        while not refused:
            reply = await on_1.request({"content": text("as viewer?")})
            if reply["type"] == "error":
                refused.append(reply)
            else:
                assert reply["type"] == "message_sent", reply
    assert refused[0]["code"] == "permission_denied", refused
    again = await on_1.request({"content": text("still a viewer")})
    assert again["type"] == "error" and again["code"] == "permission_denied", again
    await on_1.close()


async def test_a_deleted_account_is_closed_on_every_node(deployment: Deployment) -> None:
    admin = deployment.node[0].admin
    doomed = deployment.register()
    on_1 = await connect(deployment, 1, doomed)
    resp = httpx.delete(
        f"{deployment.node[0].http_url}/admin/users/{doomed.id}", headers=auth(admin)
    )
    assert resp.status_code == 204, resp.text
    assert await close_code(on_1) == 1008


async def test_resume_on_the_other_node_replays_without_a_gap(deployment: Deployment) -> None:
    alice, bob = deployment.register(), deployment.register()
    a = await connect(deployment, 0, alice)
    b = await connect(deployment, 1, bob)
    first = text("before the drop")
    await b.request({"content": first, "to_username": alice.username})
    seen = await a.recv_until(delivery_of(first), timeout=10)
    await a.close()

    missed = [text(f"missed {i}") for i in range(3)]
    seqs = []
    for content in missed:
        sent = await b.request({"content": content, "to_username": alice.username})
        seqs.append(sent["message"]["seq"])
    edited = text("missed, edited")
    edit = await b.request(
        {"type": "edit_message", "message_id": sent["message"]["id"], "content": edited}
    )

    again = await connect(deployment, 1, alice, query=f"&since_seq={seen['seq']}")
    resumed = await again.recv_until(lambda f: f.get("type") == "resumed", timeout=10)
    replay = [f for f in again.seen if is_delivery(f) or f.get("type") == "message_edited"]
    mine = [f for f in replay if f.get("to_username") == alice.username or "message" in f]
    assert [f.get("seq") for f in mine] == [*seqs, edit["seq"]]
    # A replayed message is read as it is now: the last one with its edit.
    assert [f["content"] for f in mine[:3]] == [*missed[:2], edited]
    assert resumed["since_seq"] == seen["seq"] and resumed["last_seq"] >= edit["seq"]
    for client in (again, b):
        await client.close()


async def test_concurrent_senders_on_two_nodes_reach_every_receiver_in_seq_order(
    deployment: Deployment,
) -> None:
    """Commits on one node and publishes on the other race: every receiver, on either
    node, must still see the room in seq order, with nothing missing."""
    per_sender = 100
    senders = [deployment.register("sender") for _ in range(4)]
    receivers = [deployment.register("receiver") for _ in range(4)]
    # The senders read only their replies, while the other senders' messages reach them too:
    # with the client's default max_queue (16 frames) it would stop reading the socket, and
    # its close handshake would wait behind the unread frames until it gave up (1006).
    sending = [
        await connect(deployment, i % 2, acct, max_queue=None) for i, acct in enumerate(senders)
    ]
    receiving = [await connect(deployment, i % 2, acct) for i, acct in enumerate(receivers)]
    tag = text("order")

    async def send_all(index: int, client: WsClient) -> list[int]:
        # Pipelined: every frame goes out before the first reply is read.
        for i in range(per_sender):
            await client.send({"content": f"{tag} {index}.{i}", "request_id": f"o{index}.{i}"})
        acks: list[int] = []
        async with asyncio.timeout(60):
            while len(acks) < per_sender:
                frame = await client.recv(60)
                if frame.get("type") == "message_sent":
                    acks.append(frame["message"]["seq"])
                assert frame.get("type") != "error", frame
        return acks

    async def receive_all(client: WsClient) -> list[tuple[int, str]]:
        got: list[tuple[int, str]] = []
        ours = 0
        async with asyncio.timeout(90):
            while ours < per_sender * len(senders):
                frame = await client.recv(90)
                if is_delivery(frame):
                    got.append((frame["seq"], frame["content"]))
                    ours += frame["content"].startswith(tag)
        return got

    receipts = [asyncio.create_task(receive_all(client)) for client in receiving]
    acked = await asyncio.gather(*(send_all(i, c) for i, c in enumerate(sending)))
    received = await asyncio.gather(*receipts)

    committed = sorted(seq for acks in acked for seq in acks)
    assert len(set(committed)) == len(committed) == per_sender * len(senders)
    for account, got in zip(receivers, received, strict=True):
        seqs = [seq for seq, _ in got]
        assert seqs == sorted(set(seqs)), f"{account.username}: out of order or twice"
        ours = [seq for seq, content in got if content.startswith(tag)]
        assert ours == committed, f"{account.username}: missing {set(committed) - set(ours)}"
    # Every connection is still read by its node: each takes the close at once (a node that
    # stopped reading leaves it to the client's close timeout, code 1006).
    for client in (*sending, *receiving):
        await client.close()
    assert [client.conn.close_code for client in (*sending, *receiving)] == [1000] * 8
