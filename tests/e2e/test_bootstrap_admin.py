"""The first admin comes from TOKEN_BOWL_BOOTSTRAP_ADMIN_USERNAME / _KEY, once."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx

from tests.conftest import LiveServer


def _me(server: LiveServer, key: str) -> httpx.Response:
    return httpx.get(f"{server.http_url}/users/me", headers={"X-API-Key": key})


def test_bootstrap_creates_an_admin_with_the_configured_key(live_server: LiveServer) -> None:
    admin = live_server.admin
    body = _me(live_server, admin.api_key).json()
    assert (body["role"], body["admin"], body["username"]) == ("admin", True, "admin")


def test_bootstrap_leaves_an_existing_user_alone(make_server: Callable[..., LiveServer]) -> None:
    first_key = secrets.token_hex(32)
    server = make_server(
        TOKEN_BOWL_BOOTSTRAP_ADMIN_USERNAME="root", TOKEN_BOWL_BOOTSTRAP_ADMIN_KEY=first_key
    )
    assert _me(server, first_key).json()["role"] == "admin"
    rotated = httpx.post(
        f"{server.http_url}/users/me/regenerate-api-key", headers={"X-API-Key": first_key}
    ).json()["api_key"]
    # A restart with the same settings must not hand the old key back its power.
    server.proc.stop()
    server.proc.start()
    assert _me(server, first_key).status_code == 401
    assert _me(server, rotated).json()["role"] == "admin"


def test_a_bootstrap_key_of_the_wrong_length_stops_startup(
    make_server: Callable[..., LiveServer],
) -> None:
    try:
        make_server(
            TOKEN_BOWL_BOOTSTRAP_ADMIN_USERNAME="root", TOKEN_BOWL_BOOTSTRAP_ADMIN_KEY="short"
        )
    except RuntimeError as exc:
        assert "bootstrap admin key" in str(exc)
    else:
        raise AssertionError("a server with a 5-character admin key started")
