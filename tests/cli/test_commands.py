"""Every non-live command through typer's CliRunner, against the real server."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import Run, json_out
from tests.conftest import LiveServer
from tests.serverproc import free_port
from token_bowl_chat import TokenBowlClient


def _client(live_server: LiveServer, key: str) -> TokenBowlClient:
    return TokenBowlClient(api_key=key, base_url=live_server.http_url)


# --- account and config ---------------------------------------------------------------------


def test_register_save_writes_a_private_config_used_by_later_commands(
    cli: Run, live_server: LiveServer, config_file: Path
) -> None:
    name = live_server.unique("cli_reg")
    result = cli("register", name, "--save")
    assert result.exit_code == 0, result.stderr
    assert name in result.stdout and "api_key" in result.stdout
    assert "Saved the key" in result.stderr

    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_file.parent.stat().st_mode) == 0o700
    stored = json.loads(config_file.read_text())
    # The key works on the server it was made on: the one the CLI was pointed at (on two
    # nodes live_server.http_url takes the next node at every read).
    assert stored["base_url"] == os.environ["TOKEN_BOWL_CHAT_BASE_URL"]
    assert stored["api_key"] in result.stdout

    me = json_out(cli("whoami", "--json"))  # no --api-key: it comes from the file
    assert me["username"] == name
    assert stored["api_key"] not in cli("whoami").stdout  # shown masked


def test_register_json_prints_the_registration_and_does_not_save(
    cli: Run, live_server: LiveServer, config_file: Path
) -> None:
    name = live_server.unique("cli_json")
    body = json_out(cli("register", name, "--json"))
    assert body["username"] == name and len(body["api_key"]) >= 32 and body["role"] == "member"
    assert not config_file.exists()  # not a terminal, no --save: never saved silently


def test_register_taken_name_is_one_line_exit_1(cli: Run, live_server: LiveServer) -> None:
    taken = live_server.register().username
    result = cli("register", taken, "--no-save")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: conflict:")
    assert "Traceback" not in result.output


def test_config_set_show_unset(cli: Run, config_file: Path, live_server: LiveServer) -> None:
    result = cli("config", "set", "api-key", input="sekret-key-1234567890\n")  # from stdin
    assert result.exit_code == 0, result.stderr
    assert cli("config", "set", "base-url", "ws://127.0.0.1:9/ws/").exit_code == 0
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert json.loads(config_file.read_text()) == {
        "api_key": "sekret-key-1234567890",
        "base_url": "http://127.0.0.1:9",  # normalised: ws -> http, /ws dropped
    }

    shown = json_out(cli("config", "show", "--json"))
    # The fixture's TOKEN_BOWL_CHAT_BASE_URL (environment) beats the file.
    assert shown["base_url"] == os.environ["TOKEN_BOWL_CHAT_BASE_URL"]
    assert shown["base_url_source"] == "env"
    assert shown["api_key_source"] == "config"
    assert "sekret-key-1234567890" not in json.dumps(shown)
    assert shown["api_key"].startswith("sekr")

    flagged = json_out(cli("--api-key", "flagkey-abcdefghijkl", "config", "show", "--json"))
    assert flagged["api_key_source"] == "flag"

    assert cli("config", "unset", "api-key").exit_code == 0
    assert json.loads(config_file.read_text()) == {"base_url": "http://127.0.0.1:9"}
    assert "(not set)" in cli("config", "show").stdout


def test_config_show_warns_about_a_readable_file(cli: Run, config_file: Path) -> None:
    assert cli("config", "set", "api-key", "k" * 20).exit_code == 0
    config_file.chmod(0o644)
    result = cli("config", "show")
    assert "readable by others" in result.stderr
    cli("config", "set", "base-url", "http://127.0.0.1:1")  # a rewrite is 0600 again
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600


def test_config_rejects_a_bad_base_url_and_a_broken_file(cli: Run, config_file: Path) -> None:
    result = cli("config", "set", "base-url", "ftp://example")
    assert result.exit_code == 2 and result.stderr.startswith("error: invalid base URL")
    config_file.parent.mkdir(parents=True)
    config_file.write_text("{not json")
    result = cli("whoami")
    assert result.exit_code == 1
    assert "is not valid JSON" in result.stderr and "Traceback" not in result.output


def test_config_file_env_var_picks_another_file(
    cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "bot.json"
    monkeypatch.setenv("TOKEN_BOWL_CHAT_CONFIG", str(other))
    assert cli("config", "set", "api-key", "x" * 20).exit_code == 0
    assert json.loads(other.read_text()) == {"api_key": "x" * 20}
    assert cli("config", "path").stdout.strip() == str(other)


def test_profile_updates(cli: Run, live_server: LiveServer) -> None:
    acct = live_server.register()
    new_name = live_server.unique("renamed")
    profile = json_out(cli("profile", "set-username", new_name, "--json", key=acct.api_key))
    assert profile["username"] == new_name

    logos = json_out(cli("profile", "logos", "--json"))
    assert (
        json_out(cli("profile", "set-logo", logos[0], "--json", key=acct.api_key))["logo"]
        == logos[0]
    )
    assert cli("profile", "set-logo", "--clear", key=acct.api_key).stdout.strip() == (
        "logo is now (none)"
    )
    bad = cli("profile", "set-logo", "nope.png", key=acct.api_key)
    assert bad.exit_code == 1 and bad.stderr.startswith("error: invalid input:")

    hook = json_out(
        # .invalid never resolves (RFC 2606); a loopback URL is refused by the server.
        cli("profile", "set-webhook", "http://hooks.invalid/hook", "--json", key=acct.api_key)
    )
    assert hook["webhook_url"] == "http://hooks.invalid/hook"
    assert json_out(cli("whoami", "--json", key=acct.api_key))["webhook_url"] == (
        "http://hooks.invalid/hook"
    )
    assert cli("profile", "set-webhook", "--clear", key=acct.api_key).exit_code == 0

    both = cli("profile", "set-logo", logos[0], "--clear", key=acct.api_key)
    assert both.exit_code == 2 and "one of them" in both.stderr


def test_rotate_key_saves_the_new_key_when_the_old_came_from_the_config(
    cli: Run, live_server: LiveServer, config_file: Path
) -> None:
    acct = live_server.register()
    assert cli("config", "set", "api-key", acct.api_key).exit_code == 0
    result = json_out(cli("rotate-key", "--json"))
    assert result["api_key"] != acct.api_key and result["saved_to"] == str(config_file)
    assert json.loads(config_file.read_text())["api_key"] == result["api_key"]
    assert json_out(cli("whoami", "--json"))["username"] == acct.username

    old = cli("whoami", key=acct.api_key)  # the old key stopped working
    assert old.exit_code == 1 and old.stderr.startswith("error: authentication failed:")


def test_rotate_key_from_the_environment_is_not_saved(
    cli: Run, live_server: LiveServer, config_file: Path
) -> None:
    acct = live_server.register()
    result = cli("rotate-key", key=acct.api_key)
    assert result.exit_code == 0
    assert "no longer works" in result.stderr
    assert not config_file.exists()


# --- messaging ------------------------------------------------------------------------------


def test_send_messages_dms_unread_read(cli: Run, live_server: LiveServer) -> None:
    alice, bob, carol = (live_server.register() for _ in range(3))
    # A new account starts with every earlier room message of the shared server unread, and
    # the unread list shows the oldest 50: start Bob from nothing unread.
    assert cli("read", "--all", key=bob.api_key).exit_code == 0
    room = json_out(cli("send", "hello room", "--json", key=alice.api_key))
    assert room["message_type"] == "room" and room["content"] == "hello room"
    dm = json_out(cli("send", "--to", bob.username, "psst", "--json", key=alice.api_key))
    assert dm["to_username"] == bob.username
    json_out(cli("send", "--to", alice.username, "from carol", "--json", key=carol.api_key))
    piped = cli("send", "-", key=alice.api_key, input="from a pipe\n")
    assert piped.exit_code == 0 and piped.stdout.startswith("sent to the room: ")

    page = json_out(cli("messages", "--limit", "2", "--json", key=bob.api_key))
    assert [m["content"] for m in page["messages"]] == ["from a pipe", "hello room"]
    assert page["pagination"]["limit"] == 2
    plain = cli("messages", "--limit", "2", key=bob.api_key).stdout.splitlines()
    assert plain[0] == "time\tfrom\tto\tmessage\tid"  # not a terminal: tab-separated
    assert plain[1].split("\t")[3] == "hello room"  # oldest first for reading
    assert plain[2].split("\t")[3] == "from a pipe"

    since = cli("messages", "--since", "2999-01-01T00:00:00Z", "--json", key=bob.api_key)
    assert json_out(since)["messages"] == []
    bad_since = cli("messages", "--since", "yesterday", key=bob.api_key)
    assert bad_since.exit_code == 1 and bad_since.stderr.startswith("error: invalid input")

    # alice sees both conversations; --with keeps one.
    assert len(json_out(cli("dms", "--json", key=alice.api_key))["messages"]) == 2
    with_bob = json_out(cli("dms", "--with", bob.username, "--json", key=alice.api_key))
    assert [m["content"] for m in with_bob["messages"]] == ["psst"]
    assert with_bob["pagination"] == {"total": 1, "offset": 0, "limit": 50, "has_more": False}
    unknown = cli("dms", "--with", "nobody-here", key=alice.api_key)
    assert unknown.exit_code == 1 and unknown.stderr.startswith("error: not found:")

    unread = json_out(cli("unread", "--json", key=bob.api_key))
    assert unread["counts"]["unread_direct_messages"] == 1
    assert [m["content"] for m in unread["direct"]] == ["psst"]
    assert {"hello room", "from a pipe"} <= {m["content"] for m in unread["room"]}
    counts = json_out(cli("unread", "--counts", "--json", key=bob.api_key))
    assert set(counts) == {"counts"}

    one = json_out(cli("read", dm["id"], "--json", key=bob.api_key))
    assert one == {"scope": "message", "message_id": dm["id"], "marked_as_read": None}
    room_read = json_out(cli("read", "--room", "--json", key=bob.api_key))
    assert room_read["scope"] == "room" and room_read["marked_as_read"] >= 2
    assert (
        json_out(cli("unread", "--counts", "--json", key=bob.api_key))["counts"]["total_unread"]
        == 0
    )

    from_carol = json_out(cli("read", "--from", carol.username, "--json", key=alice.api_key))
    assert from_carol == {"scope": "direct", "from_username": carol.username, "marked_as_read": 1}
    everything = json_out(cli("read", "--all", "--json", key=alice.api_key))
    assert everything["scope"] == "all" and isinstance(everything["marked_as_read"], int)
    assert (
        json_out(cli("unread", "--counts", "--json", key=alice.api_key))["counts"]["total_unread"]
        == 0
    )

    nobody = cli("read", "--from", "nobody-here", key=alice.api_key)
    assert nobody.exit_code == 1 and nobody.stderr.startswith("error: not found:")
    missing = cli("read", "00000000-0000-0000-0000-000000000000", key=alice.api_key)
    assert missing.exit_code == 1 and missing.stderr.startswith("error: not found:")


def test_read_takes_exactly_one_target(cli: Run) -> None:
    for args in ([], ["--all", "--room"], ["some-id", "--from", "bob"]):
        result = cli("read", *args, key="k" * 20)
        assert result.exit_code == 2, args
        assert result.stderr == "error: give exactly one of ID, --all, --room, --from USER\n"


def test_users_and_online(cli: Run, live_server: LiveServer) -> None:
    acct = live_server.register()
    users = json_out(cli("users", "--json", key=acct.api_key))
    assert acct.username in {u["username"] for u in users}
    assert cli("users", key=acct.api_key).stdout.startswith("username\trole\t")
    online = json_out(cli("online", "--json", key=acct.api_key))
    assert isinstance(online, list)  # REST callers are not online; the shape is the point


def test_export_writes_visible_history_oldest_first_once(
    cli: Run, live_server: LiveServer, tmp_path: Path
) -> None:
    alice, bob, eve = (live_server.register() for _ in range(3))
    with _client(live_server, alice.api_key) as a, _client(live_server, bob.api_key) as b:
        a.send_message("export one")
        b.send_message("export two", to_username=alice.username)
        a.send_message("export three", to_username=bob.username)
    with _client(live_server, eve.api_key) as e:
        e.send_message("not for alice", to_username=bob.username)

    target = tmp_path / "out.jsonl"
    summary = json_out(cli("export", str(target), "--json", key=alice.api_key))
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert summary == {
        "path": str(target),
        "messages": len(lines),
        "room": summary["room"],
        "direct": 2,
    }
    ids = [m["id"] for m in lines]
    assert len(ids) == len(set(ids))
    mine = [m["content"] for m in lines if m["content"].startswith("export ")]
    assert mine == ["export one", "export two", "export three"]
    assert "not for alice" not in {m["content"] for m in lines}
    stamps = [m["timestamp"] for m in lines]
    assert stamps == sorted(stamps)

    to_stdout = cli("export", "-", key=alice.api_key)
    assert [json.loads(x)["id"] for x in to_stdout.stdout.splitlines()] == ids

    assert cli("export", str(tmp_path), key=alice.api_key).exit_code == 1  # a directory


# --- errors ---------------------------------------------------------------------------------


def test_bad_key_is_one_line_and_exit_1(cli: Run) -> None:
    result = cli("whoami", key="not-a-real-key-0000000000")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: authentication failed: ")
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_missing_key_says_how_to_get_one(cli: Run) -> None:
    result = cli("messages")
    assert result.exit_code == 1
    assert "no API key" in result.stderr and "config set api-key" in result.stderr


def test_unreachable_server_is_one_line_and_exit_1(cli: Run) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["whoami"], ["listen", "--max-events", "1"], ["register", "x", "--no-save"]):
        result = cli("--base-url", url, *args, key="k" * 20)
        assert result.exit_code == 1, args
        assert result.stderr.startswith(f"error: cannot reach the server at {url}"), args
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_unknown_recipient_and_bad_arguments(cli: Run, live_server: LiveServer) -> None:
    acct = live_server.register()
    result = cli("send", "--to", "no-such-user", "hi", key=acct.api_key)
    assert result.exit_code == 1 and result.stderr.startswith("error: not found:")
    assert cli("messages", "--limit", "0", key=acct.api_key).exit_code == 2
    assert cli("no-such-command").exit_code == 2
    empty = cli("send", "   ", key=acct.api_key)
    assert empty.exit_code == 2 and empty.stderr == "error: the message is empty\n"
    bad_url = cli("--base-url", "gopher://x", "whoami", key=acct.api_key)
    assert bad_url.exit_code == 2 and bad_url.stderr.startswith("error: invalid base URL")


# --- help -----------------------------------------------------------------------------------

COMMANDS = [
    ["register"],
    ["whoami"],
    ["rotate-key"],
    ["profile", "set-username"],
    ["profile", "set-logo"],
    ["profile", "set-webhook"],
    ["profile", "logos"],
    ["config", "set"],
    ["config", "unset"],
    ["config", "show"],
    ["config", "path"],
    ["send"],
    ["messages"],
    ["dms"],
    ["unread"],
    ["read"],
    ["export"],
    ["users"],
    ["online"],
    ["listen"],
    ["chat"],
    ["serve"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_examples(cli: Run, command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.stdout and "Examples" in result.stdout
    assert f"token-bowl {command[0]}" in result.stdout


def test_top_level_help_lists_every_command(cli: Run) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in {c[0] for c in COMMANDS}:
        assert command in result.stdout
    assert cli("--version").stdout.startswith("token-bowl ")


def test_the_cli_does_not_import_the_server_until_serve_runs() -> None:
    import subprocess

    code = (
        "import json, sys; import token_bowl_chat.cli.app; print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    loaded = {name.split(".")[0] for name in json.loads(out)}
    assert loaded.isdisjoint({"token_bowl_chat_server", "uvicorn", "fastapi", "sqlalchemy"})
