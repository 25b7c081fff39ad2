"""api/cors.py answers every request exactly as Starlette's CORSMiddleware configured for any
origin, method and header (what the server used before), only cheaper."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from token_bowl_chat_server.api.cors import CORS


async def _plain(_: Request) -> Response:
    return PlainTextResponse("hi")


async def _varies(_: Request) -> Response:
    return Response("x", headers={"Vary": "Accept"})


def _app() -> Starlette:
    return Starlette(routes=[Route("/a", _plain, methods=["GET", "POST"]), Route("/v", _varies)])


ORIGIN = {"Origin": "https://web.example"}
PREFLIGHT = {**ORIGIN, "Access-Control-Request-Method": "POST"}
CASES = {
    "no-origin": ("GET", "/a", {}),
    "origin": ("GET", "/a", ORIGIN),
    "origin-and-vary": ("GET", "/v", ORIGIN),
    "vary-no-origin": ("GET", "/v", {}),
    "unknown-route": ("POST", "/nowhere", ORIGIN),
    "preflight": ("OPTIONS", "/a", PREFLIGHT),
    "preflight-headers": (
        "OPTIONS",
        "/a",
        {**PREFLIGHT, "Access-Control-Request-Headers": "x-api-key,content-type"},
    ),
    "preflight-private-network": (
        "OPTIONS",
        "/a",
        {**PREFLIGHT, "Access-Control-Request-Private-Network": "true"},
    ),
    "options-without-origin": ("OPTIONS", "/a", {"Access-Control-Request-Method": "POST"}),
}


async def _answer(app: ASGIApp, method: str, path: str, headers: dict[str, str]) -> object:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        resp = await client.request(method, path, headers=headers)
    return resp.status_code, sorted(resp.headers.multi_items()), resp.text


@pytest.mark.parametrize("case", sorted(CASES))
async def test_same_answers_as_starlettes_middleware(case: str) -> None:
    method, path, headers = CASES[case]
    theirs = CORSMiddleware(_app(), allow_origins=["*"], allow_methods=["*"], allow_headers=["*"])
    assert await _answer(CORS(_app()), method, path, headers) == await _answer(
        theirs, method, path, headers
    )
