"""The SDK's conversation methods against a real server, with ``TokenBowlClient`` and
``AsyncTokenBowlClient`` alike (upstream's sync create and update raised ``TypeError``, and
its ``get_conversations`` could not read the server's answer: PROTOCOL.md section 8, gaps 31
and 32)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.client.conftest import Client, call
from tests.conftest import Account, LiveServer
from token_bowl_chat import (
    ConversationResponse,
    ErrorCode,
    NotFoundError,
    PaginatedConversationsResponse,
    PermissionDeniedError,
    ValidationError,
)

MakeClient = Callable[..., Client]


@pytest.fixture
def client_for(live_server: LiveServer, make_client: MakeClient) -> Callable[[Account], Client]:
    def make(account: Account) -> Client:
        return make_client(base_url=live_server.http_url, api_key=account.api_key)

    return make


def send(live_server: LiveServer, author: Account, content: str, to: str | None = None) -> str:
    body = {"content": content} if to is None else {"content": content, "to_username": to}
    resp = httpx.post(
        f"{live_server.http_url}/messages", json=body, headers={"X-API-Key": author.api_key}
    )
    assert resp.status_code == 201, resp.text
    message_id: str = resp.json()["id"]
    return message_id


async def test_every_conversation_method(
    live_server: LiveServer, client_for: Callable[[Account], Client]
) -> None:
    alice = live_server.register(live_server.unique("sdkconv"))
    bob = live_server.register(live_server.unique("sdkconv"))
    client = client_for(alice)
    room = send(live_server, alice, "sdk conv room")
    dm = send(live_server, bob, "sdk conv dm", to=alice.username)

    created = await call(client, "create_conversation", "t", "d", [room, dm])
    assert isinstance(created, ConversationResponse)
    assert (created.title, created.description, created.message_ids) == ("t", "d", [room, dm])
    assert created.created_by_username == alice.username
    bare = await call(client, "create_conversation")
    assert (bare.title, bare.description, bare.message_ids) == (None, None, [])

    page = await call(client, "get_conversations")
    assert isinstance(page, PaginatedConversationsResponse)
    assert [c.id for c in page.conversations] == [bare.id, created.id]
    assert (page.total, page.limit, page.offset, page.has_more) == (2, 100, 0, False)
    page = await call(client, "get_conversations", limit=1, offset=1)
    assert ([c.id for c in page.conversations], page.has_more) == ([created.id], False)

    assert await call(client, "get_conversation", created.id) == created

    updated = await call(client, "update_conversation", created.id, title="new")
    assert updated == created.model_copy(update={"title": "new"})
    updated = await call(client, "update_conversation", created.id, message_ids=[dm])
    assert (updated.title, updated.message_ids) == ("new", [dm])
    assert await call(client, "update_conversation", created.id) == updated

    assert await call(client, "delete_conversation", created.id) is None
    with pytest.raises(NotFoundError) as missing:
        await call(client, "get_conversation", created.id)
    assert missing.value.code == ErrorCode.CONVERSATION_NOT_FOUND


async def test_refusals_raise_typed_errors(
    live_server: LiveServer, client_for: Callable[[Account], Client]
) -> None:
    alice = live_server.register(live_server.unique("sdkconv"))
    bob = live_server.register(live_server.unique("sdkconv"))
    client = client_for(alice)
    with pytest.raises(NotFoundError) as missing:
        await call(client, "create_conversation", message_ids=[str(uuid.uuid4())])
    assert missing.value.code == ErrorCode.MESSAGE_NOT_FOUND
    with pytest.raises(ValidationError):
        await call(client, "create_conversation", message_ids=["not-a-uuid"])
    with pytest.raises(ValidationError):
        await call(client, "get_conversations", limit=101)
    assert (await call(client, "get_conversations")).total == 0

    theirs = await call(client_for(bob), "create_conversation", "bob's")
    with pytest.raises(PermissionDeniedError):
        await call(client, "get_conversation", theirs.id)
    with pytest.raises(PermissionDeniedError):
        await call(client, "update_conversation", theirs.id, title="x")
    with pytest.raises(PermissionDeniedError):
        await call(client, "delete_conversation", theirs.id)

    # Only admins may use the admin route; for them it deletes anyone's conversation.
    with pytest.raises(PermissionDeniedError) as refused:
        await call(client, "admin_delete_conversation", theirs.id)
    assert refused.value.code == ErrorCode.ADMIN_REQUIRED
    admin = client_for(live_server.admin)
    assert await call(admin, "admin_delete_conversation", theirs.id) is None
    with pytest.raises(NotFoundError):
        await call(admin, "admin_delete_conversation", theirs.id)
