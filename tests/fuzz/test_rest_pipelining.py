"""Pipelined HTTP/1.1 requests, attacked by hypothesis: a mix of valid and refused sends,
reads, marks, HEAD requests, ``Expect: 100-continue`` and a closing request, written all at
once on one keep-alive connection, get the same answers, in the same order, as the same
requests sent one at a time; nothing runs after the closing request; the server logs no
error."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import Account, LiveServer
from tests.fuzz.conftest import FUZZ, TALLY, cases


@dataclass(frozen=True)
class Req:
    kind: str
    content: str = ""

    def encode(self, key: str) -> bytes:
        auth = b"" if self.kind == "send-no-key" else b"X-API-Key: " + key.encode() + b"\r\n"
        if self.kind == "count":
            return b"GET /messages/unread/count HTTP/1.1\r\nHost: t\r\n" + auth + b"\r\n"
        if self.kind == "history":
            return b"GET /messages?limit=3 HTTP/1.1\r\nHost: t\r\n" + auth + b"\r\n"
        if self.kind == "head":
            return b"HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n"
        if self.kind == "mark-all":
            return b"POST /messages/mark-all-read HTTP/1.1\r\nHost: t\r\n" + auth + b"\r\n"
        fields: dict[str, str] = {"content": self.content}
        if self.kind == "send-dm-unknown":
            fields["to_username"] = "nobody-by-this-name"
        body = b"{" if self.kind == "send-bad-json" else json.dumps(fields).encode()
        extra = b""
        if self.kind == "send-expect":
            extra = b"Expect: 100-continue\r\n"
        elif self.kind == "send-close":
            extra = b"Connection: close\r\n"
        head = b"POST /messages HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        return head + auth + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


KINDS = ["send", "send-bad-json", "send-no-key", "send-dm-unknown", "send-expect"]
KINDS += ["count", "history", "head", "mark-all"]


@st.composite
def sequences(draw: st.DrawFn) -> list[Req]:
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=30))
    # Sends weigh most: a run of them is what pipelining changes.
    kinds = [k if draw(st.booleans()) else "send" for k in kinds]
    tag = draw(st.integers(0, 10**9))
    requests = [Req(kind, f"pipe {tag} {i} é") for i, kind in enumerate(kinds)]
    if draw(st.booleans()):
        at = draw(st.integers(0, len(requests)))
        requests.insert(at, Req("send-close", f"pipe {tag} close"))
    return requests


class Connection:
    """A blocking HTTP/1.1 client that reads responses in order (1xx skipped)."""

    def __init__(self, url: str) -> None:
        parsed = httpx.URL(url)
        assert parsed.host == "127.0.0.1", parsed
        self.sock = socket.create_connection((parsed.host, parsed.port or 80), timeout=30)
        self.buffer = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def _line(self) -> bytes | None:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                return None
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def response(self, head_request: bool) -> tuple[int, dict[str, object] | None] | None:
        """The next final response (status, JSON body), or None once the server closed."""
        while True:
            status_line = self._line()
            if status_line is None:
                return None
            status = int(status_line.split()[1])
            length = 0
            while (line := self._line()) not in (b"", None):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if status < 200:
                continue  # 100 Continue
            if head_request:
                return status, None
            while len(self.buffer) < length:
                if not self._fill():
                    return None
            body, self.buffer = self.buffer[:length], self.buffer[length:]
            return status, json.loads(body) if body else None

    def close(self) -> None:
        self.sock.close()


def _answers(
    server: LiveServer, account: Account, requests: list[Req], pipelined: bool
) -> list[tuple[int, object]]:
    """Each request's status and what must match between the two runs: a send's content,
    an error's code."""
    conn = Connection(server.http_url)
    got: list[tuple[int, object]] = []
    try:
        if pipelined:
            conn.sock.sendall(b"".join(r.encode(account.api_key) for r in requests))
        for request in requests:
            if not pipelined:
                conn.sock.sendall(request.encode(account.api_key))
            answer = conn.response(head_request=request.kind == "head")
            if answer is None:
                break
            status, body = answer
            detail: object = None
            if isinstance(body, dict) and status == 201:
                detail = body.get("content")
            elif isinstance(body, dict) and status >= 400:
                detail = body.get("code")
            got.append((status, detail))
            if request.kind == "send-close":
                assert conn.response(head_request=False) is None, "answered after the close"
                break
    finally:
        conn.close()
    return got


def test_pipelined_requests_are_answered_as_sent_one_at_a_time(live_server: LiveServer) -> None:
    account = live_server.register(username=live_server.unique("piper"))
    log_start = len(live_server.proc.log())

    @settings(FUZZ, max_examples=cases(40))
    @given(requests=sequences())
    def check(requests: list[Req]) -> None:
        failed = True
        try:
            serial = _answers(live_server, account, requests, pipelined=False)
            pipelined = _answers(live_server, account, requests, pipelined=True)
            assert pipelined == serial
            closing = [i for i, r in enumerate(requests) if r.kind == "send-close"]
            assert len(serial) == (closing[0] + 1 if closing else len(requests))
            failed = False
        finally:
            TALLY.record("rest pipelining", failed)

    check()
    print(TALLY.line("rest pipelining"))
    log = live_server.proc.log()[log_start:]
    assert "Traceback" not in log and "Exception in ASGI" not in log, log[-3000:]
