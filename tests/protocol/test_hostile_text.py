"""The protocol package against hostile text: every client string field refuses what cannot
be stored or sent, decoding raises nothing but ``FrameError``, and encoding never fails.

The field walk is the guard for the class of defect: a string field added to a command or a
request body later without the text check fails here, not in production.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from token_bowl_chat.protocol import commands as cmd
from token_bowl_chat.protocol import events as ev
from token_bowl_chat.protocol import models

BAD_TEXT = ["x\ud800", "\udfff", "\ud83c", "nul\x00"]

# Every client-to-server shape: WebSocket commands and REST request bodies.
REQUEST_MODELS: list[type[BaseModel]] = [
    *cmd.COMMAND_TYPES.values(),
    models.SendMessageRequest,
    models.UserRegistration,
    models.UpdateLogoRequest,
    models.UpdateWebhookRequest,
    models.UpdateUsernameRequest,
    models.StytchLoginRequest,
    models.StytchAuthenticateRequest,
    models.AdminUpdateUserRequest,
    models.AdminMessageUpdate,
    models.InviteUserRequest,
    models.CreateBotRequest,
    models.UpdateBotRequest,
    models.CreateConversationRequest,
    models.UpdateConversationRequest,
]


def _takes_text(annotation: Any) -> tuple[bool, bool]:
    """(whether the field takes a string, whether it takes a list of strings)."""
    if annotation is str:
        return True, False
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _takes_text(typing.get_args(annotation)[0])
    if origin is list:
        inner, _ = _takes_text(typing.get_args(annotation)[0])
        return False, inner
    if origin in (typing.Union, types.UnionType):
        found = [_takes_text(arg) for arg in typing.get_args(annotation)]
        return any(s for s, _ in found), any(lst for _, lst in found)
    return False, False


def _text_fields() -> list[tuple[type[BaseModel], str, bool]]:
    fields = []
    for model in REQUEST_MODELS:
        for name, info in model.model_fields.items():
            if name == "type":
                continue
            text, text_list = _takes_text(info.annotation)
            if text or text_list:
                fields.append((model, name, text_list))
    return fields


TEXT_FIELDS = _text_fields()


def test_the_walk_finds_the_fields_it_must_guard() -> None:
    found = {(model.__name__, name) for model, name, _ in TEXT_FIELDS}
    assert ("SendMessage", "content") in found
    assert ("SendMessage", "request_id") in found
    assert ("SendMessageRequest", "client_message_id") in found
    assert ("UserRegistration", "webhook_url") in found
    assert ("CreateConversationRequest", "message_ids") in found
    assert len(found) >= 30


@pytest.mark.parametrize("bad", BAD_TEXT)
@pytest.mark.parametrize(
    ("model", "name", "is_list"),
    TEXT_FIELDS,
    ids=[f"{model.__name__}.{name}" for model, name, _ in TEXT_FIELDS],
)
def test_every_client_string_field_refuses_unstorable_text(
    model: type[BaseModel], name: str, is_list: bool, bad: str
) -> None:
    value: Any = [bad] if is_list else bad
    with pytest.raises(ValidationError) as refused:
        model.model_validate({name: value})
    assert any(err["loc"][:1] == (name,) for err in refused.value.errors()), refused.value


@pytest.mark.parametrize("bad", BAD_TEXT)
@pytest.mark.parametrize("field", ["content", "to_username", "client_message_id", "request_id"])
def test_decoding_reports_bad_text_as_an_invalid_frame(field: str, bad: str) -> None:
    frame = {"type": "message", "content": "hi", field: bad}
    with pytest.raises(cmd.FrameError) as refused:
        cmd.decode_command(json.dumps(frame))
    assert refused.value.code == "invalid_frame"
    assert refused.value.request_id is None or field != "request_id"


def test_request_ids_and_offsets_are_kept_to_64_bits() -> None:
    assert cmd.decode_command(json.dumps({"type": "ping", "request_id": 2**63 - 1}))
    for frame in (
        {"type": "ping", "request_id": 2**63},
        {"type": "ping", "request_id": -(2**63) - 1},
        {"type": "get_messages", "offset": 2**63},
    ):
        with pytest.raises(cmd.FrameError) as refused:
            cmd.decode_command(json.dumps(frame))
        assert refused.value.code == "invalid_frame" and refused.value.request_id is None


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,
        '{"a":' * 100_000,
        '{"type": "ping", "x": ' + "[" * 50_000 + "]" * 50_000 + "}",
        '{"type": "get_messages", "limit": ' + "1" * 5_000 + "}",
        b'{"content": "\xff\xfe"}',
        b"\xed\xa0\x80",
    ],
    ids=["deep-array", "deep-object", "deep-field", "many-digits", "bad-utf8", "cesu-surrogate"],
)
def test_decoding_hostile_json_raises_only_frame_error(text: str | bytes) -> None:
    with pytest.raises(cmd.FrameError) as refused:
        cmd.decode_command(text)
    assert refused.value.code == "invalid_json"


def test_an_unknown_type_is_quoted_short() -> None:
    with pytest.raises(cmd.FrameError) as refused:
        cmd.decode_command(json.dumps({"type": "t" * 100_000}))
    assert len(refused.value.message) < 200


# Any JSON value, with the strings a hostile client would pick.
hostile_text = st.one_of(
    st.text(),
    st.sampled_from([*BAD_TEXT, "", "message", "get_messages", "ping"]),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True)
    | hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=20,
)
FRAME_FIELDS = ["type", "request_id", "content", "to_username", "message_id", "from_username"]
frame_fields = st.sampled_from(
    [*FRAME_FIELDS, "username", "since", "limit", "offset", "client_message_id"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        json_values,
        st.dictionaries(frame_fields, json_values, max_size=5),
        st.builds(
            lambda tag, rest: {"type": tag, **rest},
            st.sampled_from(sorted(cmd.COMMAND_TYPES)),
            st.dictionaries(frame_fields, json_values, max_size=4),
        ),
    )
)
def test_any_frame_decodes_or_fails_cleanly_and_any_reply_encodes(data: Any) -> None:
    text = json.dumps(data)  # ASCII: surrogates travel as escapes, as on the wire
    try:
        command = cmd.decode_command(text)
    except cmd.FrameError as exc:
        reply: ev.Event = ev.Error(error=exc.message, code=exc.code, request_id=exc.request_id)
    else:
        reply = ev.Pong(request_id=command.request_id)
        cmd.encode_command(command)  # what passed validation encodes too
    encoded = ev.encode_event(reply)
    encoded.encode("utf-8")  # sendable as a text frame
    assert json.loads(encoded)["type"] in ("error", "pong")


@pytest.mark.parametrize("bad", BAD_TEXT)
def test_encoding_an_event_never_fails_on_text(bad: str) -> None:
    frames: list[ev.Event] = [
        ev.Error(error=f"Message {bad} not found", code="message_not_found", request_id="r"),
        ev.Typing(username=bad, to_username=bad),
        ev.ReadReceipt(message_id=bad, read_by=bad),
    ]
    for frame in frames:
        encoded = ev.encode_event(frame)
        encoded.encode("utf-8")
        assert "\ud800" not in encoded and "\udfff" not in encoded
    assert ev.encode_event(ev.Pong(request_id="r1")) == '{"request_id":"r1","type":"pong"}'
