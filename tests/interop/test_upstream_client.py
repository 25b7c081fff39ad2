"""Interoperability: the published ``token-bowl-chat==2.1.1`` client against our real server.

The published client pins its own ``websockets``/``httpx`` and pulls in a large dependency
tree, so it lives in a virtual environment of its own under ``<repo>/.cache/`` (created
once, then reused). Each test runs ``upstream_driver.py`` with that environment's Python
against the session's ``live_server``; the driver prints what the upstream client
observed as JSON, and the assertions here check it value by value.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.conftest import LiveServer

pytestmark = pytest.mark.interop

UPSTREAM_VERSION = "2.1.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("upstream_driver.py")
DEFAULT_VENV = REPO_ROOT / ".cache" / f"upstream-{UPSTREAM_VERSION}-venv"
DRIVER_TIMEOUT = 120.0

ROOM_DESCRIPTION = "This is a message for the fantasy league's group chat."
ZERO = {"room": 0, "direct": 0, "total": 0}


def _tail(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


def _check(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        pytest.fail(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
            f"stdout:\n{_tail(proc.stdout)}\nstderr:\n{_tail(proc.stderr)}"
        )
    return proc


def ensure_upstream_venv(venv: Path) -> Path:
    """Create ``venv`` with the published client once; return its Python.

    A marker file records a finished, verified install, and a file lock keeps concurrent
    pytest processes from building it twice.
    """
    python = venv / "bin" / "python"
    marker = venv / f".token-bowl-chat-{UPSTREAM_VERSION}-ok"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with (venv.parent / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if marker.exists() and python.exists():
                return python
            if venv.exists():
                shutil.rmtree(venv)
            _check([sys.executable, "-m", "venv", str(venv)], timeout=300)
            _check(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    f"token-bowl-chat=={UPSTREAM_VERSION}",
                ],
                timeout=1200,
            )
            probe = _check(
                [
                    str(python),
                    "-I",
                    "-c",
                    "import importlib.metadata as m, token_bowl_chat; "
                    "print(m.version('token-bowl-chat'))",
                ],
                timeout=120,
            )
            assert probe.stdout.strip() == UPSTREAM_VERSION, probe.stdout
            marker.write_text(UPSTREAM_VERSION + "\n")
            return python
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def upstream_python() -> Path:
    venv = Path(os.environ.get("TOKEN_BOWL_UPSTREAM_VENV", DEFAULT_VENV))
    return ensure_upstream_venv(venv)


def run_driver(python: Path, server: LiveServer, scenario: str) -> tuple[str, dict[str, Any]]:
    """Run one driver scenario; return the username prefix it used and its JSON result."""
    prefix = f"ic{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "TOKEN_BOWL"))}
    env.update(
        {
            "TB_HTTP_URL": server.http_url,
            # The upstream client appends /ws itself; give it the bare base as users do.
            "TB_WS_URL": server.ws_url.removesuffix("/ws"),
            "TB_PREFIX": prefix,
        }
    )
    proc = subprocess.run(
        [str(python), "-I", str(DRIVER), scenario],
        capture_output=True,
        text=True,
        timeout=DRIVER_TIMEOUT,
        env=env,
        cwd=DRIVER.parent,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT:")]
    if proc.returncode != 0 or not lines:
        pytest.fail(
            f"driver {scenario!r} exited {proc.returncode} without a result\n"
            f"stdout:\n{_tail(proc.stdout)}\nstderr:\n{_tail(proc.stderr)}\n"
            f"server log:\n{_tail(server.proc.log())}"
        )
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT:"))
    assert result["client_version"] == UPSTREAM_VERSION
    assert Path(result["client_file"]).resolve().is_relative_to(python.parent.parent.resolve())
    if not result["ok"]:
        partial = {k: v for k, v in result.items() if k != "exception"}
        pytest.fail(
            f"driver {scenario!r} raised:\n{result['exception']}\n"
            f"observed so far:\n{_tail(json.dumps(partial, indent=1), 6000)}\n"
            f"driver stderr:\n{_tail(proc.stderr)}\n"
            f"server log:\n{_tail(server.proc.log())}"
        )
    return prefix, result


def count(room: int, direct: int) -> dict[str, int]:
    return {"room": room, "direct": direct, "total": room + direct}


def contents(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages]


def assert_registered(result: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    regs: dict[str, dict[str, Any]] = result["registrations"]
    for tag, reg in regs.items():
        assert reg["username"] == f"{prefix}_{tag}"
        assert len(reg["id"]) == 36
        assert reg["api_key_len"] == 64
        assert reg["role"] == "member"
        assert (reg["viewer"], reg["admin"], reg["bot"]) == (False, False, False)
    return regs


def assert_no_client_errors(peers: dict[str, dict[str, Any]]) -> None:
    for name, peer in peers.items():
        assert peer["errors"] == [], f"on_error fired for {name}: {peer['errors']}"


def test_bad_api_key_raises_authentication_error(
    upstream_python: Path, live_server: LiveServer
) -> None:
    prefix, r = run_driver(upstream_python, live_server, "auth")

    # WS handshake with an unknown key: HTTP 401, which 2.1.1 maps to AuthenticationError.
    assert r["ws_bad_key"]["raised"] == "AuthenticationError", r["ws_bad_key"]
    assert r["ws_bad_key"]["is_auth_error"] is True
    assert r["ws_bad_key"]["message"] == "Invalid API key"

    # REST with an unknown key: 401 -> AuthenticationError (sync and async clients).
    for key in (
        "rest_bad_key_get_unread_count",
        "rest_bad_key_get_messages",
        "rest_bad_key_get_users",
        "async_rest_bad_key_send",
    ):
        assert r[key] == {"raised": "AuthenticationError", "is_auth_error": True, "status": 401}, (
            key,
            r[key],
        )

    # The same client with a real key connects and gets answers.
    assert_registered(r, prefix)
    assert r["ws_good_key_connected"] is True
    good = r["ws_good_key_count"]
    assert good is not None, "no unread_count reply for a valid key"
    assert good["direct"] == 0
    assert good["total"] == good["room"]
    assert r["ws_good_key_peer"]["connects"] == 1
    assert r["ws_good_key_peer"]["errors"] == []


def test_messages_typing_history_and_presence(
    upstream_python: Path, live_server: LiveServer
) -> None:
    prefix, r = run_driver(upstream_python, live_server, "messaging")
    regs = assert_registered(r, prefix)
    alice, bob, carol = (regs[t]["username"] for t in ("alice", "bob", "carol"))
    ids = {regs[t]["username"]: regs[t]["id"] for t in ("alice", "bob", "carol")}
    peers = r["peers"]
    assert r["connected"] == [True, True, True]
    assert_no_client_errors(peers)

    # Room message sent with REST send_message: 201 body, then live delivery to others.
    sent = r["rest_room_sent"]
    assert sent["content"] == f"{prefix} room-rest"
    assert sent["from_username"] == alice
    assert sent["from_user_id"] == ids[alice]
    assert sent["message_type"] == "room"
    assert sent["to_username"] is None
    assert sent["to_user_id"] is None
    assert sent["description"] == ROOM_DESCRIPTION
    assert len(sent["id"]) == 36
    assert sent["timestamp_parses"] is True
    assert r["bob_room_rest"] == sent
    assert r["carol_room_rest"] == sent

    # Room message sent with WS send_message (type-less legacy frame).
    live = r["alice_room_ws"]
    assert live is not None, "alice never got bob's WS room message"
    assert live["content"] == f"{prefix} room-ws"
    assert live["from_username"] == bob
    assert live["from_user_id"] == ids[bob]
    assert live["message_type"] == "room"
    assert live["to_username"] is None
    assert live["to_user_id"] is None
    assert r["carol_room_ws"] == live

    # DM with REST send_message (alice -> bob).
    dm = r["rest_dm_sent"]
    assert dm["content"] == f"{prefix} dm-rest"
    assert dm["from_username"] == alice
    assert dm["from_user_id"] == ids[alice]
    assert dm["message_type"] == "direct"
    assert dm["to_username"] == bob
    assert dm["to_user_id"] == ids[bob]
    assert dm["description"] == f"This is a direct message from {alice} to {bob}."
    assert r["bob_dm_rest"] == dm

    # DM with WS send_message (bob -> alice).
    live_dm = r["alice_dm_ws"]
    assert live_dm is not None, "alice never got bob's WS DM"
    assert live_dm["content"] == f"{prefix} dm-ws"
    assert live_dm["from_username"] == bob
    assert live_dm["from_user_id"] == ids[bob]
    assert live_dm["message_type"] == "direct"
    assert live_dm["to_username"] == alice
    assert live_dm["to_user_id"] == ids[alice]

    # Exactly what each user received live: no echo of one's own room messages, and DMs
    # only to their recipient.
    assert contents(peers[alice]["messages"]) == [
        f"{prefix} room-ws",
        f"{prefix} dm-ws",
        f"{prefix} room-barrier",
    ]
    assert contents(peers[bob]["messages"]) == [f"{prefix} room-rest", f"{prefix} dm-rest"]
    assert contents(peers[carol]["messages"]) == [
        f"{prefix} room-rest",
        f"{prefix} room-ws",
        f"{prefix} room-barrier",
    ]

    # Typing: room typing to every other user (not the typer), DM typing to the recipient.
    assert r["bob_typing_room"] is True
    assert r["carol_typing_room"] is True
    assert r["alice_typing_dm"] is True
    assert peers[bob]["typing"] == [[alice, None]]
    assert peers[carol]["typing"] == [[alice, None]]
    assert peers[alice]["typing"] == [[bob, alice]]
    assert all(c is not None for c in r["barrier_counts"]), r["barrier_counts"]
    assert [c["direct"] for c in r["barrier_counts"]] == [1, 1, 0]

    # REST room history: newest first, with exact pagination.
    history = r["history"]
    total = history["total"]
    assert total == r["room_total_before"] + 3
    assert (history["offset"], history["limit"]) == (0, 50)
    assert len(history["messages"]) == min(total, 50)
    assert history["has_more"] is (total > 50)
    newest = history["messages"][:3]
    assert contents(newest) == [
        f"{prefix} room-barrier",
        f"{prefix} room-ws",
        f"{prefix} room-rest",
    ]
    assert [m["from_username"] for m in newest] == [bob, bob, alice]
    assert all(m["message_type"] == "room" for m in history["messages"])
    assert newest[1]["id"] == live["id"]
    assert newest[2] == sent
    page1 = r["history_page1"]
    assert (page1["total"], page1["offset"], page1["limit"]) == (total, 1, 1)
    assert page1["has_more"] is (total > 2)
    assert [m["id"] for m in page1["messages"]] == [newest[1]["id"]]

    # REST DM history: both sides see the pair, newest first; carol sees none.
    for user in (alice, bob):
        dms = r[f"dms_{user}"]
        assert dms["total"] == 2
        assert dms["has_more"] is False
        assert contents(dms["messages"]) == [f"{prefix} dm-ws", f"{prefix} dm-rest"]
        assert dms["messages"][0]["id"] == live_dm["id"]
        assert dms["messages"][1] == dm
    assert r[f"dms_{carol}"] == {"total": 0, "has_more": False, "messages": []}

    # Users: all three, in registration order, as plain members.
    users = {u["username"]: u for u in r["users"]}
    for name in (alice, bob, carol):
        assert users[name] == {
            "id": ids[name],
            "username": name,
            "role": "member",
            "bot": False,
            "viewer": False,
        }
    order = [u["username"] for u in r["users"]]
    assert order.index(alice) < order.index(bob) < order.index(carol)

    # Presence: connected users are online, in connection order; a closed one leaves.
    online = {u["username"]: u for u in r["online_all"]}
    for name in (alice, bob, carol):
        assert online[name] == {"id": ids[name], "username": name, "role": "member"}
    online_order = [u["username"] for u in r["online_all"]]
    assert online_order.index(alice) < online_order.index(bob) < online_order.index(carol)
    assert alice in r["online_after_carol_left"]
    assert bob in r["online_after_carol_left"]
    assert carol not in r["online_after_carol_left"]


def test_read_receipts_reach_author_on_every_mark_path(
    upstream_python: Path, live_server: LiveServer
) -> None:
    prefix, r = run_driver(upstream_python, live_server, "receipts")
    regs = assert_registered(r, prefix)
    reader = regs["reader"]["username"]
    peers = r["peers"]
    assert_no_client_errors(peers)

    missing = [path for path, arrived in r["arrived"].items() if not arrived]
    assert missing == [], f"no read_receipt reached the author for: {missing}"

    ids: dict[str, str] = r["ids"]
    got = peers["author"]["receipts"]
    # Exactly one receipt per message, each naming the reader, nothing else.
    expected = [[ids[tag], reader] for tag in ids]
    assert sorted(got) == sorted(expected), {
        "missing": [e for e in expected if e not in got],
        "unexpected_or_duplicate": [g for g in got if got.count(g) > 1 or g not in expected],
    }
    # The one-by-one marks arrive in the order they were made.
    singles = ["ws_room", "ws_dm", "rest_dm", "rest_room", "ws_mark_room", "ws_mark_direct"]
    assert [m for m, _ in got[: len(singles)]] == [ids[t] for t in singles]
    assert got[-1] == [ids["final"], reader]

    assert peers["reader"]["receipts"] == []
    assert r["rest_mark_all_result"] == {"marked_as_read": 2}
    assert r["bob_count_end"] == ZERO


def test_unread_counts_follow_every_mark_method(
    upstream_python: Path, live_server: LiveServer
) -> None:
    prefix, r = run_driver(upstream_python, live_server, "unread")
    regs = assert_registered(r, prefix)
    alice, bob, carol = (regs[t]["username"] for t in ("ualice", "ubob", "ucarol"))
    s = r["steps"]
    assert_no_client_errors(r["peers"])

    assert s["baseline_rest"] == ZERO
    assert s["baseline_ws"] == ZERO
    assert s["bob_live"] == [f"{prefix} {c}" for c in ("r1", "r2", "r3", "d1", "d2", "c1")]

    # Three room messages and three DMs (two from alice, one from carol).
    assert s["after_sends_rest"] == count(3, 3)
    assert s["after_sends_ws"] == count(3, 3)
    # The author's own messages never count for the author.
    assert s["alice_after_sends_rest"] == ZERO

    # REST unread lists: oldest first.
    room = s["unread_room"]
    assert contents(room) == [f"{prefix} r1", f"{prefix} r2", f"{prefix} r3"]
    assert {(m["from_username"], m["message_type"], m["to_username"]) for m in room} == {
        (alice, "room", None)
    }
    direct = s["unread_direct"]
    assert contents(direct) == [f"{prefix} d1", f"{prefix} d2", f"{prefix} c1"]
    assert [(m["from_username"], m["to_username"]) for m in direct] == [
        (alice, bob),
        (alice, bob),
        (carol, bob),
    ]
    assert all(m["message_type"] == "direct" for m in direct)

    # Each WS mark method, checked by the unread count that follows it.
    assert s["after_ws_mark_read"] == count(2, 3)
    assert s["after_ws_mark_room_read"] == count(0, 3)
    assert s["after_ws_mark_direct_read"] == count(0, 1)
    assert s["unread_direct_left"] == [f"{prefix} c1"]
    assert s["after_more_sends"] == count(1, 2)
    assert s["after_ws_mark_all_read"] == ZERO
    assert s["after_ws_mark_all_read_rest"] == ZERO
    assert s["unread_room_empty"] == 0
    assert s["unread_direct_empty"] == 0

    # REST mark read and mark-all-read.
    assert s["before_rest_mark_read"] == count(1, 0)
    assert s["after_rest_mark_read"] == ZERO
    assert s["before_rest_mark_all"] == count(1, 1)
    assert s["rest_mark_all_result"] == {"marked_as_read": 2}
    assert s["after_rest_mark_all"] == ZERO


def test_conversation_methods(upstream_python: Path, live_server: LiveServer) -> None:
    """What a 2.1.1 user gets from each conversation method. Its sync ``create_conversation``
    and ``update_conversation`` raise ``TypeError`` before sending anything (they pass
    ``json_data=`` to httpx: PROTOCOL.md section 8, gap 31); everything else works, including
    ``get_conversations``, whose flat ``total``/``limit``/``offset`` the server adds (6.6
    item 10), and a bad message id refuses the whole request."""
    prefix, r = run_driver(upstream_python, live_server, "conversations")
    regs = assert_registered(r, prefix)
    s, ids = r["steps"], r["ids"]

    for broken in ("sync_create", "sync_update"):
        assert (s[broken]["raised"], s[broken]["module"]) == ("TypeError", "builtins"), s[broken]
        assert "json_data" in s[broken]["message"]

    created = s["async_create"]["value"]
    assert created["title"] == "draft"
    assert created["description"] == "d"
    assert created["message_ids"] == [ids["room"], ids["dm"]]
    assert created["created_by_username"] == regs["calice"]["username"]
    for refused in ("create_missing", "create_others_dm"):
        assert (s[refused]["raised"], s[refused]["status"]) == ("NotFoundError", 404), s[refused]
    assert (s["create_not_uuid"]["raised"], s["create_not_uuid"]["status"]) == (
        "ValidationError",
        422,
    )
    # Only the one good create was stored; both clients read the list.
    assert s["sync_list"]["value"] == {
        "conversations": [created],
        "total": 1,
        "limit": 100,
        "offset": 0,
    }
    assert s["async_list"]["value"] == {
        "conversations": [created],
        "total": 1,
        "limit": 10,
        "offset": 0,
    }
    assert s["sync_get"]["value"] == created
    assert s["async_get"]["value"] == created

    updated = {**created, "title": "renamed", "message_ids": [ids["dm"]]}
    assert s["async_update"]["value"] == updated
    assert s["async_update_nothing"]["value"] == updated  # upstream: 500
    assert (s["async_update_missing"]["raised"], s["async_update_missing"]["status"]) == (
        "NotFoundError",
        404,
    )
    assert s["after_failed_update"]["value"] == updated

    # Someone else's conversation: 403, which 2.1.1 raises as a raw httpx error (gap 33).
    assert (s["bob_get"]["raised"], s["bob_get"]["module"], s["bob_get"]["status"]) == (
        "HTTPStatusError",
        "httpx",
        403,
    )
    assert s["bob_list"]["value"]["total"] == 0

    assert s["sync_delete"] == {"value": None}
    assert (s["get_deleted"]["raised"], s["get_deleted"]["status"]) == ("NotFoundError", 404)
    assert s["async_delete"] == {"value": None}
    assert s["list_at_end"]["value"]["total"] == 0


def test_bot_methods(upstream_python: Path, live_server: LiveServer) -> None:
    """2.1.1's create_bot, get_my_bots, update_bot, regenerate_bot_api_key and delete_bot
    (sync and async), then the bot's key sends and its messages arrive flagged as a bot's."""
    prefix, r = run_driver(upstream_python, live_server, "bots")
    owner = r["registrations"]["owner"]
    bots = r["bots"]
    created = bots["created"]
    assert created["username"] == f"{prefix}_bot" and created["api_key_len"] == 64
    assert (created["created_by_id"], created["created_by"]) == (owner["id"], owner["username"])
    assert created["emoji"] == "🤖"
    assert [b[1] for b in bots["listed"]] == [f"{prefix}_bot", f"{prefix}_spare"]
    assert all(b[3] == owner["username"] for b in bots["listed"])
    assert bots["listed_key_masked"] == [True, True]  # keys are shown once, at creation
    assert bots["updated_emoji"] == "🦾"
    assert bots["listed_after_delete"] == [created["id"]]
    assert bots["rotated_message"] == "Bot API key regenerated successfully"
    assert bots["old_key"] == "AuthenticationError"
    assert bots["rest_sent_bot_flag"] is True
    assert bots["delivered_bot_flags"] == {"beep over websocket": True, "beep over rest": True}
    assert bots["history_bot_flags"] == {"beep over websocket": True, "beep over rest": True}
    assert bots["listed_at_end"] == []
    assert bots["deleted_key"] == "AuthenticationError"
    delivered = [m for m in r["owner"]["messages"] if m["content"].startswith("beep")]
    assert {m["from_username"] for m in delivered} == {f"{prefix}_bot"}
    assert r["owner"]["errors"] == []
