"""Defects the machines in this package found, kept as plain regression tests."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import LiveServer


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        # Found by schemathesis (coverage phase, ST205): `OPTIONS /messages` answered
        # `Allow: POST` although GET /messages exists too: Starlette names only the first
        # route whose path matched.
        ("OPTIONS", "/messages", {"GET", "POST"}),
        ("DELETE", "/messages", {"GET", "POST"}),
        ("PUT", "/messages/abc", {"GET"}),
        ("DELETE", "/users/me/username", {"PATCH"}),
        # a literal path shadowing a templated one names its own methods only
        ("OPTIONS", "/messages/mark-all-read", {"POST"}),
    ],
)
def test_405_lists_every_method_the_resource_supports(
    live_server: LiveServer, method: str, path: str, allowed: set[str]
) -> None:
    account = live_server.register()
    resp = httpx.request(
        method, f"{live_server.http_url}{path}", headers={"X-API-Key": account.api_key}
    )
    assert resp.status_code == 405, resp.text
    assert resp.json()["code"] == "method_not_allowed"
    assert {m.strip() for m in resp.headers["allow"].split(",")} == allowed
