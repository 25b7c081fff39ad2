"""Both REST clients against a real server process (``live_server``), endpoint by endpoint.

Every test runs once with ``TokenBowlClient`` and once with ``AsyncTokenBowlClient``. The
server is shared by the session, so each test registers its own users and reads shared state
(the room) relative to what it did itself.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest

from tests.client.conftest import Client, call
from tests.conftest import Account, LiveServer
from tests.wsclient import WsClient
from token_bowl_chat import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ErrorCode,
    MessageResponse,
    MessageType,
    NotFoundError,
    PaginatedMessagesResponse,
    PermissionDeniedError,
    PublicUserProfile,
    Role,
    ServerError,
    UnreadCountResponse,
    UserProfileResponse,
    UserRegistrationResponse,
    ValidationError,
)
from token_bowl_chat.models import LOGOS

ROOM_DESCRIPTION = "This is a message for the fantasy league's group chat."

MakeClient = Callable[..., Client]


@pytest.fixture
def client_for(
    make_client: MakeClient, live_server: LiveServer
) -> Callable[[Account | None], Client]:
    """A client of the parametrised kind on the live server, with the account's key (or none)."""

    def make(account: Account | None = None) -> Client:
        return make_client(
            base_url=live_server.http_url, api_key=account.api_key if account else None
        )

    return make


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within timeout")
        await asyncio.sleep(0.05)


async def test_public_endpoints(client_for: Callable[..., Client], live_server: LiveServer) -> None:
    anonymous = client_for(None)
    assert await call(anonymous, "health_check") == {"status": "healthy"}
    assert await call(anonymous, "get_available_logos") == list(LOGOS)

    name = live_server.unique("sdk")
    registered = await call(
        anonymous, "register", name, webhook_url="http://example.com", logo="openai.png"
    )
    assert isinstance(registered, UserRegistrationResponse)
    assert (registered.username, registered.role, registered.logo) == (
        name,
        Role.MEMBER,
        "openai.png",
    )
    assert registered.webhook_url == "http://example.com/"
    assert len(registered.api_key) == 64
    uuid.UUID(registered.id)

    with pytest.raises(ConflictError) as info:
        await call(anonymous, "register", name)
    assert (info.value.status_code, info.value.code) == (409, ErrorCode.USERNAME_TAKEN)
    assert name in info.value.message

    # The identity provider is not configured on our server: 503 maps to ServerError.
    with pytest.raises(ServerError) as magic:
        await call(anonymous, "send_magic_link", "someone@example.com")
    assert (magic.value.status_code, magic.value.code) == (503, ErrorCode.NOT_CONFIGURED)


async def test_without_a_key_nothing_is_sent(client_for: Callable[..., Client]) -> None:
    with pytest.raises(AuthenticationError, match="API key required"):
        await call(client_for(None), "get_my_profile")


async def test_room_and_direct_messages(
    client_for: Callable[..., Client], live_server: LiveServer
) -> None:
    alice, bob, carol = (live_server.register() for _ in range(3))
    as_alice, as_bob, as_carol = client_for(alice), client_for(bob), client_for(carol)

    room = await call(as_alice, "send_message", "hello room")
    assert isinstance(room, MessageResponse)
    assert (room.from_username, room.from_user_id, room.content) == (
        alice.username,
        alice.id,
        "hello room",
    )
    assert (room.message_type, room.to_username, room.to_user_id) == (MessageType.ROOM, None, None)
    assert room.description == ROOM_DESCRIPTION

    dm = await call(as_bob, "send_message", "psst", alice.username)
    assert (dm.message_type, dm.to_username, dm.to_user_id) == (
        MessageType.DIRECT,
        alice.username,
        alice.id,
    )
    assert dm.description == f"This is a direct message from {bob.username} to {alice.username}."

    # get_message: room messages are public, DMs only for their two parties.
    assert await call(as_carol, "get_message", room.id) == room
    assert await call(as_alice, "get_message", dm.id) == dm
    with pytest.raises(NotFoundError) as hidden:
        await call(as_carol, "get_message", dm.id)
    assert hidden.value.code == ErrorCode.MESSAGE_NOT_FOUND

    # Direct history holds the DM for both parties, not for carol.
    for client in (as_alice, as_bob):
        page = await call(client, "get_direct_messages")
        assert dm.id in [m.id for m in page.messages]
    carol_dms = await call(as_carol, "get_direct_messages")
    assert dm.id not in [m.id for m in carol_dms.messages]

    with pytest.raises(NotFoundError) as nobody:
        await call(as_alice, "send_message", "hi", live_server.unique("ghost"))
    assert nobody.value.code == ErrorCode.USER_NOT_FOUND


