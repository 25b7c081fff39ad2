"""The CLI's pure parts: config resolution, rendering modes, error lines, the line editor and
the chat's typing rules. No server."""

from __future__ import annotations

import asyncio
import io
import json
import os
import stat
from pathlib import Path

import httpx
import pytest
from rich.console import Console
from rich.text import Text

from token_bowl_chat import (
    AuthenticationError,
    MessageResponse,
    NetworkError,
    RateLimitError,
    ValidationError,
)
from token_bowl_chat._base import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL
from token_bowl_chat.cli import config as cfg
from token_bowl_chat.cli.errors import describe
from token_bowl_chat.cli.live import (
    TYPING_RENEW_SECONDS,
    _TypingNotifier,
    parse_line,
    typing_target,
)
from token_bowl_chat.cli.render import Renderer, event_json, event_text
from token_bowl_chat.cli.terminal import StreamLines, TerminalEditor
from token_bowl_chat.events import (
    DisconnectedEvent,
    MessageEvent,
    ReadReceiptEvent,
    TypingEvent,
)

MESSAGE = MessageResponse.model_validate(
    {
        "id": "m1",
        "from_user_id": "u1",
        "from_username": "bob",
        "to_user_id": "u2",
        "to_username": "alice",
        "content": "[bold]not markup[/bold]\tand a tab",
        "message_type": "direct",
        "timestamp": "2025-01-31T12:00:00+00:00",
        "seq": 7,
    }
)


# --- config ---------------------------------------------------------------------------------


def test_the_cli_uses_the_sdk_names_and_default() -> None:
    assert (cfg.API_KEY_ENV, cfg.BASE_URL_ENV, cfg.DEFAULT_BASE_URL) == (
        API_KEY_ENV,
        BASE_URL_ENV,
        DEFAULT_BASE_URL,
    )


def test_config_path_order(tmp_path: Path) -> None:
    assert cfg.config_path({"HOME": "/h"}) == Path("/h/.config/token-bowl/config.json")
    assert cfg.config_path({"HOME": "/h", "XDG_CONFIG_HOME": "/x"}) == Path(
        "/x/token-bowl/config.json"
    )
    assert cfg.config_path({"XDG_CONFIG_HOME": "/x", cfg.CONFIG_ENV: "/c.json"}) == Path("/c.json")


def test_resolve_prefers_flag_then_env_then_file_then_default(tmp_path: Path) -> None:
    stored = cfg.ConfigFile(api_key="file-key", base_url="http://file")
    path = tmp_path / "c.json"
    env = {API_KEY_ENV: "env-key", BASE_URL_ENV: "http://env"}
    flag = cfg.resolve(
        api_key="flag-key", base_url="http://flag", config=stored, path=path, environ=env
    )
    assert (flag.api_key, flag.api_key_source, flag.base_url_source) == ("flag-key", "flag", "flag")
    from_env = cfg.resolve(api_key=None, base_url=None, config=stored, path=path, environ=env)
    assert (from_env.api_key, from_env.base_url) == ("env-key", "http://env")
    from_file = cfg.resolve(api_key="", base_url=None, config=stored, path=path, environ={})
    assert (from_file.api_key_source, from_file.base_url_source) == ("config", "config")
    nothing = cfg.resolve(
        api_key=None, base_url=None, config=cfg.ConfigFile(), path=path, environ={API_KEY_ENV: ""}
    )
    assert (nothing.api_key, nothing.api_key_source) == (None, "unset")
    assert (nothing.base_url, nothing.base_url_source) == (DEFAULT_BASE_URL, "default")


