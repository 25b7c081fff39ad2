"""The CLI's configuration file and how the API key and base URL are chosen.

The file is JSON, ``{"api_key": ..., "base_url": ...}``, at

* ``$TOKEN_BOWL_CHAT_CONFIG`` when set (one file per account, say);
* else ``$XDG_CONFIG_HOME/token-bowl/config.json``;
* else ``~/.config/token-bowl/config.json`` (``%APPDATA%\\token-bowl\\config.json`` on Windows).

It holds a secret, so it is written with mode 0600 in a 0700 directory, atomically (a temporary
file renamed over the old one), and a file others can read is reported by
:func:`loose_permissions`. Each setting is taken from the first source that has it:
command-line flag, then environment variable (the SDK's ``TOKEN_BOWL_CHAT_API_KEY`` /
``TOKEN_BOWL_CHAT_BASE_URL``), then this file, then the default. No I/O happens at import.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "CONFIG_ENV",
    "DEFAULT_BASE_URL",
    "ConfigError",
    "ConfigFile",
    "Resolved",
    "Source",
    "config_path",
    "load",
    "loose_permissions",
    "mask",
    "resolve",
    "save",
]

# The SDK's names and default (token_bowl_chat._base): the CLI must agree with the library.
API_KEY_ENV = "TOKEN_BOWL_CHAT_API_KEY"
BASE_URL_ENV = "TOKEN_BOWL_CHAT_BASE_URL"
DEFAULT_BASE_URL = "http://localhost:8000"
CONFIG_ENV = "TOKEN_BOWL_CHAT_CONFIG"

Source = Literal["flag", "env", "config", "default", "unset"]

_KEYS = ("api_key", "base_url")


class ConfigError(Exception):
    """The configuration file exists but cannot be read or written; the message says which
    file and why, fit to show the user as is."""


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """What the file stores; ``None`` means "not set"."""

    api_key: str | None = None
    base_url: str | None = None

    def with_value(self, key: str, value: str | None) -> ConfigFile:
        """A copy with ``key`` (``api_key`` or ``base_url``) set, or removed when ``None``."""
        if key not in _KEYS:
            raise KeyError(key)
        return replace(self, **{key: value})


@dataclass(frozen=True, slots=True)
class Resolved:
    """The settings a command runs with, and where each came from (for ``config show``)."""

    api_key: str | None
    api_key_source: Source
    base_url: str
    base_url_source: Source
    path: Path


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the configuration file lives (it need not exist)."""
    env = os.environ if environ is None else environ
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    if env.get("XDG_CONFIG_HOME"):
        base = Path(env["XDG_CONFIG_HOME"]).expanduser()
    elif os.name == "nt" and env.get("APPDATA"):
        base = Path(env["APPDATA"])
    else:
        base = Path(env.get("HOME") or Path.home()).expanduser() / ".config"
    return base / "token-bowl" / "config.json"


def load(path: Path) -> ConfigFile:
    """The stored settings; an empty :class:`ConfigFile` when the file does not exist.

    Raises :class:`ConfigError` when it exists but is not a JSON object of strings.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ConfigFile()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigError(f"{path} is not valid JSON; fix or delete it") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object; fix or delete it")
    values: dict[str, str | None] = {}
    for key in _KEYS:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{path}: {key} must be a string")
        values[key] = value or None
    return ConfigFile(**values)


def save(path: Path, config: ConfigFile) -> None:
    """Write ``config`` to ``path`` with mode 0600, replacing the file atomically.

    The directory is created with mode 0700 when missing. Raises :class:`ConfigError`.
    """
    data = {key: getattr(config, key) for key in _KEYS if getattr(config, key) is not None}
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_EXCL + 0600 from the start: the key is never readable by others, not even briefly.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def loose_permissions(path: Path) -> bool:
    """True when the file exists and its group or others may read or write it (POSIX)."""
    if os.name == "nt":
        return False
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRWXG | stat.S_IRWXO))


def mask(api_key: str | None) -> str:
    """The key as safe to print: its first and last four characters only."""
    if not api_key:
        return "(not set)"
    if len(api_key) <= 12:
        return "*" * len(api_key)
    return f"{api_key[:4]}…{api_key[-4:]}"


def resolve(
    *,
    api_key: str | None,
    base_url: str | None,
    config: ConfigFile,
    path: Path,
    environ: Mapping[str, str] | None = None,
) -> Resolved:
    """Pick each setting from flag, environment, file, default, in that order.

    Empty strings count as unset, as in the SDK. The base URL is returned as given; the
    client validates and normalises it.
    """
    env = os.environ if environ is None else environ
    key_source: Source
    if api_key:
        key, key_source = api_key, "flag"
    elif env.get(API_KEY_ENV):
        key, key_source = env[API_KEY_ENV], "env"
    elif config.api_key:
        key, key_source = config.api_key, "config"
    else:
        key, key_source = None, "unset"
    url_source: Source
    if base_url:
        url, url_source = base_url, "flag"
    elif env.get(BASE_URL_ENV):
        url, url_source = env[BASE_URL_ENV], "env"
    elif config.base_url:
        url, url_source = config.base_url, "config"
    else:
        url, url_source = DEFAULT_BASE_URL, "default"
    return Resolved(key, key_source, url, url_source, path)
