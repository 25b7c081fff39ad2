"""Golden frames: what the wire carries, decoded and encoded by the shared protocol package."""

from __future__ import annotations

import json

import pytest

from token_bowl_chat.protocol import commands as cmd
from token_bowl_chat.protocol import events as ev
from token_bowl_chat.protocol.close_codes import CloseCode, should_reconnect
from token_bowl_chat.protocol.models import MessageResponse, UserRegistration

MESSAGE = {
    "id": "cf229336-9119-4921-b74c-dc06bb120e68",
    "from_user_id": "0aac71a5-986e-45d4-864f-c885086090c6",
    "from_username": "alice",
    "from_user_logo": None,
    "from_user_emoji": "🤖",
    "from_user_bot": False,
    "to_user_id": None,
    "to_username": None,
    "content": "hi",
    "message_type": "room",
    "description": "This is a message for the fantasy league's group chat.",
    "timestamp": "2025-10-30T12:34:56.789012+00:00",
    "seq": 7,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"content": "hi"}', cmd.SendMessage(content="hi")),
        ('{"type": null, "content": "hi"}', cmd.SendMessage(content="hi")),
        (
            '{"type": "message", "content": "hi", "to_username": "bob", "request_id": 3}',
            cmd.SendMessage(content="hi", to_username="bob", request_id=3),
        ),
        ('{"type": "mark_read", "message_id": "m1"}', cmd.MarkRead(message_id="m1")),
        ('{"type": "mark_all_read"}', cmd.MarkAllRead()),
        ('{"type": "mark_room_read"}', cmd.MarkRoomRead()),
        (
            '{"type": "mark_direct_read", "from_username": "a"}',
            cmd.MarkDirectRead(from_username="a"),
        ),
        ('{"type": "get_unread_count", "request_id": "x"}', cmd.GetUnreadCount(request_id="x")),
        ('{"type": "get_messages"}', cmd.GetMessages(limit=50, offset=0)),
        (
            '{"type": "get_direct_messages", "limit": 5, "offset": 2}',
            cmd.GetDirectMessages(limit=5, offset=2),
        ),
        ('{"type": "get_unread_messages"}', cmd.GetUnreadMessages()),
        ('{"type": "get_unread_direct_messages"}', cmd.GetUnreadDirectMessages()),
        ('{"type": "get_users"}', cmd.GetUsers()),
        ('{"type": "get_online_users"}', cmd.GetOnlineUsers()),
        ('{"type": "get_user_profile", "username": "a"}', cmd.GetUserProfile(username="a")),
        ('{"type": "typing"}', cmd.Typing()),
        ('{"type": "typing", "to_username": "bob"}', cmd.Typing(to_username="bob")),
        ('{"type": "pong"}', cmd.Pong()),
        ('{"type": "ping"}', cmd.Ping()),
        ('{"type": "get_users", "unknown_field": 1}', cmd.GetUsers()),
    ],
)
def test_commands_decode(text: str, expected: cmd.Command) -> None:
    assert cmd.decode_command(text) == expected


@pytest.mark.parametrize(
    ("text", "code", "request_id"),
    [
        ("{", "invalid_json", None),
        (b"\xff\xfe", "invalid_json", None),
        ("[]", "invalid_frame", None),
        ('"text"', "invalid_frame", None),
        ('{"type": "nope", "request_id": "q"}', "unknown_type", "q"),
        ('{"type": ["x"]}', "invalid_frame", None),
        ('{"content": 5, "request_id": 9}', "invalid_frame", 9),
        ('{"type": "get_messages", "limit": 0}', "invalid_frame", None),
        ('{"type": "get_messages", "limit": 1001}', "invalid_frame", None),
        ('{"type": "get_messages", "offset": -1}', "invalid_frame", None),
        ('{"type": "get_messages", "limit": true}', "invalid_frame", None),
        ('{"type": "get_users", "request_id": {"a": 1}}', "invalid_frame", None),
    ],
)
def test_bad_frames_raise_frame_error(text: str | bytes, code: str, request_id: object) -> None:
    with pytest.raises(cmd.FrameError) as info:
        cmd.decode_command(text)
    assert info.value.code == code
    assert info.value.request_id == request_id


def test_commands_encode_without_unset_fields() -> None:
    text = cmd.encode_command(cmd.SendMessage(content="hi", request_id="r1"))
    assert json.loads(text) == {"type": "message", "content": "hi", "request_id": "r1"}


def test_delivery_is_a_bare_message_without_type() -> None:
    message = MessageResponse.model_validate(MESSAGE)
    assert json.loads(ev.encode_event(message)) == MESSAGE
    assert ev.decode_event(json.dumps(MESSAGE)) == message


