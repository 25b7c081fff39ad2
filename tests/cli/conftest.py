"""Fixtures for the CLI tests: an isolated config directory, a CliRunner bound to the live
server, and child processes (pseudo-terminal or pipes) with bounded waits."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tests.conftest import Account, LiveServer
from token_bowl_chat.cli.app import app

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\r")
_CLI_ENV = (
    "TOKEN_BOWL_CHAT_API_KEY",
    "TOKEN_BOWL_CHAT_BASE_URL",
    "TOKEN_BOWL_CHAT_CONFIG",
    "XDG_CONFIG_HOME",
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME / XDG_CONFIG_HOME; no CLI variable from the outer environment."""
    for name in _CLI_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    return home


@pytest.fixture
def config_file(home: Path) -> Path:
    return home / ".config" / "token-bowl" / "config.json"


Run = Callable[..., Result]


@pytest.fixture
def cli(home: Path, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``cli(*args, key=None, input=None)``: run ``token-bowl`` in-process against the live
    server (through ``TOKEN_BOWL_CHAT_BASE_URL``); ``key`` sets ``TOKEN_BOWL_CHAT_API_KEY``."""
    monkeypatch.setenv("TOKEN_BOWL_CHAT_BASE_URL", live_server.http_url)
    runner = CliRunner()

    def run(*args: str, key: str | None = None, input: str | None = None) -> Result:
        env = {"TOKEN_BOWL_CHAT_API_KEY": key} if key else {}
        return runner.invoke(app, list(args), env=env, input=input)

    return run


def json_out(result: Result) -> Any:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return json.loads(result.stdout)


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


# ``python -m token_bowl_chat.cli``, with Ctrl-C as a terminal's shell hands it over. A test
# process started in the background by a non-interactive shell (``make test &``) ignores
# SIGINT, children inherit that across exec, and Python then leaves SIGINT ignored: the
# Ctrl-C tests would wait on a CLI that never sees the signal.
_RUN_CLI = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('token_bowl_chat.cli', run_name='__main__', alter_sys=True)"
)


class Child:
    """``python -m token_bowl_chat.cli ARGS`` on a pseudo-terminal (``tty=True``) or pipes.

    Every wait has a deadline; :meth:`close` kills the child by its pid if it still runs.
    """

    def __init__(self, args: list[str], env: dict[str, str], *, tty: bool) -> None:
        full_env = {**os.environ, **env, "COLUMNS": "200", "LINES": "50", "TERM": "xterm"}
        full_env.pop("NO_COLOR", None)
        command = [sys.executable, "-c", _RUN_CLI, *args]
        self.tty = tty
        self.output = ""
        self._seen = 0
        if tty:
            self._master, slave = pty.openpty()
            self.proc = subprocess.Popen(
                command, stdin=slave, stdout=slave, stderr=slave, env=full_env
            )
            os.close(slave)
            self._out_fd = self._master
        else:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=full_env,
            )
            assert self.proc.stdout is not None
            self._out_fd = self.proc.stdout.fileno()

    @property
    def fd(self) -> int:
        """The pseudo-terminal's master side (``tty=True`` only)."""
        assert self.tty
        return self._master

    def write(self, text: str) -> None:
        data = text.encode()
        if self.tty:
            os.write(self._master, data)
        else:
            assert self.proc.stdin is not None
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def close_stdin(self) -> None:
        if not self.tty and self.proc.stdin is not None:
            self.proc.stdin.close()

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self._out_fd], [], [], max(timeout, 0))
        if not ready:
            return True
        try:
            data = os.read(self._out_fd, 65536)
        except OSError:  # EIO: the pty's other side is closed
            data = b""
        if not data:
            return False
        self.output += strip_ansi(data.decode(errors="replace"))
        return True

    def expect(self, pattern: str, timeout: float = 15.0) -> str:
        """Wait until ``pattern`` (a regex) appears in output not matched before; returns
        the match. Fails with the output so far at the deadline or at end of output."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            found = regex.search(self.output, self._seen)
            if found:
                self._seen = found.end()
                return found.group(0)
            remaining = deadline - time.monotonic()
            ended = remaining <= 0 or not self._read(min(remaining, 0.2))
            if ended and not regex.search(self.output, self._seen):
                raise AssertionError(f"{pattern!r} not seen; output:\n{self.output}")

    def expect_json(self, match: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> Any:
        """The first JSON line (not matched before) for which ``match`` is true."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.output[self._seen :].split("\n")
            consumed = self._seen
            for line in lines[:-1]:  # the last piece may be an incomplete line
                consumed += len(line) + 1
                with contextlib.suppress(ValueError):
                    obj = json.loads(line)
                    if isinstance(obj, dict) and match(obj):
                        self._seen = consumed
                        return obj
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(min(remaining, 0.2)):
                raise AssertionError(f"no matching JSON line; output:\n{self.output}")

    def wait(self, timeout: float = 15.0) -> int:
        """The exit code, reading output meanwhile so the child never blocks on a full pipe."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"child still running; output:\n{self.output}")
            self._read(0.1)
        while self._read(0):
            if self.proc.poll() is not None and not select.select([self._out_fd], [], [], 0)[0]:
                break
        return self.proc.returncode

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        if self.tty:
            os.close(self._master)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def spawn(home: Path, live_server: LiveServer) -> Iterator[Callable[..., Child]]:
    """``spawn(account, *args, tty=False)``: a CLI child logged in as ``account``."""
    children: list[Child] = []

    def start(account: Account | None, *args: str, tty: bool = False, **env: str) -> Child:
        child_env = {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "TOKEN_BOWL_CHAT_BASE_URL": live_server.http_url,
            **env,
        }
        if account is not None:
            child_env["TOKEN_BOWL_CHAT_API_KEY"] = account.api_key
        child = Child(list(args), child_env, tty=tty)
        children.append(child)
        return child

    try:
        yield start
    finally:
        for child in children:
            child.close()
