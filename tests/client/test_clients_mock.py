"""Both REST clients over ``httpx.MockTransport``: what goes on the wire, and what comes back.

Every test runs twice, once per client (``make_client`` is parametrised).
"""

from __future__ import annotations

import builtins
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import token_bowl_chat
from tests.client.conftest import Client, call
from token_bowl_chat import (
    AuthenticationError,
    BadRequestError,
    MessageResponse,
    NetworkError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    ServerError,
    TokenBowlError,
    ValidationError,
)

KEY = "a" * 64
MESSAGE = {
    "id": "6f1b3f7e-59a4-4c43-9f0e-1c1d1b3f7e59",
    "from_user_id": "u1",
    "from_username": "alice",
    "content": "hi",
    "message_type": "room",
    "timestamp": "2025-01-01T00:00:00+00:00",
}
CONVERSATION = {
    "id": "c1",
    "title": "t",
    "description": "d",
    "message_ids": [MESSAGE["id"]],
    "created_by_username": "alice",
    "created_at": "2025-01-01T00:00:00+00:00",
}

MakeClient = Callable[..., Client]


class Recorder:
    """A MockTransport handler that records requests and answers with a fixed response."""

    def __init__(self, status: int = 200, body: Any = None, headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.body is None:
            return httpx.Response(self.status, headers=self.headers)
        return httpx.Response(self.status, json=self.body, headers=self.headers)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKEN_BOWL_CHAT_API_KEY", raising=False)
    monkeypatch.delenv("TOKEN_BOWL_CHAT_BASE_URL", raising=False)


# --- requests -------------------------------------------------------------------------------


async def test_send_message_request(make_client: MakeClient) -> None:
    rec = Recorder(201, {**MESSAGE, "to_username": "bob", "message_type": "direct"})
    client = make_client(rec, api_key=KEY, base_url="http://chat.test")
    sent = await call(client, "send_message", "hi", "bob", client_message_id="cm-1")
    assert isinstance(sent, MessageResponse)
    assert sent.to_username == "bob"
    req = rec.last
    assert (req.method, str(req.url)) == ("POST", "http://chat.test/messages")
    assert req.headers["X-API-Key"] == KEY
    assert req.headers["Content-Type"] == "application/json"
    assert "api_key" not in str(req.url)
    assert rec.last_json() == {"content": "hi", "to_username": "bob", "client_message_id": "cm-1"}


async def test_history_query_parameters(make_client: MakeClient) -> None:
    page = {
        "messages": [MESSAGE],
        "pagination": {"total": 1, "offset": 5, "limit": 10, "has_more": False},
    }
    rec = Recorder(200, page)
    client = make_client(rec, api_key=KEY)
    result = await call(client, "get_direct_messages", limit=10, offset=5, since="2025-01-01")
    assert result.messages[0].id == MESSAGE["id"]
    assert rec.last.url.path == "/messages/direct"
    assert dict(rec.last.url.params) == {"limit": "10", "offset": "5", "since": "2025-01-01"}


async def test_ws_base_url_is_used_as_rest_base(make_client: MakeClient) -> None:
    rec = Recorder(200, {"status": "healthy"})
    client = make_client(rec, base_url="wss://chat.example.com/ws/")
    assert await call(client, "health_check") == {"status": "healthy"}
    assert str(rec.last.url) == "https://chat.example.com/health"
    assert client.base_url == "https://chat.example.com"


async def test_environment_fallbacks(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN_BOWL_CHAT_API_KEY", "env-key")
    monkeypatch.setenv("TOKEN_BOWL_CHAT_BASE_URL", "ws://env.test:9000/ws")
    rec = Recorder(200, {"unread_room_messages": 1, "unread_direct_messages": 2, "total_unread": 3})
    client = make_client(rec)
    counts = await call(client, "get_unread_count")
    assert counts.total_unread == 3
    assert str(rec.last.url) == "http://env.test:9000/messages/unread/count"
    assert rec.last.headers["X-API-Key"] == "env-key"
    assert client.api_key == "env-key"


async def test_default_base_url(make_client: MakeClient) -> None:
    rec = Recorder(200, ["openai.png"])
    client = make_client(rec)
    assert await call(client, "get_available_logos") == ["openai.png"]
    assert str(rec.last.url) == "http://localhost:8000/logos"
    assert "X-API-Key" not in rec.last.headers


async def test_missing_key_fails_before_any_request(make_client: MakeClient) -> None:
    rec = Recorder(200, [])
    client = make_client(rec)
    for method, args in [
        ("get_users", ()),
        ("send_message", ("hi",)),
        ("mark_message_read", ("m",)),
        ("create_conversation", ()),
    ]:
        with pytest.raises(AuthenticationError, match="API key required for this operation"):
            await call(client, method, *args)
    assert rec.requests == []


async def test_conversations_create_and_update_send_json(make_client: MakeClient) -> None:
    # Upstream's sync client passed json_data= to httpx and raised TypeError (gap 31).
    rec = Recorder(201, CONVERSATION)
    client = make_client(rec, api_key=KEY)
    created = await call(client, "create_conversation", "t", "d", [MESSAGE["id"]])
    assert created.message_ids == [MESSAGE["id"]]
    assert (rec.last.method, rec.last.url.path) == ("POST", "/conversations")
    assert rec.last_json() == {"title": "t", "description": "d", "message_ids": [MESSAGE["id"]]}

    rec.status = 200
    await call(client, "update_conversation", "c1", title="new")
    assert (rec.last.method, rec.last.url.path) == ("PATCH", "/conversations/c1")
    assert rec.last_json() == {"title": "new"}


@pytest.mark.parametrize(
    "body",
    [
        {
            "conversations": [CONVERSATION],
            "pagination": {"total": 7, "offset": 2, "limit": 1, "has_more": True},
        },
        {"conversations": [CONVERSATION], "total": 7, "limit": 1, "offset": 2},
    ],
    ids=["nested", "flat"],
)
async def test_conversations_list_accepts_both_shapes(make_client: MakeClient, body: Any) -> None:
    rec = Recorder(200, body)
    client = make_client(rec, api_key=KEY)
    page = await call(client, "get_conversations", limit=1, offset=2)
    assert [c.id for c in page.conversations] == ["c1"]
    assert (page.total, page.limit, page.offset, page.has_more) == (7, 1, 2, True)
    assert dict(rec.last.url.params) == {"limit": "1", "offset": "2"}


async def test_no_content_and_dict_results(make_client: MakeClient) -> None:
    rec = Recorder(204)
    client = make_client(rec, api_key=KEY)
    assert await call(client, "mark_message_read", "m 1") is None
    assert rec.last.url.raw_path == b"/messages/m%201/read"
    assert await call(client, "delete_bot", "b1") is None
    assert rec.last.method == "DELETE"

    rec.status, rec.body = 200, {"marked_as_read": 4}
    assert await call(client, "mark_all_messages_read") == {"marked_as_read": 4}


async def test_regenerate_api_key_switches_the_client(make_client: MakeClient) -> None:
    new_key = "b" * 64
    rec = Recorder(200, {"message": "API key regenerated successfully", "api_key": new_key})
    client = make_client(rec, api_key=KEY)
    assert (await call(client, "regenerate_api_key"))["api_key"] == new_key
    assert rec.last.headers["X-API-Key"] == KEY
    assert client.api_key == new_key
    rec.body = []
    await call(client, "get_users")
    assert rec.last.headers["X-API-Key"] == new_key


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls", "code"),
    [
        (400, BadRequestError, "invalid_timestamp"),
        (401, AuthenticationError, "authentication_required"),
        (403, PermissionDeniedError, "permission_denied"),
        (404, token_bowl_chat.NotFoundError, "user_not_found"),
        (405, TokenBowlError, "method_not_allowed"),
        (409, token_bowl_chat.ConflictError, "username_taken"),
        (422, ValidationError, "validation_error"),
        (429, RateLimitError, "rate_limited"),
        (500, ServerError, "internal_error"),
        (503, ServerError, "not_configured"),
    ],
)
async def test_error_statuses(
    make_client: MakeClient, status: int, cls: type[TokenBowlError], code: str
) -> None:
    rec = Recorder(status, {"detail": f"detail {status}", "code": code}, {"Retry-After": "7"})
    client = make_client(rec, api_key=KEY)
    with pytest.raises(cls) as info:
        await call(client, "get_user_profile", "u1")
    error = info.value
    assert type(error) is cls
    assert (error.message, error.status_code, error.code) == (f"detail {status}", status, code)
    assert error.response is not None
    if isinstance(error, RateLimitError):
        assert error.retry_after == 7.0


async def test_validation_error_keeps_the_field_list(make_client: MakeClient) -> None:
    items = [{"type": "string_too_short", "loc": ["body", "content"], "msg": "too short"}]
    client = make_client(Recorder(422, {"detail": items, "code": "validation_error"}), api_key=KEY)
    with pytest.raises(ValidationError) as info:
        await call(client, "send_message", "")
    assert info.value.detail == items
    assert "too short" in info.value.message


async def test_unexpected_body_is_a_protocol_error(make_client: MakeClient) -> None:
    client = make_client(Recorder(200, {"not": "a message"}), api_key=KEY)
    with pytest.raises(ProtocolError):
        await call(client, "get_message", "m1")


def _raiser(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    "transport_exc",
    [httpx.ConnectError("refused"), httpx.ReadError("reset"), httpx.RemoteProtocolError("eof")],
)
async def test_transport_failures_are_network_errors(
    make_client: MakeClient, transport_exc: Exception
) -> None:
    client = make_client(_raiser(transport_exc), api_key=KEY)
    with pytest.raises(NetworkError) as info:
        await call(client, "get_users")
    assert not isinstance(info.value, builtins.TimeoutError)
    assert info.value.__cause__ is transport_exc
    assert "GET http://localhost:8000/users" in info.value.message


@pytest.mark.parametrize(
    "timeout_exc", [httpx.ConnectTimeout("slow"), httpx.ReadTimeout("slow"), httpx.PoolTimeout("x")]
)
async def test_timeouts_are_caught_by_both_timeout_classes(
    make_client: MakeClient, timeout_exc: Exception
) -> None:
    client = make_client(_raiser(timeout_exc), api_key=KEY)
    with pytest.raises(builtins.TimeoutError):
        await call(client, "get_users")
    with pytest.raises(token_bowl_chat.TimeoutError) as info:
        await call(client, "get_users")
    assert isinstance(info.value, NetworkError)
    try:
        await call(client, "get_users")
    except builtins.TimeoutError as caught:  # the plain builtin clause catches it too
        assert isinstance(caught, TokenBowlError)


# --- real sockets, no server ----------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


async def test_real_read_timeout(make_client: MakeClient, silent_port: int) -> None:
    client = make_client(base_url=f"http://127.0.0.1:{silent_port}", timeout=0.2)
    with pytest.raises(builtins.TimeoutError) as info:
        await call(client, "health_check")
    assert isinstance(info.value, token_bowl_chat.TimeoutError)


async def test_real_connection_refused(make_client: MakeClient) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    client = make_client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    with pytest.raises(NetworkError) as info:
        await call(client, "health_check")
    assert not isinstance(info.value, builtins.TimeoutError)


# --- construction and lifecycle -------------------------------------------------------------


def test_transport_and_http_client_are_exclusive() -> None:
    with pytest.raises(ValueError, match="not both"):
        token_bowl_chat.TokenBowlClient(
            transport=httpx.MockTransport(Recorder()), http_client=httpx.Client()
        )


def test_sync_context_manager_closes() -> None:
    with token_bowl_chat.TokenBowlClient(transport=httpx.MockTransport(Recorder())) as client:
        pass
    assert client._http.is_closed


async def test_async_context_manager_closes() -> None:
    async with token_bowl_chat.AsyncTokenBowlClient(
        transport=httpx.MockTransport(Recorder())
    ) as client:
        pass
    assert client._http.is_closed


def test_injected_http_client_is_not_closed() -> None:
    rec = Recorder(200, {"status": "healthy"})
    with httpx.Client(transport=httpx.MockTransport(rec)) as http:
        with token_bowl_chat.TokenBowlClient(http_client=http, base_url="http://x.test") as client:
            assert client.health_check() == {"status": "healthy"}
        assert not http.is_closed
