"""The chat page is served at ``/`` and ``/static/...`` without taking any API path."""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer


def test_page_and_modules_are_served_with_a_strict_policy(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.http_url) as http:
        page = http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert 'src="/static/app.js"' in page.text
        module = http.get("/static/app.js")
        assert module.status_code == 200
        assert module.headers["content-type"].startswith("text/javascript")
        assert http.get("/static/views/messages.js").status_code == 200
        assert http.get("/static/style.css").headers["content-type"].startswith("text/css")


def test_static_refuses_traversal_and_unknown_files(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.http_url) as http:
        for path in (
            "/static/../api/rest/web.py",
            "/static/%2e%2e/api/rest/web.py",
            "/static/..%2fapi%2frest%2fweb.py",
            "/static/nothing.js",
            "/static/",
        ):
            resp = http.get(path)
            assert resp.status_code == 404, path
            assert resp.json()["code"] == "route_not_found", path


def test_api_paths_are_not_shadowed(live_server: LiveServer) -> None:
    alice = live_server.register()
    with httpx.Client(base_url=live_server.http_url) as http:
        assert http.get("/health").json()["status"] == "healthy"
        assert http.get("/openapi.json").json()["info"]["title"] == "Token Bowl Chat"
        assert http.get("/docs").status_code == 200
        assert http.get("/users").status_code == 401
        me = http.get("/users/me", headers={"X-API-Key": alice.api_key})
        assert me.json()["username"] == alice.username
        assert http.get("/messages", headers={"X-API-Key": alice.api_key}).status_code == 200
        # The page's routes stay out of the API description.
        paths = http.get("/openapi.json").json()["paths"]
        assert "/" not in paths
        assert not any(p.startswith("/static") for p in paths)
