"""Hypothesis strategies for hostile input: JSON values, raw text, WebSocket frames, REST calls.

Frame types and their fields come from the protocol package (``COMMAND_TYPES`` and each
command's JSON schema), so a new command or field is attacked without editing this file.
Every generated frame says what the server must answer: ``expect`` is the set of error codes a
rejected frame may get (empty: anything but an internal error), ``echo`` the ``request_id``
its reply must carry.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from token_bowl_chat.protocol.commands import COMMAND_TYPES
from token_bowl_chat.protocol.errors import ErrorCode

# --- text and numbers ----------------------------------------------------------------------

# Strings that broke or nearly broke text handling somewhere: NUL, BOM, bidi overrides,
# combining marks, non-ASCII digits (str.isdigit() says yes, int() may say no), lone and
# reversed surrogate halves, noncharacters, line separators, an astral emoji.
EDGE_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ufeff",
    "\ufeff{}",
    "\u202eevil\u202c",
    "\u200f\u0627\u0644",
    "e\u0301\u0301\u0301",
    "\u0663\u0664",  # Arabic-Indic digits
    "\u00b2",  # superscript two: isdigit() but not int()
    "\uff11\uff12",  # fullwidth digits
    "\U0001d7ce",  # mathematical bold digit zero
    "\ud800",
    "\udfff",
    "x\ud83d",
    "\udc00\ud800",
    "\uffff",
    "\ufffe",
    "\u2028\u2029",
    "🤖",
    "null",
    "-0",
    "1e400",
    "NaN",
    "0x10",
    "../../etc/passwd",
    "%00",
    "2025-13-40T99:00:00",
    "9" * 400,
]

# Digit strings for numeric fields sent as raw JSON text, beyond what json.dumps would write.
NUMBER_TOKENS = [
    "-0",
    "0.0",
    "1.0",
    "1E2",
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    "-1",
    "9223372036854775808",
    "18446744073709551616",
    "1" * 4299,  # just under Python's int-string limit
    "1" * 5000,  # over it: the decoder refuses
    "0." + "0" * 5000 + "1",
]

edge_text = st.one_of(
    st.sampled_from(EDGE_STRINGS),
    st.text(max_size=30),
    st.text(st.characters(categories=["Cs", "Cc", "Cf", "Mn", "Nd", "Co"]), max_size=10),
)

huge_text = st.builds(
    lambda unit, count: unit * count,
    st.sampled_from(["x", "é", "\ud800", "\x00"]),
    st.sampled_from([3_000, 10_000, 10_001, 50_000]),
)

huge_int = st.one_of(
    st.integers(min_value=2**63 - 2, max_value=2**64 + 2),
    st.integers(min_value=-(2**64), max_value=-(2**63) + 2),
    st.builds(lambda digits: int("9" * digits), st.integers(min_value=20, max_value=4000)),
)

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    huge_int,
    st.floats(allow_nan=True, allow_infinity=True),
    edge_text,
)

json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(edge_text, inner, max_size=4),
    max_leaves=12,
)


def dumps(value: Any) -> str:
    """JSON text as a hostile client writes it: lone surrogates escaped, NaN allowed."""
    return json.dumps(value, ensure_ascii=True)


def url_text(value: str) -> str:
    """Percent-encode ``value`` as a hostile client would: a lone surrogate becomes the
    (invalid) UTF-8 bytes of its code point."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


# --- raw text that is not what json.dumps writes ---------------------------------------------


def _nested(opening: str, closing: str, depth: int, inner: str = "") -> str:
    return opening * depth + inner + closing * depth


nesting_depth = st.sampled_from([100, 999, 1000, 1001, 5000, 100_000])

deep_nesting = st.one_of(
    st.builds(lambda d: _nested("[", "]", d), nesting_depth),
    st.builds(lambda d: _nested('{"a":', "}", d, "1"), nesting_depth),
    st.builds(lambda d: _nested('[{"b":', "}]", d, "null"), nesting_depth),
    # unbalanced: nesting that never closes
    st.builds(lambda d: "[" * d, nesting_depth),
)

broken_json = st.sampled_from(
    [
        "",
        " ",
        "{",
        "}",
        "[",
        '{"type":',
        '{"type": "message", "content": "x"',
        '{"type": "message"} trailing',
        "{'type': 'ping'}",
        '{"type": "ping" /* comment */}',
        '{"a": 1,}',
        "\ufeff{}",
        '"\\uZZZZ"',
        '{"type": "ping", "request_id": "\\x41"}',
        "nul\x00l",
    ]
)