def test_message_without_seq_omits_it() -> None:
    upstream = {k: v for k, v in MESSAGE.items() if k != "seq"}
    message = MessageResponse.model_validate(upstream)
    assert message.seq is None
    assert "seq" not in json.loads(ev.encode_event(message))


@pytest.mark.parametrize(
    ("event", "wire"),
    [
        (
            ev.RoomReadConfirmation(count=3),
            {"status": "marked_read", "count": 3},
        ),
        (
            ev.DirectReadConfirmation(from_username="a", count=2, request_id="r"),
            {"status": "marked_read", "from_username": "a", "count": 2, "request_id": "r"},
        ),
        (
            ev.MarkedRead(message_id="m"),
            {"type": "marked_read", "message_id": "m", "status": "success"},
        ),
        (
            ev.MarkedAllRead(marked_as_read=4),
            {"type": "marked_all_read", "marked_as_read": 4, "status": "success"},
        ),
        (
            ev.UnreadCount(unread_room_messages=1, unread_direct_messages=2, total_unread=3),
            {
                "type": "unread_count",
                "unread_room_messages": 1,
                "unread_direct_messages": 2,
                "total_unread": 3,
            },
        ),
        (
            ev.ReadReceipt(message_id="m", read_by="bob"),
            {"type": "read_receipt", "message_id": "m", "read_by": "bob"},
        ),
        (
            ev.Typing(username="a", to_username=None),
            {"type": "typing", "username": "a", "to_username": None},
        ),
        (
            ev.TypingStopped(username="a", to_username="b"),
            {"type": "typing_stopped", "username": "a", "to_username": "b"},
        ),
        (
            ev.Error(error="Missing content field", code="missing_field", request_id=1),
            {
                "type": "error",
                "error": "Missing content field",
                "code": "missing_field",
                "request_id": 1,
            },
        ),
        (
            ev.Ping(timestamp="2025-01-01T00:00:00+00:00"),
            {"type": "ping", "timestamp": "2025-01-01T00:00:00+00:00"},
        ),
    ],
)
def test_events_round_trip(event: ev.Event, wire: dict[str, object]) -> None:
    assert json.loads(ev.encode_event(event)) == wire
    assert ev.decode_event(json.dumps(wire)) == event


def test_no_non_delivery_frame_looks_like_a_delivery() -> None:
    """The upstream client treats any frame with from_username and content as a message."""
    sent = ev.MessageSent(message=MessageResponse.model_validate(MESSAGE))
    frame = json.loads(ev.encode_event(sent))
    assert not ("from_username" in frame and "content" in frame)


def test_unknown_event_types_decode_to_none() -> None:
    assert ev.decode_event('{"type": "conversation_created", "conversation": {}}') is None
    assert ev.decode_event('{"status": "something"}') is None


def test_upstream_error_without_code_decodes() -> None:
    decoded = ev.decode_event('{"type": "error", "error": "Unknown message type: typing"}')
    assert isinstance(decoded, ev.Error) and decoded.error.endswith("typing")


def test_close_codes_tell_whether_to_reconnect() -> None:
    assert should_reconnect(CloseCode.SLOW_CONSUMER)
    assert should_reconnect(CloseCode.HEARTBEAT_TIMEOUT)
    assert should_reconnect(CloseCode.SERVICE_RESTART)
    assert should_reconnect(1006)
    assert not should_reconnect(CloseCode.NORMAL)
    assert not should_reconnect(CloseCode.POLICY_VIOLATION)
    assert not should_reconnect(4100)


@pytest.mark.parametrize(
    ("fields", "role"),
    [
        ({}, "member"),
        ({"viewer": True}, "viewer"),
        ({"admin": True, "viewer": True}, "admin"),
        ({"bot": True, "viewer": True}, "viewer"),
        ({"role": "member", "admin": True}, "member"),
    ],
)
def test_registration_role_resolution(fields: dict[str, object], role: str) -> None:
    assert UserRegistration.model_validate({"username": "u", **fields}).resolved_role() == role


def test_registration_normalises_webhook_and_checks_logo() -> None:
    reg = UserRegistration.model_validate({"username": "u", "webhook_url": "http://example.com"})
    assert reg.webhook_url == "http://example.com/"
    with pytest.raises(ValueError, match="Logo must be one of"):
        UserRegistration.model_validate({"username": "u", "logo": "nope.png"})
    with pytest.raises(ValueError, match="Bots can only use emoji"):
        UserRegistration.model_validate({"username": "u", "bot": True, "logo": "grok.png"})
