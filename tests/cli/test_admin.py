"""``token-bowl admin ...`` against a real server: ``admin create`` on the server's own
database, and a command for every admin endpoint through the SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tests.cli.conftest import Run, json_out
from tests.conftest import LiveServer
from tests.wsclient import WsClient
from token_bowl_chat.cli.app import app


def _me(server: LiveServer, key: str) -> httpx.Response:
    return httpx.get(f"{server.http_url}/users/me", headers={"X-API-Key": key})


def test_admin_create_makes_the_first_admin_on_the_servers_database(
    home: Any, make_server: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server()
    runner = CliRunner()
    url = server.proc.database_url
    made = json_out(
        runner.invoke(app, ["admin", "create", "root", "--database-url", url, "--json"])
    )
    assert (made["username"], made["role"], made["created"]) == ("root", "admin", True)
    # The running server takes the key at once: it reads accounts from the same database.
    body = _me(server, made["api_key"]).json()
    assert (body["id"], body["role"]) == (made["id"], "admin")

    # An existing user is promoted and gets a new key; the old one stops working. The
    # database comes from DATABASE_URL, as the server reads it.
    bob = server.register()
    monkeypatch.setenv("DATABASE_URL", url)
    promoted = json_out(runner.invoke(app, ["admin", "create", bob.username, "--json"]))
    assert (promoted["id"], promoted["created"], promoted["role"]) == (bob.id, False, "admin")
    assert _me(server, bob.api_key).status_code == 401
    assert _me(server, promoted["api_key"]).json()["role"] == "admin"
    users = httpx.get(
        f"{server.http_url}/admin/users", headers={"X-API-Key": promoted["api_key"]}
    ).json()
    assert [u["username"] for u in users if u["role"] == "admin"] == ["admin", "root", bob.username]

    for bad in ("", "x" * 51, "nul\x00name"):
        refused = runner.invoke(app, ["admin", "create", bad, "--database-url", url])
        assert refused.exit_code == 1 and "Invalid username" in refused.stderr, refused.output
    unreachable = "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    failed = runner.invoke(app, ["admin", "create", "root", "--database-url", unreachable])
    assert failed.exit_code == 1 and "cannot use the server's database" in failed.stderr
    plain = runner.invoke(app, ["admin", "create", "root", "--database-url", url])
    assert plain.exit_code == 0, plain.output
    assert "api_key: " in plain.stdout and "role: admin" in plain.stdout
    assert "promoted" in plain.stderr and "shown only this once" in plain.stderr


def test_admin_users_commands(cli: Run, live_server: LiveServer) -> None:
    key = live_server.admin.api_key
    alice = live_server.register()
    listed = json_out(cli("admin", "users", "list", "--json", key=key))
    assert alice.id in [u["id"] for u in listed]
    table = cli("admin", "users", "list", key=key)
    assert table.exit_code == 0 and alice.username in table.stdout

    # By username or by id.
    assert json_out(cli("admin", "users", "get", alice.username, "--json", key=key))["id"] == (
        alice.id
    )
    got = cli("admin", "users", "get", alice.id, key=key)
    assert got.exit_code == 0 and f"username: {alice.username}" in got.stdout

    new_name = live_server.unique("cli-renamed")
    updated = json_out(
        cli(
            "admin",
            "users",
            "update",
            alice.id,
            "--username",
            new_name,
            "--emoji",
            "🦊",
            "--json",
            key=key,
        )
    )
    assert (updated["username"], updated["emoji"]) == (new_name, "🦊")
    nothing = cli("admin", "users", "update", alice.id, key=key)
    assert nothing.exit_code == 2 and "nothing to change" in nothing.stderr

    role = json_out(cli("admin", "users", "role", new_name, "viewer", "--json", key=key))
    assert role == {
        "username": new_name,
        "role": "viewer",
        "message": f"Successfully assigned role 'viewer' to user {new_name}",
    }
    bad = cli("admin", "users", "role", new_name, "superuser", key=key)
    assert bad.exit_code == 2

    refused = cli("admin", "users", "delete", new_name, key=key)
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert _me(live_server, alice.api_key).status_code == 200
    deleted = json_out(cli("admin", "users", "delete", new_name, "--yes", "--json", key=key))
    assert deleted == {"deleted": alice.id}
    assert _me(live_server, alice.api_key).status_code == 401
    again = cli("admin", "users", "delete", alice.id, "--yes", key=key)
    assert again.exit_code == 1 and "not found" in again.stderr
    unknown = cli("admin", "users", "get", "nobody-by-this-name", key=key)
    assert unknown.exit_code == 1 and "no user named" in unknown.stderr


def test_admin_commands_refuse_members_and_the_last_admin(
    home: Any, make_server: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server()
    monkeypatch.setenv("TOKEN_BOWL_CHAT_BASE_URL", server.http_url)
    runner = CliRunner()
    member = server.register()

    def run(*args: str, key: str) -> Any:
        return runner.invoke(app, list(args), env={"TOKEN_BOWL_CHAT_API_KEY": key})

    result = run("admin", "users", "list", key=member.api_key)
    assert result.exit_code == 1 and "permission denied" in result.stderr
    result = run("admin", "users", "role", server.admin.id, "member", key=server.admin.api_key)
    assert result.exit_code == 1 and "last admin" in result.stderr


@pytest.mark.single_node(reason="the connections list is the answering process's")
async def test_admin_connections_command(cli: Run, live_server: LiveServer) -> None:
    alice = live_server.register()
    ws = await WsClient.connect(live_server.ws_url, alice.api_key)
    try:
        await ws.recv_until(lambda f: f.get("type") == "hello")
        result = await asyncio.to_thread(
            cli, "admin", "connections", "--json", key=live_server.admin.api_key
        )
        stats = json_out(result)
        assert alice.username in [c["username"] for c in stats["connections"]]
        assert stats["total_connections"] == len(stats["connections"])
        table = await asyncio.to_thread(cli, "admin", "connections", key=live_server.admin.api_key)
        assert table.exit_code == 0 and alice.username in table.stdout
    finally:
        await ws.close()


def test_admin_messages_and_conversations_commands(cli: Run, live_server: LiveServer) -> None:
    key = live_server.admin.api_key
    alice, bob = live_server.register(), live_server.register()
    sent = httpx.post(
        f"{live_server.http_url}/messages",
        headers={"X-API-Key": alice.api_key},
        json={"content": "a private word", "to_username": bob.username},
    ).json()
    got = json_out(cli("admin", "messages", "get", sent["id"], "--json", key=key))
    assert got["content"] == "a private word"
    edited = json_out(
        cli("admin", "messages", "edit", sent["id"], "[moderated]", "--json", key=key)
    )
    assert edited["content"] == "[moderated]"
    assert json_out(cli("admin", "messages", "delete", sent["id"], "--yes", "--json", key=key)) == {
        "deleted": sent["id"]
    }
    gone = cli("admin", "messages", "get", sent["id"], key=key)
    assert gone.exit_code == 1 and "not found" in gone.stderr

    conversation = httpx.post(
        f"{live_server.http_url}/conversations",
        headers={"X-API-Key": alice.api_key},
        json={"title": "mine"},
    )
    assert conversation.status_code == 201, conversation.text
    conversation_id = conversation.json()["id"]
    result = cli("admin", "conversations", "delete", conversation_id, "--yes", key=key)
    assert result.exit_code == 0 and conversation_id in result.stdout
    mine = httpx.get(
        f"{live_server.http_url}/conversations/{conversation_id}",
        headers={"X-API-Key": alice.api_key},
    )
    assert mine.status_code == 404