# --- WebSocket frames -------------------------------------------------------------------------


class Frame:
    """One client frame and what the server must answer to it.

    ``expect``: the error codes a reply may carry when the frame must be refused (empty when
    any non-internal answer, or none, is fine). ``echo``: the ``request_id`` that reply must
    carry. ``binary``: send as a binary frame. (A plain class: hypothesis prints failing
    examples with ``repr``, which stays short here however big the payload.)
    """

    def __init__(
        self,
        payload: str | bytes,
        expect: frozenset[str] = frozenset(),
        echo: str | int | None = None,
        *,
        binary: bool = False,
        label: str = "",
    ) -> None:
        self.payload = payload
        self.expect = expect
        self.echo = echo
        self.binary = binary
        self.label = label

    def __repr__(self) -> str:
        return f"Frame({self.label}: {_short(self.payload)}, expect={sorted(self.expect)})"


def _short(payload: str | bytes, limit: int = 300) -> str:
    if len(payload) <= limit:
        return repr(payload)
    return f"{payload[:limit]!r}...(+{len(payload) - limit})"


INVALID_FRAME = frozenset({ErrorCode.INVALID_FRAME.value})
INVALID_JSON = frozenset({ErrorCode.INVALID_JSON.value})
UNKNOWN_TYPE = frozenset({ErrorCode.UNKNOWN_TYPE.value})
MISSING = frozenset({ErrorCode.MISSING_FIELD.value})

_JSON_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")

_value_of_json_type: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "integer": st.one_of(st.integers(), huge_int),
    # JSON text with a fraction or exponent (5.0 too): a float, which no strict integer takes
    "number": st.floats(allow_nan=True, allow_infinity=True),
    "string": edge_text,
    "array": st.lists(json_scalar, max_size=3),
    "object": st.dictionaries(edge_text, json_scalar, max_size=3),
}


def _allowed_types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a field's schema admits (``number`` admits integers too)."""
    options = schema.get("anyOf", [schema])
    allowed = {option["type"] for option in options if "type" in option}
    if "number" in allowed:
        allowed.add("integer")
    return allowed


def command_fields() -> list[tuple[str, str, set[str]]]:
    """(frame type, field, JSON types it admits) for every field of every command, from the
    protocol's own classes. ``type`` is left out: it has a strategy of its own."""
    rows = []
    for tag, cls in sorted(COMMAND_TYPES.items()):
        properties = cls.model_json_schema()["properties"]
        for name, schema in properties.items():
            if name != "type":
                rows.append((tag, name, _allowed_types(schema)))
    return rows


COMMAND_FIELDS = command_fields()


@st.composite
def wrong_type_frames(draw: st.DrawFn, request_id: str) -> Frame:
    """A command with one field of a JSON type its schema does not admit: ``invalid_frame``,
    echoing ``request_id`` unless the wrong field is ``request_id`` itself."""
    tag, name, allowed = draw(st.sampled_from(COMMAND_FIELDS))
    wrong_type = draw(st.sampled_from([t for t in _JSON_TYPES if t not in allowed]))
    value = draw(_value_of_json_type[wrong_type])
    frame: dict[str, Any] = {"type": tag, "request_id": request_id, name: value}
    echo = None if name == "request_id" else request_id
    return Frame(dumps(frame), INVALID_FRAME, echo, label=f"{tag}.{name} as {wrong_type}")


def _out_of_range(schema: dict[str, Any]) -> list[Any]:
    """Values of the right JSON type that break the field's bounds."""
    values: list[Any] = []
    for option in schema.get("anyOf", [schema]):
        if "minimum" in option:
            values += [option["minimum"] - 1, -(10**30)]
        if "maximum" in option:
            values += [option["maximum"] + 1, 10**30]
        if "minLength" in option and option["minLength"] > 0:
            values.append("")
        if "maxLength" in option:
            values += ["x" * (option["maxLength"] + 1), "\ud800" * (option["maxLength"] + 1)]
    return values