def test_save_is_0600_atomic_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "config.json"
    cfg.save(path, cfg.ConfigFile(api_key="k"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert cfg.load(path) == cfg.ConfigFile(api_key="k")
    assert json.loads(path.read_text()) == {"api_key": "k"}  # unset values are not written
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temp file left
    assert not cfg.loose_permissions(path)
    path.chmod(0o640)
    assert cfg.loose_permissions(path)


@pytest.mark.parametrize("text", ["[1]", "{", '{"api_key": 5}'])
def test_load_rejects_broken_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(cfg.ConfigError, match=str(path)):
        cfg.load(path)


def test_load_missing_file_is_empty(tmp_path: Path) -> None:
    assert cfg.load(tmp_path / "none.json") == cfg.ConfigFile()


def test_mask_never_shows_a_whole_key() -> None:
    assert cfg.mask("abcdefghijklmnopqrstuvwxyz") == "abcd…wxyz"
    assert cfg.mask("short") == "*****"
    assert cfg.mask(None) == "(not set)"


# --- errors ---------------------------------------------------------------------------------


def _response(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def test_error_lines() -> None:
    bad_key = AuthenticationError("Invalid API key", _response(401, {"detail": "Invalid API key"}))
    assert describe(bad_key) == ("authentication failed: Invalid API key (check the API key)", 1)
    unreachable = NetworkError("GET http://h/x: could not reach the server (refused)")
    assert describe(unreachable, "http://h") == ("cannot reach the server at http://h: refused", 1)
    fields = ValidationError(
        "bad",
        _response(422, {"detail": [{"loc": ["body", "username"], "msg": "too long"}]}),
    )
    assert describe(fields) == ("invalid input: username: too long", 1)
    slow = RateLimitError(
        "slow down", _response(429, {"detail": "slow down"}, {"Retry-After": "3"})
    )
    assert describe(slow) == ("rate limited: slow down (retry in 3 s)", 1)
    assert describe(RuntimeError("bug")) is None  # bugs keep their traceback


# --- rendering ------------------------------------------------------------------------------


def _renderer(mode: str) -> tuple[Renderer, io.StringIO]:
    out = io.StringIO()
    renderer = Renderer(mode, out, io.StringIO())  # type: ignore[arg-type]
    if mode == "rich":  # as on a real terminal
        renderer.console = Console(
            file=out, force_terminal=True, color_system="standard", soft_wrap=True
        )
    return renderer, out


def test_plain_mode_is_tab_separated_and_escapes_user_text() -> None:
    renderer, out = _renderer("plain")
    renderer.messages([MESSAGE])
    header, row = out.getvalue().splitlines()
    assert header == "time\tfrom\tto\tmessage\tid"
    cells = row.split("\t")
    assert cells[1:] == ["bob", "alice", "[bold]not markup[/bold] and a tab", "m1"]
    assert "\x1b" not in out.getvalue()


def test_rich_mode_colours_but_never_parses_user_markup() -> None:
    renderer, out = _renderer("rich")
    renderer.messages([MESSAGE], title="DMs")
    text = out.getvalue()
    assert "\x1b[" in text  # colour on a terminal
    assert "[bold]not markup[/bold]" in text


def test_for_streams_picks_the_mode() -> None:
    assert Renderer.for_streams(True, io.StringIO(), io.StringIO()).mode == "json"
    assert Renderer.for_streams(False, io.StringIO(), io.StringIO()).mode == "plain"


def test_event_shapes() -> None:
    assert event_json(MessageEvent(MESSAGE))["message"]["seq"] == 7
    assert event_json(TypingEvent("bob", None)) == {
        "event": "typing",
        "username": "bob",
        "to_username": None,
    }
    assert event_json(DisconnectedEvent(1006, "", True))["will_reconnect"] is True
    line = event_text(MessageEvent(MESSAGE), me="alice")
    assert isinstance(line, Text) and line.plain.endswith("bob → you: " + MESSAGE.content)
    receipt = event_text(ReadReceiptEvent("m1", "carol"))
    assert receipt is not None and receipt.plain == "✓ carol read message m1"


# --- chat input -----------------------------------------------------------------------------


def test_parse_line_and_typing_target() -> None:
    assert parse_line("@bob  hi there ") == ("bob", "hi there")
    assert parse_line("@bob") == ("bob", "")
    assert parse_line("hello @bob") == (None, "hello @bob")
    assert typing_target("hel") == (True, None)
    assert typing_target("@bo") == (False, None)
    assert typing_target("@bob h") == (True, "bob")


def test_typing_is_sent_once_per_target_and_renewal_period() -> None:
    sent: list[str | None] = []
    now = [0.0]

    class FakeWs:
        async def send_typing_indicator(self, to: str | None = None) -> None:
            sent.append(to)

    async def run() -> None:
        notifier = _TypingNotifier(FakeWs(), clock=lambda: now[0])  # type: ignore[arg-type]
        for buffer in ["h", "he", "hel"]:
            notifier.on_edit(buffer)
        now[0] += TYPING_RENEW_SECONDS
        notifier.on_edit("hell")  # renewal due
        notifier.on_edit("")  # line cleared: the next keystroke starts over
        for buffer in ["@", "@b", "@bob", "@bob ", "@bob x"]:
            notifier.on_edit(buffer)
        await asyncio.sleep(0)

    asyncio.run(run())
    assert sent == [None, None, "bob"]


def test_terminal_editor_edits_and_submits_lines() -> None:
    async def run() -> list[str]:
        out = io.StringIO()
        editor = TerminalEditor(-1, out)
        edits: list[str] = []
        editor.on_edit = edits.append
        for chunk in ["h", "é", "llo", "\x7f\x7f", "p\x1b[D!", "\r"]:  # an arrow key too
            editor._feed(chunk.encode())
        assert edits == ["h", "hé", "héllo", "hél", "hélp!", ""]
        editor._feed(b"second\x15third\n")  # Ctrl-U clears; a pasted line in one chunk
        editor._feed(b"\x04")  # Ctrl-D on an empty line ends
        assert "hélp!" in out.getvalue()
        return [line async for line in editor.lines()]

    assert asyncio.run(run()) == ["hélp!", "third"]


def test_stream_lines_from_a_pipe() -> None:
    async def run() -> list[str]:
        read_fd, write_fd = os.pipe()
        os.write(write_fd, b"one\r\ntwo\nthree, no newline")
        os.close(write_fd)
        try:
            async with StreamLines(read_fd) as source:
                return [line async for line in source.lines()]
        finally:
            os.close(read_fd)

    assert asyncio.run(run()) == ["one", "two", "three, no newline"]
