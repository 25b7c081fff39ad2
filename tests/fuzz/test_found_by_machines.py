"""Defects the machines in this package found, kept as plain regression tests."""

from __future__ import annotations

import json
import socket
import time

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
        ("PUT", "/messages/abc", {"GET", "PATCH", "DELETE"}),
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


def _raw_upgrade(
    server: LiveServer, query: str, header: str = "", *, until_head: bool = False
) -> tuple[bytes, bool]:
    """Send a WebSocket upgrade request by hand; return what came back within 10 s and
    whether the server closed the socket (``until_head``: stop at the response head)."""
    request = (
        f"GET /ws?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.proc.port), timeout=10) as sock:
        sock.sendall(request.encode())
        received = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                return received, True
            received += chunk
            if until_head and b"\r\n\r\n" in received:
                break
        return received, False


@pytest.mark.parametrize(
    ("query", "header", "status"),
    [
        # Found by the handshake property (long profile): a /ws request line over 8 KiB
        # got no answer and its socket stayed open for good; any client could pin sockets.
        ("since_seq=" + "1" * 9000, "", b"414"),
        ("x=" + "1" * 60_000, "", b"414"),
        # the same for a header line over 8 KiB
        ("a=1", "X-Filler: " + "h" * 9000 + "\r\n", b"431"),
    ],
    ids=["request-line-9k", "request-line-60k", "header-line-9k"],
)
def test_an_oversize_upgrade_request_is_refused_and_closed(
    live_server: LiveServer, query: str, header: str, status: bytes
) -> None:
    received, closed = _raw_upgrade(live_server, query, header)
    assert received.startswith(b"HTTP/1.1 " + status), received[:200]
    assert closed, "the server kept the refused socket open"
    body = json.loads(received.split(b"\r\n\r\n", 1)[1])
    assert body["code"] == "validation_error" and body["detail"], body
    # and the server still upgrades an ordinary request
    account = live_server.register()
    received, _closed = _raw_upgrade(live_server, f"api_key={account.api_key}", until_head=True)
    assert received.startswith(b"HTTP/1.1 101"), received[:200]