async def test_history_is_newest_first_with_pagination(
    client_for: Callable[..., Client], live_server: LiveServer
) -> None:
    alice = live_server.register()
    as_alice = client_for(alice)
    sent = [await call(as_alice, "send_message", f"history {i}") for i in range(3)]

    first = await call(as_alice, "get_messages", limit=2)
    assert isinstance(first, PaginatedMessagesResponse)
    assert [m.id for m in first.messages] == [sent[2].id, sent[1].id]
    assert (first.pagination.limit, first.pagination.offset, first.pagination.has_more) == (
        2,
        0,
        True,
    )
    assert first.pagination.total >= 3
    second = await call(as_alice, "get_messages", limit=2, offset=2)
    assert second.messages[0].id == sent[0].id
    assert second.pagination.total == first.pagination.total

    # since: strictly later messages only, as a string or as a datetime.
    since_text = await call(as_alice, "get_messages", since=sent[0].timestamp)
    assert [m.id for m in since_text.messages] == [sent[2].id, sent[1].id]
    since_dt = await call(as_alice, "get_messages", since=sent[1].timestamp_dt)
    assert [m.id for m in since_dt.messages] == [sent[2].id]

    with pytest.raises(BadRequestError) as bad:
        await call(as_alice, "get_messages", since="yesterday")
    assert (bad.value.status_code, bad.value.code) == (400, ErrorCode.INVALID_TIMESTAMP)
    with pytest.raises(ValidationError) as invalid:
        await call(as_alice, "get_messages", limit=0)
    assert invalid.value.status_code == 422
    assert isinstance(invalid.value.detail, list)


async def test_retried_send_with_client_message_id_is_stored_once(
    client_for: Callable[..., Client], live_server: LiveServer
) -> None:
    alice = live_server.register()
    as_alice = client_for(alice)
    client_id = str(uuid.uuid4())
    first = await call(as_alice, "send_message", "once", client_message_id=client_id)
    again = await call(as_alice, "send_message", "once", client_message_id=client_id)
    assert again.id == first.id
    page = await call(as_alice, "get_messages", limit=5)
    assert [m.id for m in page.messages].count(first.id) == 1


async def test_unread_lists_counts_and_marking_read(
    client_for: Callable[..., Client], live_server: LiveServer
) -> None:
    alice, bob, carol = (live_server.register() for _ in range(3))
    as_alice, as_bob, as_carol = client_for(alice), client_for(bob), client_for(carol)
    await call(as_carol, "mark_all_messages_read")  # a new user starts with the room unread
    assert await call(as_carol, "get_unread_count") == UnreadCountResponse(
        unread_room_messages=0, unread_direct_messages=0, total_unread=0
    )

    room1 = await call(as_alice, "send_message", "unread 1")
    room2 = await call(as_alice, "send_message", "unread 2")
    dm = await call(as_bob, "send_message", "for carol", carol.username)

    counts = await call(as_carol, "get_unread_count")
    assert (counts.unread_room_messages, counts.unread_direct_messages, counts.total_unread) == (
        2,
        1,
        3,
    )
    unread_room = await call(as_carol, "get_unread_messages")
    assert [m.id for m in unread_room] == [room1.id, room2.id]  # oldest first
    assert [m.id for m in await call(as_carol, "get_unread_messages", limit=1, offset=1)] == [
        room2.id
    ]
    assert [m.id for m in await call(as_carol, "get_unread_direct_messages")] == [dm.id]

    assert await call(as_carol, "mark_message_read", room1.id) is None
    assert await call(as_carol, "mark_message_read", room1.id) is None  # already read: fine
    assert [m.id for m in await call(as_carol, "get_unread_messages")] == [room2.id]
    assert (await call(as_carol, "get_unread_count")).total_unread == 2

    assert await call(as_carol, "mark_all_messages_read") == {"marked_as_read": 2}
    assert (await call(as_carol, "get_unread_count")).total_unread == 0
    assert await call(as_carol, "get_unread_direct_messages") == []

    with pytest.raises(NotFoundError) as missing:
        await call(as_carol, "mark_message_read", str(uuid.uuid4()))
    assert missing.value.code == ErrorCode.MESSAGE_NOT_FOUND


