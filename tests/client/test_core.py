"""The no-I/O core: settings, request descriptions, and responses to results or exceptions.

Objects in, objects out: no transport, no server.
"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from token_bowl_chat import exceptions as exc
from token_bowl_chat._base import (
    API_KEY_ENV,
    BASE_URL_ENV,
    ClientCore,
    error_from_response,
    normalize_base_url,
)
from token_bowl_chat.exceptions import parse_retry_after
from token_bowl_chat.models import (
    AdminUpdateUserRequest,
    HTTPValidationError,
    PaginatedConversationsResponse,
)

KEY = "k" * 64


def core(api_key: str | None = KEY, base_url: str | None = None, **env: str) -> ClientCore:
    return ClientCore(api_key=api_key, base_url=base_url, environ=env)


def response(
    status: int, body: Any = None, text: str | None = None, **headers: str
) -> httpx.Response:
    if text is not None:
        return httpx.Response(status, text=text, headers=headers)
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://localhost:8000", "http://localhost:8000"),
        ("http://localhost:8000/", "http://localhost:8000"),
        ("https://chat.example.com", "https://chat.example.com"),
        ("ws://127.0.0.1:9000/ws", "http://127.0.0.1:9000"),
        ("wss://chat.example.com/ws", "https://chat.example.com"),
        ("wss://chat.example.com/ws/", "https://chat.example.com"),
        ("WSS://chat.example.com", "https://chat.example.com"),
        ("https://example.com/chat/ws", "https://example.com/chat"),
        ("https://example.com/chat/", "https://example.com/chat"),
        ("  http://h:1  ", "http://h:1"),
        # Only a final "/ws" segment is the WebSocket endpoint; "/wsx" is a real prefix.
        ("https://example.com/wsx", "https://example.com/wsx"),
    ],
)
def test_base_url_normalisation(given: str, expected: str) -> None:
    assert normalize_base_url(given) == expected


@pytest.mark.parametrize(
    "bad",
    ["ftp://example.com", "localhost:8000", "http://", "https://h/?api_key=secret", "http://h/#x"],
)
def test_unusable_base_urls_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        normalize_base_url(bad)


def test_parameters_win_over_environment() -> None:
    c = core(
        "param-key", "http://param:1", **{API_KEY_ENV: "env-key", BASE_URL_ENV: "http://env:2"}
    )
    assert (c.api_key, c.base_url) == ("param-key", "http://param:1")


def test_environment_fills_in_missing_parameters() -> None:
    c = core(None, None, **{API_KEY_ENV: "env-key", BASE_URL_ENV: "wss://env.example/ws"})
    assert (c.api_key, c.base_url) == ("env-key", "https://env.example")


def test_defaults_without_parameters_or_environment() -> None:
    c = core(None, None)
    assert (c.api_key, c.base_url) == (None, "http://localhost:8000")


def test_empty_key_counts_as_no_key() -> None:
    assert core("", None, **{API_KEY_ENV: ""}).api_key is None


# --- preparing requests ---------------------------------------------------------------------


def test_key_goes_in_the_header_only() -> None:
    prepared = core().prepare(core().get_messages(10, 5, None))
    assert prepared.headers["X-API-Key"] == KEY
    assert prepared.params == {"limit": 10, "offset": 5}
    assert prepared.url == "http://localhost:8000/messages"
    assert KEY not in prepared.url
    assert prepared.headers["User-Agent"].startswith("token-bowl-chat-python/")


def test_endpoint_needing_a_key_fails_locally_without_one() -> None:
    c = core(None)
    with pytest.raises(exc.AuthenticationError, match="API key required") as info:
        c.prepare(c.get_unread_count())
    assert info.value.response is None
    assert info.value.status_code is None


@pytest.mark.parametrize("method", ["register", "health_check", "get_available_logos"])
def test_public_endpoints_need_no_key(method: str) -> None:
    c = core(None)
    call = c.register("alice") if method == "register" else getattr(c, method)()
    prepared = c.prepare(call)
    assert "X-API-Key" not in prepared.headers


def test_since_datetimes_are_sent_in_utc() -> None:
    c = core()
    plus_two = datetime(2025, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert c.get_messages(1, 0, plus_two).params == {
        "limit": 1,
        "offset": 0,
        "since": "2025-01-01T12:00:00+00:00",
    }
    naive = datetime(2025, 1, 1, 12, 0)
    params = c.get_direct_messages(1, 0, naive).params or {}
    assert params["since"] == "2025-01-01T12:00:00+00:00"
    params = c.get_messages(1, 0, "2025-01-01T12:00:00Z").params or {}
    assert params["since"] == "2025-01-01T12:00:00Z"


def test_path_ids_are_quoted_and_must_not_be_empty() -> None:
    c = core()
    assert c.get_message("a/../b?c").path == "/messages/a%2F..%2Fb%3Fc"
    with pytest.raises(ValueError, match="message_id"):
        c.mark_message_read("")


def test_bodies_leave_out_unset_optionals() -> None:
    c = core()
    assert c.register("alice").json == {"username": "alice"}
    assert c.send_message("hi").json == {"content": "hi"}
    assert c.send_message("hi", "bob", "cm-1").json == {
        "content": "hi",
        "to_username": "bob",
        "client_message_id": "cm-1",
    }
    assert c.update_bot("b", None, None).json == {}
    assert c.create_conversation(None, None, None).json == {"message_ids": []}
    assert c.update_conversation("c", "t", None, None).json == {"title": "t"}
    # Clearing is explicit for logo and webhook: null clears.
    assert c.update_my_logo(None).json == {"logo": None}
    assert c.update_my_webhook(None).json == {"webhook_url": None}
    update = AdminUpdateUserRequest(username="new", emoji="🙂")
    assert c.admin_update_user("u", update).json == {"username": "new", "emoji": "🙂"}


# --- responses to exceptions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, exc.BadRequestError),
        (401, exc.AuthenticationError),
        (403, exc.PermissionDeniedError),
        (404, exc.NotFoundError),
        (405, exc.TokenBowlError),
        (409, exc.ConflictError),
        (418, exc.TokenBowlError),
        (422, exc.ValidationError),
        (429, exc.RateLimitError),
        (500, exc.ServerError),
        (503, exc.ServerError),
    ],
)
def test_status_to_exception_table(status: int, cls: type[exc.TokenBowlError]) -> None:
    resp = response(status, {"detail": "nope", "code": "some_code"})
    error = error_from_response(resp)
    assert type(error) is cls
    assert (error.message, str(error), error.code, error.status_code) == (
        "nope",
        "nope",
        "some_code",
        status,
    )
    assert error.response is resp


def test_bad_request_is_a_validation_error() -> None:
    assert isinstance(error_from_response(response(400, {"detail": "x"})), exc.ValidationError)


def test_non_string_detail_and_non_json_bodies() -> None:
    items = [{"type": "missing", "loc": ["body", "content"], "msg": "Field required"}]
    error = error_from_response(response(422, {"detail": items, "code": "validation_error"}))
    assert error.detail == items
    assert error.code == "validation_error"
    assert "Field required" in error.message
    assert HTTPValidationError.model_validate({"detail": items}).detail[0].loc == [
        "body",
        "content",
    ]

    plain = error_from_response(response(502, text="Bad Gateway"))
    assert (type(plain), plain.message, plain.code) == (exc.ServerError, "Bad Gateway", None)
    empty = error_from_response(response(500))
    assert empty.message == "HTTP 500"


def test_retry_after_seconds_and_dates() -> None:
    error = error_from_response(response(429, {"detail": "slow down"}, **{"Retry-After": "2.5"}))
    assert isinstance(error, exc.RateLimitError)
    assert error.retry_after == 2.5
    no_header = error_from_response(response(429, {"detail": "slow down"}))
    assert isinstance(no_header, exc.RateLimitError)
    assert no_header.retry_after is None

    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("-3", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_timeout_error_is_both_kinds_of_timeout() -> None:
    error = exc.TimeoutError("slow")
    assert isinstance(error, builtins.TimeoutError)
    assert isinstance(error, exc.NetworkError)
    assert isinstance(error, exc.TokenBowlError)
    assert (str(error), error.args, error.status_code) == ("slow", ("slow",), None)


def test_explicit_code_for_errors_without_a_response() -> None:
    error = exc.PermissionDeniedError("no", code="permission_denied")
    assert (error.code, error.detail, error.response) == ("permission_denied", None, None)


# --- responses to results -------------------------------------------------------------------


def test_redirects_and_non_json_are_protocol_errors() -> None:
    c = core()
    with pytest.raises(exc.ProtocolError, match="redirect"):
        c.handle(c.health_check(), response(308, Location="https://elsewhere/health"))
    with pytest.raises(exc.ProtocolError, match="not JSON"):
        c.handle(c.health_check(), response(200, text="<html>proxy</html>"))
    with pytest.raises(exc.ProtocolError, match="shape"):
        c.handle(c.get_unread_count(), response(200, {"unexpected": True}))


def test_no_content_endpoints_return_none() -> None:
    c = core()
    assert c.handle(c.mark_message_read("m"), response(204)) is None


def test_regenerating_the_key_switches_the_core_to_it() -> None:
    c = core()
    new_key = "n" * 64
    body = {"message": "API key regenerated successfully", "api_key": new_key}
    assert c.handle(c.regenerate_api_key(), response(200, body)) == body
    assert c.api_key == new_key
    assert c.prepare(c.get_users()).headers["X-API-Key"] == new_key


CONVERSATION: dict[str, Any] = {
    "id": "c1",
    "title": "t",
    "description": None,
    "message_ids": [],
    "created_by_username": "alice",
    "created_at": "2025-01-01T00:00:00+00:00",
}


def test_conversations_nested_shape() -> None:
    c = core()
    body = {
        "conversations": [CONVERSATION],
        "pagination": {"total": 3, "offset": 0, "limit": 1, "has_more": True},
    }
    page = c.handle(c.get_conversations(1, 0), response(200, body))
    assert [conv.id for conv in page.conversations] == ["c1"]
    assert (page.total, page.limit, page.offset, page.has_more) == (3, 1, 0, True)


def test_conversations_flat_upstream_shape() -> None:
    page = PaginatedConversationsResponse.model_validate(
        {"conversations": [CONVERSATION], "total": 2, "limit": 1, "offset": 1}
    )
    assert (page.total, page.limit, page.offset, page.has_more) == (2, 1, 1, False)
    assert page.pagination.total == 2
