"""The in-process account cache (services/account_cache.py) never outlives a change made
through the server: every request below first uses the key, so the account is remembered,
then changes it, then is answered under the change at once (no waiting, no retry)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.conftest import LiveServer

# The cache is exact within one process; across nodes the broker relays the forget
# (tests of the multi-node layer cover that).
pytestmark = pytest.mark.single_node(reason="one process's cache, changed through itself")


def _get(server: LiveServer, key: str, path: str = "/users/me") -> httpx.Response:
    return httpx.get(f"{server.http_url}{path}", headers={"X-API-Key": key})


def _post(server: LiveServer, key: str, path: str, **body: object) -> httpx.Response:
    return httpx.post(f"{server.http_url}{path}", headers={"X-API-Key": key}, json=body or None)


def _admin(server: LiveServer, method: str, path: str, **body: object) -> httpx.Response:
    headers = {"X-API-Key": server.admin.api_key}
    return httpx.request(method, f"{server.http_url}{path}", headers=headers, json=body or None)


def _remembered(server: LiveServer, key: str) -> dict[str, object]:
    """Use the key twice, so the second answer came from the cache."""
    assert _get(server, key).status_code == 200
    me = _get(server, key)
    assert me.status_code == 200, me.text
    body: dict[str, object] = me.json()
    return body


def test_changes_made_through_the_server_apply_to_the_next_request(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(TOKEN_BOWL_ACCOUNT_CACHE_SECONDS="3600")

    # A rotated key stops working at once; the new one works.
    alice = server.register()
    _remembered(server, alice.api_key)
    rotated = _post(server, alice.api_key, "/users/me/regenerate-api-key")
    assert rotated.status_code == 200, rotated.text
    assert _get(server, alice.api_key).status_code == 401
    assert _get(server, rotated.json()["api_key"]).json()["id"] == alice.id

    # A rename shows at once.
    bob = server.register()
    _remembered(server, bob.api_key)
    new_name = server.unique("renamed")
    resp = httpx.patch(
        f"{server.http_url}/users/me/username",
        headers={"X-API-Key": bob.api_key},
        json={"username": new_name},
    )
    assert resp.status_code == 200, resp.text
    assert _get(server, bob.api_key).json()["username"] == new_name

    # A role change takes effect on the next request: a viewer may not send.
    carol = server.register()
    _remembered(server, carol.api_key)
    assert _post(server, carol.api_key, "/messages", content="before").status_code == 201
    role = _admin(server, "PATCH", f"/admin/users/{carol.id}/role", role="viewer")
    assert role.status_code == 200, role.text
    assert _get(server, carol.api_key).json()["role"] == "viewer"
    assert _post(server, carol.api_key, "/messages", content="after").status_code == 403

    # A deleted account's key stops working at once.
    dave = server.register()
    _remembered(server, dave.api_key)
    assert _admin(server, "DELETE", f"/admin/users/{dave.id}").status_code == 204
    assert _get(server, dave.api_key).status_code == 401

    # A bot: its key rotated by the owner, then the bot deleted.
    owner = server.register()
    created = _post(server, owner.api_key, "/bots", username=server.unique("bot"))
    assert created.status_code == 201, created.text
    bot_id, bot_key = created.json()["id"], created.json()["api_key"]
    _remembered(server, bot_key)
    again = _post(server, owner.api_key, f"/bots/{bot_id}/regenerate-api-key")
    assert again.status_code == 200, again.text
    assert _get(server, bot_key).status_code == 401
    new_bot_key = again.json()["api_key"]
    _remembered(server, new_bot_key)
    deleted = httpx.delete(f"{server.http_url}/bots/{bot_id}", headers={"X-API-Key": owner.api_key})
    assert deleted.status_code == 204, deleted.text
    assert _get(server, new_bot_key).status_code == 401