async def test_users_and_profiles(
    client_for: Callable[..., Client], live_server: LiveServer
) -> None:
    alice, bob = live_server.register(), live_server.register()
    viewer = live_server.register(role="viewer")
    as_alice, as_viewer = client_for(alice), client_for(viewer)

    users = await call(as_alice, "get_users")
    assert all(isinstance(u, PublicUserProfile) for u in users)
    ids = [u.id for u in users]
    assert ids.index(alice.id) < ids.index(bob.id)  # oldest account first
    assert viewer.id not in ids

    profile = await call(as_viewer, "get_user_profile", alice.id)
    assert (profile.id, profile.username, profile.role, profile.viewer) == (
        alice.id,
        alice.username,
        Role.MEMBER,
        False,
    )
    viewer_profile = await call(as_alice, "get_user_profile", viewer.id)
    assert (viewer_profile.role, viewer_profile.viewer) == (Role.VIEWER, True)
    with pytest.raises(BadRequestError) as bad_id:
        await call(as_alice, "get_user_profile", "not-a-uuid")
    assert bad_id.value.code == ErrorCode.INVALID_ID
    with pytest.raises(NotFoundError) as unknown:
        await call(as_alice, "get_user_profile", str(uuid.uuid4()))
    assert unknown.value.code == ErrorCode.USER_NOT_FOUND

    mine = await call(as_alice, "get_my_profile")
    assert isinstance(mine, UserProfileResponse)
    assert (mine.id, mine.username, mine.role) == (alice.id, alice.username, Role.MEMBER)
    assert mine.api_key != alice.api_key  # masked: the plaintext is shown only once
    assert mine.api_key.endswith(alice.api_key[-4:])

    # Viewers may not send or change their profile: 403 is PermissionDeniedError now.
    with pytest.raises(PermissionDeniedError) as denied:
        await call(as_viewer, "send_message", "may I?")
    assert (denied.value.status_code, denied.value.code) == (403, ErrorCode.PERMISSION_DENIED)
    with pytest.raises(PermissionDeniedError):
        await call(as_viewer, "update_my_logo", "openai.png")
    # A DM to a viewer is refused with 400.
    with pytest.raises(BadRequestError) as to_viewer:
        await call(as_alice, "send_message", "hi", viewer.username)
    assert to_viewer.value.code == ErrorCode.RECIPIENT_IS_VIEWER


async def test_online_users_follow_a_websocket(
    client_for: Callable[..., Client], live_server: LiveServer
) -> None:
    alice, bob = live_server.register(), live_server.register()
    as_bob = client_for(bob)

    async def alice_online() -> bool:
        return alice.id in [u.id for u in await call(as_bob, "get_online_users")]

    assert not await alice_online()
    ws = await WsClient.connect(live_server.ws_url, alice.api_key)
    try:
        await _eventually(alice_online)
        online = await call(as_bob, "get_online_users")
        mine = next(u for u in online if u.id == alice.id)
        assert mine.username == alice.username
    finally:
        await ws.conn.close()

    async def alice_offline() -> bool:
        return not await alice_online()

    await _eventually(alice_offline)


async def test_logo_webhook_and_username(
    client_for: Callable[..., Client], live_server: LiveServer
) -> None:
    alice, bob = live_server.register(), live_server.register()
    as_alice = client_for(alice)

    assert await call(as_alice, "update_my_logo", "grok.png") == {
        "message": "Logo updated successfully",
        "logo": "grok.png",
    }
    assert (await call(as_alice, "get_my_profile")).logo == "grok.png"
    assert await call(as_alice, "update_my_logo") == {
        "message": "Logo updated successfully",
        "logo": "",
    }
    assert (await call(as_alice, "get_my_profile")).logo is None
    with pytest.raises(ValidationError) as bad_logo:
        await call(as_alice, "update_my_logo", "nope.png")
    assert (bad_logo.value.status_code, bad_logo.value.code) == (422, ErrorCode.VALIDATION_ERROR)

    hooked = await call(as_alice, "update_my_webhook", "https://hooks.example.com")
    assert hooked.pop("webhook_secret").startswith("whsec_")  # shown once
    assert hooked == {
        "message": "Webhook URL updated successfully",
        "webhook_url": "https://hooks.example.com/",
    }
    assert (await call(as_alice, "get_my_profile")).webhook_url == "https://hooks.example.com/"
    assert (await call(as_alice, "update_my_webhook", None))["webhook_url"] == ""
    assert (await call(as_alice, "get_my_profile")).webhook_url is None
    with pytest.raises(ValidationError):
        await call(as_alice, "update_my_webhook", "ftp://example.com")

    new_name = live_server.unique("renamed")
    renamed = await call(as_alice, "update_my_username", new_name)
    assert (renamed.id, renamed.username) == (alice.id, new_name)
    assert (await call(as_alice, "get_my_profile")).username == new_name
    with pytest.raises(ConflictError):
        await call(as_alice, "update_my_username", bob.username)
    with pytest.raises(ConflictError):
        await call(as_alice, "update_my_username", new_name)


async def test_rotating_the_key(client_for: Callable[..., Client], live_server: LiveServer) -> None:
    alice = live_server.register()
    as_alice, old_key_client = client_for(alice), client_for(alice)

    rotated = await call(as_alice, "regenerate_api_key")
    assert rotated["message"] == "API key regenerated successfully"
    new_key = rotated["api_key"]
    assert new_key != alice.api_key
    assert len(new_key) == 64
    assert as_alice.api_key == new_key  # the rotating client switched to the new key
    assert (await call(as_alice, "get_my_profile")).id == alice.id

    with pytest.raises(AuthenticationError) as info:
        await call(old_key_client, "get_my_profile")
    assert (info.value.status_code, info.value.code) == (401, ErrorCode.AUTHENTICATION_REQUIRED)
    assert info.value.message == "Invalid or missing authentication credentials"
