"""The HTTP/1.1 protocol uvicorn runs for us: its own (httptools), with two changes.

**One write per response.** uvicorn writes a response's status line and headers as soon as
the app starts the response, and the body when the app sends it: two sends, two TCP segments
and two wake-ups of the client for every small JSON answer. On a loopback send each costs
about as much as the rest of uvicorn's work for the request; a REST send spent 14 % of its
event-loop time in them. Here the head waits for the body's first bytes and leaves with them.

**Pipelined sends.** uvicorn runs one request of a keep-alive connection at a time: a request
that arrives before the response to the one before it is parked, with reading paused, until
that response is complete. So a client pipelining ``POST /messages`` got one group commit per
message. Here a pipelined ``POST /messages`` starts at once when every request still running
on the connection is one too (up to :data:`MAX_PIPELINED`), and joins their group commit:

- the responses leave in request order: a response finished early is held until the ones
  before it have been written;
- the sends are admitted in request order: each request carries a :class:`Turn` in its scope
  (``extensions``, :data:`TURN_EXTENSION`), and the app admits a send only once the request
  before it has been admitted or has ended (``api/rest/hot_routes.py``), so the ``seq`` values
  follow the request order;
- every other request is a barrier, as on the WebSocket: it is parked until everything before
  it has been answered, and what follows it waits for it. So is anything after a request
  whose response closes the connection, which never runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from collections import deque
from typing import Any, cast

from uvicorn._types import ASGI3Application
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

# Where a request's Turn sits in its scope's "extensions".
TURN_EXTENSION = "token_bowl.turn"
# Requests of one connection running at once; beyond it the next one waits (reading paused).
MAX_PIPELINED = 32


class Turn:
    """A request's place in its connection's order: the app waits for the request before it
    to be admitted (or to end) before admitting its own, then says so with
    :meth:`admitted`. A request that never says so is taken as admitted when it ends."""

    __slots__ = ("_mine", "_previous")

    def __init__(self, previous: Turn | None, loop: asyncio.AbstractEventLoop) -> None:
        self._previous = previous._mine if previous is not None else None
        self._mine: asyncio.Future[None] = loop.create_future()

    def is_next(self) -> bool:
        """Whether the request before this one was admitted (or there is none)."""
        return self._previous is None or self._previous.done()

    async def previous_admitted(self) -> None:
        previous = self._previous
        if previous is not None and not previous.done():
            await asyncio.wait([previous])  # never cancels it, whatever happens to the caller
        self._previous = None

    def admitted(self, _: object = None) -> None:
        if not self._mine.done():
            self._mine.set_result(None)


class _Output:
    """The transport as one request's cycle sees it. Until the responses before it have been
    written its bytes are held; then they go out, with the response head held back until
    the first bytes of the body and written with them."""

    __slots__ = (
        "close_pending",
        "cycle",
        "head_written",
        "held",
        "is_head",
        "is_send",
        "started",
        "transport",
    )

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self.transport = transport
        self.cycle = cycle
        self.is_send = cycle.scope["method"] == "POST" and cycle.scope["path"] == "/messages"
        self.held: list[bytes] = []  # written before this response's turn, or its head
        self.is_head = False  # the responses before this one have all been written
        self.close_pending = False
        self.started = False
        self.head_written = False

    def write(self, data: bytes) -> None:
        if not self.is_head:
            self.held.append(data)
        elif self.held:
            self.held.append(data)
            self.transport.write(b"".join(self.held))
            self.held = []
        elif (
            not self.head_written
            and self.cycle.response_started
            and self.cycle.scope["method"] != "HEAD"
        ):
            # A response's first write once it has started is its head (a "100 Continue" is
            # written before the response starts, and goes at once); a HEAD response has
            # nothing after its head.
            self.head_written = True
            self.held.append(data)
        else:
            self.transport.write(data)

    def become_head(self) -> None:
        """The responses before this one are written: write what is held (in one write),
        and from now on write as the response goes."""
        if self.is_head:
            return
        self.is_head = True
        if self.held:
            self.transport.write(b"".join(self.held))
            self.held = []
        self.head_written = self.cycle.response_started
        if self.close_pending:
            self.transport.close()

    def close(self) -> None:
        if not self.is_head:
            self.close_pending = True
            return
        if self.held:
            self.transport.write(b"".join(self.held))
            self.held = []
        self.transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def _output_of(cycle: RequestResponseCycle) -> _Output | None:
    transport: object = cycle.transport
    return transport if isinstance(transport, _Output) else None


class CoalescingHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The responses not yet written, in request order (the first one is writing).
        self._outputs: deque[_Output] = deque()
        self._last_turn: Turn | None = None
        self._close_when_written = False

    def on_headers_complete(self) -> None:
        previous = self.cycle
        parked = len(self.pipeline)
        super().on_headers_complete()  # starts the request (_start_asgi_task) or parks it
        cycle = self.cycle
        if cycle is previous or cycle is None:  # an upgrade: no request cycle
            return
        self._attach(cycle)
        if len(self.pipeline) > parked:  # parked behind an unfinished response
            self._start_parked()

    def _attach(self, cycle: RequestResponseCycle) -> _Output:
        """The request's output and turn, made once, in request order."""
        current = _output_of(cycle)
        if current is not None:
            return current
        output = _Output(self.transport, cycle)
        cycle.transport = cast(asyncio.Transport, output)
        turn = Turn(self._last_turn, self.loop)
        self._last_turn = turn
        scope = cast(dict[str, Any], cycle.scope)
        scope.setdefault("extensions", {})[TURN_EXTENSION] = turn
        self._outputs.append(output)
        if len(self._outputs) == 1:
            output.become_head()
        return output

    def _running(self) -> list[_Output]:
        return [o for o in self._outputs if o.started and not o.cycle.response_complete]

    def _may_start(self, output: _Output) -> bool:
        before = itertools.takewhile(lambda o: o is not output, self._outputs)
        if any(not o.cycle.keep_alive or o.close_pending for o in before):
            return False  # nothing runs after a response that closes the connection
        running = self._running()
        if not running:
            return True
        return output.is_send and len(running) < MAX_PIPELINED and all(o.is_send for o in running)

    def _start_parked(self) -> None:
        """Start the parked requests that may run now, oldest first; resume reading unless
        one is left waiting."""
        while self.pipeline:
            cycle, app = self.pipeline[-1]  # uvicorn parks with appendleft
            if not self._may_start(self._attach(cycle)):
                self.flow.pause_reading()
                return
            self.pipeline.pop()
            self._run(cycle, app)
        self.flow.resume_reading()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        # uvicorn starts a request at once when the latest one before it is complete; one
        # before that may still run, and then only a send may join it.
        output = self._attach(cycle)
        alone = len(self._outputs) == 1  # the usual case: nothing else on the connection
        if not alone and (self.pipeline or not self._may_start(output)):
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, app))
            return
        self._run(cycle, app)

    def _run(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        self._attach(cycle).started = True
        context = contextvars.Context() if self.config.reset_contextvars else None
        task = self.loop.create_task(cycle.run_asgi(app), context=context)
        task.add_done_callback(self.tasks.discard)
        turn = (cycle.scope.get("extensions") or {}).get(TURN_EXTENSION)
        if isinstance(turn, Turn):
            task.add_done_callback(turn.admitted)  # however the request ended
        self.tasks.add(task)

    def _write_in_order(self) -> None:
        """Write the responses that are done, in order, up to the first still going."""
        outputs = self._outputs
        while outputs:
            head = outputs[0]
            head.become_head()
            if not head.cycle.response_complete or self.transport.is_closing():
                return
            outputs.popleft()
        if self._close_when_written:
            self.transport.close()

    def on_response_complete(self) -> None:
        # uvicorn's, but starting parked requests by the rules above, and arming the
        # keep-alive timeout only once nothing runs.
        self.server_state.total_requests += 1
        self._write_in_order()
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self._start_parked()
        if not self._outputs and not self.pipeline:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def connection_lost(self, exc: Exception | None) -> None:
        for output in self._outputs:
            if output.started and not output.cycle.response_complete:
                output.cycle.disconnected = True
                output.cycle.message_event.set()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self._running() or any(o.held for o in self._outputs):
            # Answer what runs, then close; parked requests never start.
            self.pipeline.clear()
            self._outputs = deque(o for o in self._outputs if o.started)
            self._close_when_written = True
            self._write_in_order()
            return
        super().shutdown()

    def timeout_keep_alive_handler(self) -> None:
        if not self._outputs:
            super().timeout_keep_alive_handler()