@st.composite
def out_of_range_frames(draw: st.DrawFn, request_id: str) -> Frame:
    """A command with one field of the right type but outside its bounds: ``invalid_frame``."""
    candidates = []
    for tag, cls in sorted(COMMAND_TYPES.items()):
        for name, schema in cls.model_json_schema()["properties"].items():
            candidates += [(tag, name, value) for value in _out_of_range(schema)]
    tag, name, value = draw(st.sampled_from(candidates))
    frame = {"type": tag, "request_id": request_id, name: value}
    echo = None if name == "request_id" else request_id
    return Frame(dumps(frame), INVALID_FRAME, echo, label=f"{tag}.{name} out of range")


@st.composite
def bad_type_tags(draw: st.DrawFn, request_id: str) -> Frame:
    """``type`` that is not a string (``invalid_frame``) or names no command (``unknown_type``)."""
    if draw(st.booleans()):
        value = draw(json_value.filter(lambda v: v is not None and not isinstance(v, str)))
        return Frame(
            dumps({"type": value, "request_id": request_id}),
            INVALID_FRAME,
            request_id,
            label="type not a string",
        )
    tag = draw(edge_text.filter(lambda t: t not in COMMAND_TYPES))
    return Frame(
        dumps({"type": tag, "request_id": request_id}),
        UNKNOWN_TYPE,
        request_id,
        label="unknown type",
    )


@st.composite
def raw_number_frames(draw: st.DrawFn, request_id: str) -> Frame:
    """A numeric token (huge, -0, 1e400, NaN, ...) as raw JSON text in any field."""
    tag, name, _allowed = draw(st.sampled_from(COMMAND_FIELDS))
    token = draw(st.sampled_from(NUMBER_TOKENS))
    text = f'{{"type": "{tag}", "request_id": "{request_id}", "{name}": {token}}}'
    # Whether the value is refused depends on the field (and a token beyond the int-string
    # limit makes the text invalid JSON): no expected code, but any reply must echo the id.
    echo = None if name == "request_id" else request_id
    return Frame(text, frozenset(), echo, label="raw number")


@st.composite
def nested_field_frames(draw: st.DrawFn, request_id: str) -> Frame:
    """Deep nesting as the value of a field of a known command."""
    tag, name, _allowed = draw(st.sampled_from(COMMAND_FIELDS))
    inner = draw(deep_nesting)
    text = f'{{"type": "{tag}", "request_id": "{request_id}", "{name}": {inner}}}'
    return Frame(text, frozenset(), None, label="nested field")


@st.composite
def any_json_frames(draw: st.DrawFn) -> Frame:
    """Any JSON value; an object gets keys from the commands' fields, with any values."""
    if draw(st.booleans()):
        keys = st.sampled_from(["type", *sorted({name for _t, name, _a in COMMAND_FIELDS})])
        obj = draw(st.dictionaries(keys, json_value, max_size=5))
        if draw(st.booleans()):
            obj["type"] = draw(st.sampled_from(sorted(COMMAND_TYPES)))
        return Frame(dumps(obj), label="any object")
    value = draw(json_value.filter(lambda v: not isinstance(v, dict)))
    return Frame(dumps(value), INVALID_FRAME, label="not an object")


def ws_frames(request_id: str) -> st.SearchStrategy[Frame]:
    """Every kind of hostile text or binary frame."""
    return st.one_of(
        wrong_type_frames(request_id),
        out_of_range_frames(request_id),
        bad_type_tags(request_id),
        raw_number_frames(request_id),
        nested_field_frames(request_id),
        any_json_frames(),
        # a deep but valid object is a type-less send without content
        deep_nesting.map(
            lambda text: Frame(text, INVALID_JSON | INVALID_FRAME | MISSING, label="deep")
        ),
        broken_json.map(lambda text: Frame(text, INVALID_JSON, label="broken json")),
        st.builds(
            lambda value: Frame(dumps({"type": "message", "content": value})),
            huge_text,
        ),
        st.binary(max_size=64).map(
            lambda data: Frame(data, INVALID_FRAME, binary=True, label="binary")
        ),
        st.builds(
            lambda value: Frame(
                dumps(value).encode(), INVALID_FRAME, binary=True, label="json bin"
            ),
            json_value,
        ),
    )


# --- sends that must be refused ----------------------------------------------------------------


class BadSend:
    """A send (WebSocket frame fields or REST body) the server must refuse without storing,
    with the stable code each transport must answer (``ws``, ``rest``)."""

    def __init__(
        self, body: dict[str, Any], ws: frozenset[str], rest: frozenset[str], label: str
    ) -> None:
        self.body = body
        self.ws = ws
        self.rest = rest
        self.label = label

    def __repr__(self) -> str:
        codes = f"ws={sorted(self.ws)}, rest={sorted(self.rest)}"
        return f"BadSend({self.label}: {_short(dumps(self.body))}, {codes})"


