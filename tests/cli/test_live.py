"""``listen``, ``chat`` and ``serve`` as real child processes, on a pseudo-terminal or pipes.

Every read has a deadline (``Child.expect``); children still running at the end are killed
by pid (the ``spawn`` fixture).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.cli.conftest import Child
from tests.conftest import Account, LiveServer
from tests.serverproc import free_port
from token_bowl_chat import TokenBowlClient, TokenBowlWebSocket
from token_bowl_chat.cli.app import app

Spawn = Callable[..., Child]


def _client(live_server: LiveServer, account: Account) -> TokenBowlClient:
    return TokenBowlClient(api_key=account.api_key, base_url=live_server.http_url)


def _type_once(live_server: LiveServer, account: Account, to: str | None = None) -> None:
    """``account`` announces typing over its own WebSocket, then leaves."""

    async def run() -> None:
        async with TokenBowlWebSocket(
            api_key=account.api_key, base_url=live_server.ws_url, reconnect=False
        ) as ws:
            await ws.send_typing_indicator(to)
            await asyncio.sleep(0.3)

    asyncio.run(run())


def _is(kind: str, **fields: object) -> Callable[[dict[str, object]], bool]:
    def match(obj: dict[str, object]) -> bool:
        return obj.get("event") == kind and all(obj.get(k) == v for k, v in fields.items())

    return match


def _message(content: str) -> Callable[[dict[str, object]], bool]:
    def match(obj: dict[str, object]) -> bool:
        message = obj.get("message")
        return (
            obj.get("event") == "message"
            and isinstance(message, dict)
            and message.get("content") == content
        )

    return match


# --- listen ---------------------------------------------------------------------------------


def test_listen_on_a_terminal_shows_messages_typing_and_receipts(
    spawn: Spawn, live_server: LiveServer
) -> None:
    alice, bob = live_server.register(), live_server.register()
    child = spawn(alice, "listen", tty=True)
    child.expect(rf"listening as {alice.username}")

    with _client(live_server, bob) as b:
        b.send_message("hi there room")
        child.expect(rf"{bob.username}: hi there room")
        b.send_message("just you", to_username=alice.username)
        child.expect(rf"{bob.username} → you: just you")

    _type_once(live_server, bob)
    child.expect(rf"{bob.username} is typing…")

    with _client(live_server, alice) as a, _client(live_server, bob) as b:
        mine = a.send_message("please read")
        b.mark_message_read(mine.id)
    child.expect(rf"✓ {bob.username} read message {mine.id}")

    child.interrupt()  # Ctrl-C
    assert child.wait() == 130
    assert "Traceback" not in child.output


def test_listen_json_lines_and_max_events(spawn: Spawn, live_server: LiveServer) -> None:
    alice, bob = live_server.register(), live_server.register()
    child = spawn(alice, "listen", "--json", "--max-events", "3")
    child.expect_json(_is("connected", resumed=False))
    _type_once(live_server, bob, to=alice.username)
    child.expect_json(_is("typing", username=bob.username, to_username=alice.username))
    child.expect_json(_is("typing_stopped", username=bob.username))
    with _client(live_server, bob) as b:
        b.send_message("json line")
    event = child.expect_json(_message("json line"))
    assert event["message"]["from_username"] == bob.username
    assert child.wait() == 0  # the third event after connecting ends it
    for line in child.output.strip().splitlines():
        json.loads(line)  # nothing but JSON lines on stdout


def test_listen_duration_ends_quietly(spawn: Spawn, live_server: LiveServer) -> None:
    child = spawn(live_server.register(), "listen", "--json", "--duration", "1")
    child.expect_json(_is("connected"))
    assert child.wait(timeout=10) == 0


def test_listen_reconnects_by_itself_without_losing_messages(
    make_server: Callable[..., LiveServer], home: Path
) -> None:
    server = make_server()
    alice, bob = server.register(), server.register()
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "TOKEN_BOWL_CHAT_BASE_URL": server.http_url,
        "TOKEN_BOWL_CHAT_API_KEY": alice.api_key,
    }
    child = Child(["listen", "--json"], env, tty=False)
    try:
        child.expect_json(_is("connected", resumed=False))
        server.proc.stop()
        child.expect_json(_is("disconnected", will_reconnect=True))
        server.proc.start()  # same port, same database
        child.expect_json(_is("connected", resumed=True), timeout=30)
        with TokenBowlClient(api_key=bob.api_key, base_url=server.http_url) as b:
            b.send_message("after the restart")
        child.expect_json(_message("after the restart"))
    finally:
        child.close()


def test_listen_with_a_bad_key_fails_before_streaming(spawn: Spawn) -> None:
    child = spawn(None, "listen", TOKEN_BOWL_CHAT_API_KEY="wrong-key-000000000000")
    assert child.wait() == 1
    assert child.output.startswith("error: authentication failed:")


# --- chat -----------------------------------------------------------------------------------


def test_chat_on_a_terminal_sends_typing_while_composing(
    spawn: Spawn, live_server: LiveServer
) -> None:
    alice, bob = live_server.register(), live_server.register()
    watcher = spawn(bob, "listen", "--json")
    watcher.expect_json(_is("connected"))
    chat = spawn(alice, "chat", tty=True)
    chat.expect(rf"chatting as {alice.username}")

    chat.write("hel")  # no Enter yet: bob must already see alice typing
    watcher.expect_json(_is("typing", username=alice.username, to_username=None))
    time.sleep(0.2)
    chat.write("lo room\r")
    watcher.expect_json(_message("hello room"))
    chat.expect(rf"{alice.username}: hello room")

    chat.write(f"@{bob.username} ")  # the recipient is known once the space is typed
    watcher.expect_json(_is("typing", username=alice.username, to_username=bob.username))
    chat.write("psst\r")
    dm = watcher.expect_json(_message("psst"))
    assert dm["message"]["to_username"] == bob.username

    with _client(live_server, bob) as b:
        b.send_message("hi alice", to_username=alice.username)
    chat.expect(rf"{bob.username} → you: hi alice")

    chat.write("@nobody-at-all hey\r")
    chat.expect(r"error: not found: ")

    chat.write("/quit\r")
    assert chat.wait() == 0
    assert "Traceback" not in chat.output


def test_chat_from_a_pipe_announces_typing_before_each_send(
    spawn: Spawn, live_server: LiveServer
) -> None:
    alice, bob = live_server.register(), live_server.register()
    watcher = spawn(bob, "listen", "--json")
    watcher.expect_json(_is("connected"))
    chat = spawn(alice, "chat")
    chat.expect(rf"chatting as {alice.username}")
    chat.write(f"piped hello\n@{bob.username} piped dm\n/quit\n")

    watcher.expect_json(_is("typing", username=alice.username, to_username=None))
    watcher.expect_json(_message("piped hello"))
    watcher.expect_json(_is("typing", username=alice.username, to_username=bob.username))
    watcher.expect_json(_message("piped dm"))
    assert chat.wait() == 0
    assert f"{alice.username}: piped hello" in chat.output


def test_chat_ends_at_end_of_input(spawn: Spawn, live_server: LiveServer) -> None:
    chat = spawn(live_server.register(), "chat")
    chat.expect("chatting as")
    chat.close_stdin()
    assert chat.wait() == 0


# --- serve ----------------------------------------------------------------------------------


def test_serve_starts_the_server_with_options_and_env(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TOKEN_BOWL_LOG_LEVEL": "warning",  # read from the environment
    }
    database = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "token_bowl_chat.cli", "serve"),
            *("--port", str(port), "--database-url", database, "--send-rate", "50"),
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, "serve exited early"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.1)
        assert (tmp_path / "cli.db").exists()
        reg = httpx.post(f"http://127.0.0.1:{port}/register", json={"username": "served"})
        assert reg.status_code == 201
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert proc.wait(15) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_serve_reports_a_bad_setting_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # serve() exports settings to os.environ (the process becomes the server); let
    # monkeypatch undo that here.
    monkeypatch.setenv("TOKEN_BOWL_HEARTBEAT_INTERVAL", "30")
    result = CliRunner().invoke(app, ["serve", "--heartbeat-interval", "0"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: invalid server setting: heartbeat_interval")


def test_serve_without_the_server_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "token_bowl_chat_server.__main__", None)
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the server is not installed; run: pip install")
    assert result.stderr.count("\n") == 1


def test_chat_ctrl_c_restores_the_terminal(spawn: Spawn, live_server: LiveServer) -> None:
    import termios

    chat = spawn(live_server.register(), "chat", tty=True)
    chat.expect("chatting as")
    chat.write("half a li")
    chat.expect("half a li")  # echoed by the editor: cbreak mode is on
    lflag = termios.tcgetattr(chat.fd)[3]
    assert not lflag & termios.ICANON and not lflag & termios.ECHO
    chat.interrupt()
    assert chat.wait() == 130
    lflag = termios.tcgetattr(chat.fd)[3]
    assert lflag & termios.ICANON and lflag & termios.ECHO