def _codes(*codes: ErrorCode) -> frozenset[str]:
    return frozenset(code.value for code in codes)


# A field the decoder refuses: invalid_frame on a WebSocket, 422 validation_error over REST.
_REFUSED_FIELD = (_codes(ErrorCode.INVALID_FRAME), _codes(ErrorCode.VALIDATION_ERROR))


@st.composite
def bad_sends(draw: st.DrawFn, recipient: str, viewer: str) -> BadSend:
    """Sends to the room or to ``recipient`` that are refused before anything is stored:
    wrong types, empty or oversize or NUL or lone-surrogate content, unknown or viewer
    recipients, bad client message ids."""
    to = draw(st.sampled_from([None, recipient]))
    base: dict[str, Any] = {"content": "hello"}
    if to is not None:
        base["to_username"] = to
    kind = draw(
        st.sampled_from(
            [
                "wrong type",
                "empty",
                "too long",
                "nul",
                "surrogate",
                "unknown recipient",
                "odd recipient",
                "viewer recipient",
                "bad client id",
            ]
        )
    )
    if kind == "wrong type":
        name = draw(st.sampled_from(["content", "to_username", "client_message_id"]))
        value = draw(
            st.one_of(
                st.booleans(),
                st.integers(),
                st.floats(),
                st.lists(st.text(max_size=3), max_size=2),
                st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
            )
        )
        return BadSend({**base, name: value}, *_REFUSED_FIELD, f"{name} wrong type")
    if kind == "empty":
        body = {**base, "content": draw(st.sampled_from(["", None]))}
        if draw(st.booleans()):
            del body["content"]
        ws = _codes(ErrorCode.MISSING_FIELD)
        return BadSend(body, ws, _codes(ErrorCode.VALIDATION_ERROR), "no content")
    if kind == "too long":
        content = draw(st.sampled_from(["x" * 10_001, "é" * 10_001, "🤖" * 10_001]))
        # REST keeps upstream's 422 (string_too_long); see docs/protocol-extensions.md
        ws, rest = _codes(ErrorCode.CONTENT_TOO_LONG), _codes(ErrorCode.VALIDATION_ERROR)
        return BadSend({**base, "content": content}, ws, rest, "too long")
    if kind == "nul":
        content = draw(edge_text.map(lambda t: t + "\x00"))
        return BadSend({**base, "content": content}, *_REFUSED_FIELD, "NUL")
    if kind == "surrogate":
        half = draw(st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"]))
        where = draw(st.sampled_from(["content", "client_message_id", "to_username"]))
        value = draw(st.sampled_from([half, f"x{half}", f"{half}y", f"a{half}b{half}"]))
        return BadSend({**base, where: value}, *_REFUSED_FIELD, f"surrogate in {where}")
    if kind == "unknown recipient":
        name = "ghost-" + draw(st.text("abcdefghijklmnopqrstuvwxyz0123456789", max_size=20))
        codes = _codes(ErrorCode.USER_NOT_FOUND)
        return BadSend({**base, "to_username": name}, codes, codes, "unknown recipient")
    if kind == "odd recipient":
        # unknown, or refused as text (NUL, surrogate, blank, too long for REST's 50)
        name = draw(edge_text.filter(lambda t: t not in (recipient, viewer, "")))
        ws = _codes(ErrorCode.USER_NOT_FOUND, ErrorCode.INVALID_FRAME, ErrorCode.MISSING_FIELD)
        rest = _codes(ErrorCode.USER_NOT_FOUND, ErrorCode.VALIDATION_ERROR, ErrorCode.MISSING_FIELD)
        return BadSend({**base, "to_username": name}, ws, rest, "odd recipient")
    if kind == "viewer recipient":
        codes = _codes(ErrorCode.RECIPIENT_IS_VIEWER)
        return BadSend({**base, "to_username": viewer}, codes, codes, "viewer recipient")
    client_id = draw(st.sampled_from(["", "c" * 129, 5, None, "\x00"]))
    if client_id is None:
        client_id = {"nested": True}
    return BadSend({**base, "client_message_id": client_id}, *_REFUSED_FIELD, "client id")
