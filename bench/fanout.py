"""Room fan-out benchmark for the token-bowl-chat server.

What is measured
----------------
N receivers (one user each) hold WebSocket connections to the shared room. S senders,
separate users because the server never echoes a room message to its own author, send room
messages as fast as the server accepts them: each keeps up to ``--window`` sends in flight and
matches the ``message_sent`` replies by ``request_id``. Sending stops after ``--duration``
seconds or ``--max-messages`` send attempts, whichever comes first; then the receivers get up to
``--drain-timeout`` seconds to receive every accepted message. Each N prints one JSON line:

* ``messages_sent`` / ``messages_per_s``: accepted sends, per second of the send phase (first
  send to last ``message_sent``);
* ``delivered_frames`` / ``delivered_frames_per_s``: chat deliveries received by all receivers
  together, per second from the first send to the last delivery;
* ``latency_ms_p50`` / ``_p99`` / ``_max``: send-to-receive latency. The sender writes its wall
  clock (``time.time_ns``) into the content; the receiver compares it with its own when the
  frame arrives. All processes run on one machine, so the clocks agree. Percentiles come from
  a log histogram with ~1 % wide buckets; the max is exact;
* ``lost_messages``: ``messages_sent * N`` minus the deliveries, counted per receiver and never
  below zero for one receiver (a receiver that failed to connect lost everything);
* ``slow_consumer_closes``: receivers the server closed with 4001 (outbox overflow);
* ``seq_out_of_order``: deliveries whose ``seq`` was not above the previous one on the same
  connection (reordering or duplicates; must be 0);
* CPU seconds of the server, the receivers and the senders, and how busy the whole machine
  was (``machine_cpu_busy_pct``): on a small machine, client and server share the cores;
* the run's settings and the server configuration (URL, database URL, environment overrides).

How it runs
-----------
By default every N gets a fresh server: ``python -m token_bowl_chat_server`` on a free
127.0.0.1 port, with ``DATABASE_URL`` pointing at a SQLite file in a new temporary directory
and the per-user send rate limit lifted (``--keep-rate-limit`` keeps it). The server is stopped
by its PID (SIGTERM, then SIGKILL) whatever happens. ``--url`` targets a running server
instead; only 127.0.0.1 and ::1 are accepted. Receivers live in ``--receiver-procs`` worker
processes (this script with ``--worker``, driven by JSON lines over stdin/stdout), one asyncio
loop each (uvloop when importable); senders live in the main process. Progress goes to
stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, OrderedDict
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

T = TypeVar("T")

ALLOWED_HOSTS = frozenset({"127.0.0.1", "::1"})
SLOW_CONSUMER = 4001
PONG = '{"type":"pong"}'
# Content of every benchmark message: "bench;s=<sender>;i=<index>;t=<time_ns>;<padding>".
CONTENT_RE = re.compile(r"bench;s=(\d+);i=(\d+);t=(\d+);")
SEQ_RE = re.compile(r'"seq"\s*:\s*(\d+)')
NO_RATE_LIMIT = {
    "TOKEN_BOWL_SEND_RATE": "1000000",
    "TOKEN_BOWL_SEND_BURST": "1000000",
    "TOKEN_BOWL_REGISTER_RATE": "1000000",
    "TOKEN_BOWL_REGISTER_BURST": "1000000",
    # A pipelined sender keeps a window of frames in flight: past the frame budget (50/s).
    "TOKEN_BOWL_WS_FRAME_RATE": "1000000",
    "TOKEN_BOWL_WS_FRAME_BURST": "1000000",
    # Every receiver connects from 127.0.0.1: lift the per-address connection cap (200).
    "TOKEN_BOWL_WS_MAX_CONNECTIONS_PER_ADDRESS": "1000000",
}
QUIET_SERVER = {"TOKEN_BOWL_LOG_LEVEL": "warning"}
BUCKETS_PER_E = 100  # log-histogram resolution: bucket width ~1 % of the value
LINE_LIMIT = 16 * 1024 * 1024  # worker result lines carry a histogram
SCRIPT = Path(__file__).resolve()


def log(message: str) -> None:
    print(f"[fanout {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop when it is installed, else on the default asyncio loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    result: T = uvloop.run(main)
    return result


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


# --------------------------------------------------------------------------- latency histogram


class LatencyHistogram:
    """Latencies in log buckets (~1 % wide) plus the exact maximum; mergeable across processes."""

    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0
        self.max_ns = 0

    def add(self, ns: int) -> None:
        self.count += 1
        self.max_ns = max(self.max_ns, ns)
        self.buckets[int(math.log(ns / 1000) * BUCKETS_PER_E) if ns > 1000 else 0] += 1

    def quantile_ms(self, q: float) -> float | None:
        if not self.count:
            return None
        rank = q * self.count
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                bucket_us = math.exp((index + 0.5) / BUCKETS_PER_E)
                return round(min(bucket_us / 1000, self.max_ns / 1e6), 3)
        return round(self.max_ns / 1e6, 3)

    def max_ms(self) -> float | None:
        return round(self.max_ns / 1e6, 3) if self.count else None

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "max_ns": self.max_ns, "buckets": dict(self.buckets)}

    def merge_json(self, data: dict[str, Any]) -> None:
        self.count += data["count"]
        self.max_ns = max(self.max_ns, data["max_ns"])
        for index, count in data["buckets"].items():
            self.buckets[int(index)] += count


# --------------------------------------------------------------------------- the server


def check_local(url: str) -> str:
    """Return ``url`` without a trailing slash; refuse anything but http on 127.0.0.1 / ::1."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in ALLOWED_HOSTS or parts.port is None:
        raise SystemExit(f"refusing {url!r}: only http://127.0.0.1:PORT or http://[::1]:PORT")
    return f"http://{parts.netloc}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process from /proc (Linux), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) CPU ticks over all cores from /proc/stat (Linux), or None."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    ticks = [int(value) for value in first[1:9]]  # user nice system idle iowait irq softirq steal
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def busy_percent(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Share of all cores' time spent busy between two samples, in percent."""
    if before is None or after is None or after[1] == before[1]:
        return None
    return round(100 * (after[0] - before[0]) / (after[1] - before[1]), 1)


def wait_healthy(base_url: str, proc: subprocess.Popen[bytes] | None, limit_s: float) -> None:
    """Poll ``GET /health`` until it answers 200; raise if the server exits or time runs out."""
    deadline = time.monotonic() + limit_s
    with httpx.Client(base_url=base_url, trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"server exited with code {proc.returncode} during startup")
            with contextlib.suppress(httpx.HTTPError):
                if client.get("/health").status_code == 200:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"GET {base_url}/health did not answer 200 within {limit_s:.0f} s")


@dataclass
class ManagedServer:
    """A server child process with its own temporary directory and SQLite database."""

    env_overrides: dict[str, str]
    startup_timeout: float
    stop_timeout: float = 10.0
    keep_tmp: bool = False
    tmpdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tbc-fanout-")))
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.tmpdir / 'bench.db'}"

    @property
    def log_path(self) -> Path:
        return self.tmpdir / "server.log"

    def argv(self) -> list[str]:
        """The server's command line (``bench/compare.py`` starts the reference through this)."""
        port = str(self.port)
        return [
            sys.executable,
            "-m",
            "token_bowl_chat_server",
            "--host",
            "127.0.0.1",
            "--port",
            port,
        ]

    def start(self) -> None:
        env = {**os.environ, "DATABASE_URL": self.database_url, **self.env_overrides}
        log(f"starting server on {self.base_url} (log: {self.log_path})")
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv(),
                env=env,
                cwd=self.tmpdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        try:
            wait_healthy(self.base_url, self.proc, self.startup_timeout)
        except RuntimeError:
            log(f"server log tail:\n{self.log_tail()}")
            raise

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self.proc.pid) if self.proc else None

    def stop(self) -> int | None:
        """SIGTERM the server by PID, SIGKILL it after ``stop_timeout``; return its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            log(f"stopping server (pid {self.proc.pid})")
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                log(f"server {self.proc.pid} ignored SIGTERM for {self.stop_timeout} s: SIGKILL")
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def log_problems(self) -> int:
        """Lines of the server log that look like errors."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return sum(1 for line in text.splitlines() if "Traceback" in line or "ERROR" in line)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def cleanup(self) -> None:
        if not self.keep_tmp:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


@dataclass(frozen=True)
class Target:
    base_url: str
    server: ManagedServer | None

    @property
    def ws_url(self) -> str:
        return "ws" + self.base_url.removeprefix("http") + "/ws"

    def cpu_seconds(self) -> float | None:
        return self.server.cpu_seconds() if self.server else None


# --------------------------------------------------------------------------- clients


async def register_one(client: httpx.AsyncClient, username: str) -> str:
    """Register ``username`` and return its API key; retry on 429 and 5xx."""
    delay = 0.05
    while True:
        response = await client.post("/register", json={"username": username})
        if response.status_code == 201:
            key: str = response.json()["api_key"]
            return key
        if response.status_code != 429 and response.status_code < 500:
            raise RuntimeError(f"POST /register -> {response.status_code}: {response.text[:300]}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


async def register_users(base_url: str, names: Sequence[str], limit_s: float) -> list[str]:
    semaphore = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=base_url, trust_env=False, timeout=10.0) as client:

        async def one(name: str) -> str:
            async with semaphore:
                return await register_one(client, name)

        async with asyncio.timeout(limit_s):
            return list(await asyncio.gather(*(one(name) for name in names)))


async def open_ws(ws_url: str, api_key: str, deflate: bool) -> ClientConnection:
    return await connect(
        f"{ws_url}?api_key={api_key}",
        compression="deflate" if deflate else None,
        proxy=None,
        open_timeout=30,
        close_timeout=2,
    )


def bench_content(sender: int, index: int, size: int) -> str:
    head = f"bench;s={sender};i={index};t={time.time_ns()};"
    return head + "x" * (size - len(head))


# --------------------------------------------------------------------------- receiver worker


class Countdown:
    """Sets ``done`` once every armed receiver has all messages or is closed."""

    def __init__(self) -> None:
        self.remaining = 0
        self.done = asyncio.Event()

    def tick(self) -> None:
        self.remaining -= 1
        if self.remaining <= 0:
            self.done.set()


@dataclass(eq=False)
class Receiver:
    ws: ClientConnection | None = None
    received: int = 0
    last_ns: int = 0
    last_seq: int = -1
    seq_out_of_order: int = 0
    seq_missing: int = 0
    other_frames: int = 0
    close_code: int | None = None
    closing: bool = False
    target: int = sys.maxsize
    countdown: Countdown | None = None
    finished: bool = False

    async def consume(self, latencies: LatencyHistogram) -> None:
        assert self.ws is not None
        try:
            async for frame in self.ws:
                text = frame if isinstance(frame, str) else frame.decode()
                if not self.on_delivery(text, latencies):
                    await self.on_other(text)
        except ConnectionClosed:
            pass
        finally:
            if not self.closing:
                self.close_code = self.ws.close_code or 1006
            self.finish()

    def on_delivery(self, text: str, latencies: LatencyHistogram) -> bool:
        """Account one frame if it is a benchmark message; False for anything else."""
        now = time.time_ns()
        content = CONTENT_RE.search(text)
        if content is None:
            return False
        latencies.add(now - int(content.group(3)))
        self.received += 1
        self.last_ns = now
        seq = SEQ_RE.search(text)
        if seq is None:
            self.seq_missing += 1
        else:
            value = int(seq.group(1))
            if value <= self.last_seq:
                self.seq_out_of_order += 1
            self.last_seq = value
        if self.received >= self.target:
            self.finish()
        return True

    async def on_other(self, text: str) -> None:
        assert self.ws is not None
        data = json.loads(text)
        if isinstance(data, dict) and data.get("type") == "ping":
            await self.ws.send(PONG)
        else:
            self.other_frames += 1

    def arm(self, expected: int, countdown: Countdown) -> None:
        self.target = expected
        if self.ws is None or self.close_code is not None or self.received >= expected:
            self.finished = True
            return
        self.countdown = countdown
        countdown.remaining += 1

    def finish(self) -> None:
        if self.countdown is not None and not self.finished:
            self.finished = True
            self.countdown.tick()


async def read_command() -> dict[str, Any]:
    line = await asyncio.to_thread(sys.stdin.readline)
    return json.loads(line) if line.strip() else {"cmd": "eof"}


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def connect_receivers(
    setup: dict[str, Any], latencies: LatencyHistogram
) -> tuple[list[Receiver], list[asyncio.Task[None]], list[str]]:
    receivers = [Receiver() for _ in setup["keys"]]
    tasks: list[asyncio.Task[None]] = []
    semaphore = asyncio.Semaphore(setup["connect_concurrency"])

    async def open_one(receiver: Receiver, key: str) -> None:
        async with semaphore:
            receiver.ws = await open_ws(setup["ws_url"], key, setup["deflate"])
        tasks.append(asyncio.create_task(receiver.consume(latencies)))

    pairs = zip(receivers, setup["keys"], strict=True)
    outcomes = await asyncio.gather(*(open_one(r, k) for r, k in pairs), return_exceptions=True)
    failures = [repr(outcome) for outcome in outcomes if isinstance(outcome, BaseException)]
    return receivers, tasks, failures


async def drain(receivers: list[Receiver], expected: int, limit_s: float) -> bool:
    """Wait until every receiver has ``expected`` messages or is closed; False on timeout."""
    countdown = Countdown()
    for receiver in receivers:
        receiver.arm(expected, countdown)
    if countdown.remaining == 0:
        return True
    try:
        await asyncio.wait_for(countdown.done.wait(), limit_s)
    except TimeoutError:
        return False
    return True


async def close_receivers(receivers: list[Receiver], tasks: list[asyncio.Task[None]]) -> None:
    for receiver in receivers:
        receiver.closing = True
    sockets = [receiver.ws for receiver in receivers if receiver.ws is not None]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(10):
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def receiver_report(receivers: list[Receiver], expected: int) -> dict[str, Any]:
    closes = Counter(r.close_code for r in receivers if r.close_code is not None)
    return {
        "received": sum(r.received for r in receivers),
        "lost": sum(max(0, expected - r.received) for r in receivers),
        "extra": sum(max(0, r.received - expected) for r in receivers),
        "closes": {str(code): count for code, count in closes.items()},
        "seq_out_of_order": sum(r.seq_out_of_order for r in receivers),
        "seq_missing": sum(r.seq_missing for r in receivers),
        "other_frames": sum(r.other_frames for r in receivers),
        "last_ns": max((r.last_ns for r in receivers), default=0),
    }


async def worker_main() -> None:
    """One receiver process: connect, report, wait for ``drain``, report the counts."""
    setup = await read_command()
    latencies = LatencyHistogram()
    receivers, tasks, failures = await connect_receivers(setup, latencies)
    emit({"event": "connected", "failed": len(failures), "errors": failures[:3]})
    cpu_start = time.process_time()
    command = await read_command()
    expected = int(command.get("expected", 0))
    started = time.monotonic()
    complete = command.get("cmd") == "drain" and await drain(
        receivers, expected, command["limit_s"]
    )
    drain_s = time.monotonic() - started
    await close_receivers(receivers, tasks)
    report = receiver_report(receivers, expected)
    report |= {"event": "result", "complete": complete, "drain_s": drain_s}
    report |= {"latency": latencies.to_json(), "cpu_s": time.process_time() - cpu_start}
    emit(report)


# --------------------------------------------------------------------------- senders


class Budget:
    """Send attempts left, shared by all senders (``--max-messages``)."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


class Sender:
    """One sending connection with a window of in-flight sends matched by ``request_id``."""

    def __init__(self, index: int, ws: ClientConnection, window: int, content_bytes: int):
        self.index = index
        self.ws = ws
        self.window = window
        self.content_bytes = content_bytes
        self.slots = asyncio.Semaphore(window)
        self.pending: OrderedDict[str, int] = OrderedDict()
        self.drained = asyncio.Event()
        self.drained.set()
        self.acked = 0
        self.rejected = 0
        self.errors: list[str] = []
        self.first_send_ns = 0
        self.last_ack_ns = 0
        self.acks = LatencyHistogram()
        self.close_code: int | None = None
        self.closing = False
        self.reader: asyncio.Task[None] | None = None

    async def consume(self) -> None:
        try:
            async for frame in self.ws:
                data = json.loads(frame)
                if isinstance(data, dict):
                    await self.on_frame(data)
        except ConnectionClosed:
            pass
        finally:
            if not self.closing:
                self.close_code = self.ws.close_code or 1006
            for _ in range(self.window):  # wake a send loop blocked on the window
                self.slots.release()
            self.drained.set()

    async def on_frame(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "message_sent":
            self.settle(data.get("request_id"), accepted=True)
        elif kind == "error":
            if len(self.errors) < 3:
                self.errors.append(json.dumps(data)[:300])
            self.settle(data.get("request_id"), accepted=False)
        elif kind == "ping":
            await self.ws.send(PONG)
        # anything else: room messages of the other senders

    def settle(self, request_id: object, *, accepted: bool) -> None:
        key = None if request_id is None else str(request_id)
        if key is not None and key in self.pending:
            sent_ns = self.pending.pop(key)
        elif key is None and self.pending:  # server without request ids: replies are in order
            sent_ns = self.pending.popitem(last=False)[1]
        else:
            return
        now = time.time_ns()
        if accepted:
            self.acked += 1
            self.last_ack_ns = now
            self.acks.add(now - sent_ns)
        else:
            self.rejected += 1
        self.slots.release()
        if not self.pending:
            self.drained.set()

    async def run(self, budget: Budget, stop_ns: int, interval_ns: int) -> None:
        """Send until ``stop_ns`` or the budget runs out; optionally one send per interval."""
        next_ns = time.time_ns()
        index = 0
        while self.close_code is None and time.time_ns() < stop_ns and budget.take():
            try:
                async with asyncio.timeout(max(0.0, (stop_ns - time.time_ns()) / 1e9)):
                    await self.slots.acquire()
                    if interval_ns:
                        next_ns += interval_ns
                        await asyncio.sleep(max(0.0, (next_ns - time.time_ns()) / 1e9))
            except TimeoutError:
                break
            if self.close_code is not None:
                break
            await self.send_one(index)
            index += 1

    async def send_one(self, index: int) -> None:
        request_id = f"{self.index}-{index}"
        content = bench_content(self.index, index, self.content_bytes)
        frame = json.dumps({"type": "message", "content": content, "request_id": request_id})
        now = time.time_ns()
        self.first_send_ns = self.first_send_ns or now
        self.pending[request_id] = now
        self.drained.clear()
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(frame)

    async def wait_acks(self, limit_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drained.wait(), limit_s)

    async def close(self) -> None:
        self.closing = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)


async def open_senders(keys: Sequence[str], opts: argparse.Namespace, ws_url: str) -> list[Sender]:
    senders = []
    for index, key in enumerate(keys):
        ws = await open_ws(ws_url, key, opts.deflate)
        sender = Sender(index, ws, opts.window, opts.content_bytes)
        sender.reader = asyncio.create_task(sender.consume())
        senders.append(sender)
    return senders


@dataclass
class SendPhase:
    start_ns: int
    end_ns: int


async def run_senders(senders: list[Sender], opts: argparse.Namespace) -> SendPhase:
    budget = Budget(opts.max_messages)
    start_ns = time.time_ns()
    stop_ns = start_ns + int(opts.duration * 1e9)
    interval_ns = int(1e9 * len(senders) / opts.rate) if opts.rate else 0
    await asyncio.gather(*(sender.run(budget, stop_ns, interval_ns) for sender in senders))
    await asyncio.gather(*(sender.wait_acks(opts.drain_timeout) for sender in senders))
    end_ns = max([s.last_ack_ns for s in senders] + [start_ns + 1])
    return SendPhase(start_ns=start_ns, end_ns=end_ns)


# --------------------------------------------------------------------------- coordinator


@dataclass(eq=False)
class Worker:
    proc: asyncio.subprocess.Process
    n_keys: int

    async def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()

    async def read(self, limit_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        async with asyncio.timeout(limit_s):
            line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"receiver worker {self.proc.pid} exited ({self.proc.returncode})")
        event: dict[str, Any] = json.loads(line)
        return event

    async def stop(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            async with asyncio.timeout(15):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def split_evenly(items: Sequence[str], parts: int) -> list[list[str]]:
    return [list(items[i::parts]) for i in range(parts) if items[i::parts]]


async def start_workers(keys: Sequence[str], opts: argparse.Namespace, ws_url: str) -> list[Worker]:
    chunks = split_evenly(keys, opts.receiver_procs)
    concurrency = max(1, opts.connect_concurrency // len(chunks))
    workers = []
    for chunk in chunks:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            "--worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
        )
        worker = Worker(proc, len(chunk))
        workers.append(worker)
        setup = {"ws_url": ws_url, "keys": chunk, "deflate": opts.deflate}
        await worker.send(setup | {"connect_concurrency": concurrency})
    return workers


async def connect_phase(workers: list[Worker], n: int) -> int:
    """Wait for every worker to connect its receivers; return how many failed."""
    limit_s = 60 + n * 0.2
    events = await asyncio.gather(*(worker.read(limit_s) for worker in workers))
    failed: int = sum(event["failed"] for event in events)
    for event in events:
        for error in event["errors"]:
            log(f"receiver connect failed: {error}")
    return failed


async def drain_phase(workers: list[Worker], expected: int, limit_s: float) -> list[dict[str, Any]]:
    for worker in workers:
        await worker.send({"cmd": "drain", "expected": expected, "limit_s": limit_s})
    return list(await asyncio.gather(*(worker.read(limit_s + 30) for worker in workers)))


def summarize(
    n: int,
    senders: list[Sender],
    phase: SendPhase,
    reports: list[dict[str, Any]],
    connect_failures: int,
) -> dict[str, Any]:
    sent = sum(s.acked for s in senders)
    latencies = LatencyHistogram()
    acks = LatencyHistogram()
    closes: Counter[str] = Counter()
    for report in reports:
        latencies.merge_json(report["latency"])
        closes.update(report["closes"])
    for sender in senders:
        acks.merge_json(sender.acks.to_json())
    received = sum(r["received"] for r in reports)
    last_delivery_ns = max([r["last_ns"] for r in reports] + [phase.start_ns + 1])
    send_s = (phase.end_ns - phase.start_ns) / 1e9
    deliver_s = (last_delivery_ns - phase.start_ns) / 1e9
    return {
        "n_receivers": n,
        "n_senders": len(senders),
        "messages_sent": sent,
        "messages_per_s": round(sent / send_s, 1),
        "delivered_frames": received,
        "delivered_frames_per_s": round(received / deliver_s, 1),
        "latency_ms_p50": latencies.quantile_ms(0.50),
        "latency_ms_p99": latencies.quantile_ms(0.99),
        "latency_ms_max": latencies.max_ms(),
        "expected_deliveries": sent * n,
        "lost_messages": sum(r["lost"] for r in reports) + connect_failures * sent,
        "extra_deliveries": sum(r["extra"] for r in reports),
        "slow_consumer_closes": closes.pop(str(SLOW_CONSUMER), 0),
        "other_closes": dict(closes),
        "receiver_connect_failures": connect_failures,
        "seq_out_of_order": sum(r["seq_out_of_order"] for r in reports),
        "seq_missing": sum(r["seq_missing"] for r in reports),
        "send_rejected": sum(s.rejected for s in senders),
        "send_unacked": sum(len(s.pending) for s in senders),
        "sender_closes": [s.close_code for s in senders if s.close_code is not None],
        "send_errors_sample": [e for s in senders for e in s.errors][:3],
        "ack_ms_p50": acks.quantile_ms(0.50),
        "ack_ms_p99": acks.quantile_ms(0.99),
        "send_phase_s": round(send_s, 3),
        "delivery_phase_s": round(deliver_s, 3),
        "drain_wait_s": round(max(r["drain_s"] for r in reports), 3),
        "drain_complete": all(r["complete"] for r in reports),
        "receiver_cpu_s": round(sum(r["cpu_s"] for r in reports), 2),
        "receiver_cpu_s_max": round(max(r["cpu_s"] for r in reports), 2),
    }


async def run_once(n: int, opts: argparse.Namespace, target: Target) -> dict[str, Any]:
    """One measurement with ``n`` receivers against an already healthy server."""
    tag = secrets.token_hex(3)
    names = [f"bench-{tag}-r{i}" for i in range(n)]
    names += [f"bench-{tag}-s{j}" for j in range(opts.senders)]
    log(f"N={n}: registering {len(names)} users")
    keys = await register_users(target.base_url, names, limit_s=60 + len(names) * 0.5)
    workers: list[Worker] = []
    senders: list[Sender] = []
    try:
        workers = await start_workers(keys[:n], opts, target.ws_url)
        log(f"N={n}: connecting receivers in {len(workers)} worker process(es)")
        failures = await connect_phase(workers, n)
        senders = await open_senders(keys[n:], opts, target.ws_url)
        await asyncio.sleep(opts.settle)
        cpu_before = target.cpu_seconds()
        own_cpu_before = time.process_time()
        machine_before = machine_cpu_ticks()
        log(f"N={n}: sending for up to {opts.duration} s / {opts.max_messages} messages")
        phase = await run_senders(senders, opts)
        sent = sum(s.acked for s in senders)
        log(f"N={n}: {sent} messages accepted; draining (up to {opts.drain_timeout} s)")
        reports = await drain_phase(workers, sent, opts.drain_timeout)
        cpu_after = target.cpu_seconds()
        result = summarize(n, senders, phase, reports, failures)
        result["measured_wall_s"] = round((time.time_ns() - phase.start_ns) / 1e9, 3)
        if cpu_before is not None and cpu_after is not None:
            result["server_cpu_s"] = round(cpu_after - cpu_before, 2)
        result["sender_cpu_s"] = round(time.process_time() - own_cpu_before, 2)
        result["machine_cpu_busy_pct"] = busy_percent(machine_before, machine_cpu_ticks())
        result["machine_cores"] = os.cpu_count()
        return result
    finally:
        await asyncio.gather(*(sender.close() for sender in senders), return_exceptions=True)
        await asyncio.gather(*(worker.stop() for worker in workers), return_exceptions=True)


def run_config(opts: argparse.Namespace, target: Target) -> dict[str, Any]:
    server = target.server
    return {
        "server_url": target.base_url,
        "server_managed": server is not None,
        "database_url": server.database_url if server else None,
        "server_env": server.env_overrides if server else None,
        "duration_s": opts.duration,
        "max_messages": opts.max_messages,
        "window": opts.window,
        "rate_limit_per_s": opts.rate or None,
        "content_bytes": opts.content_bytes,
        "receiver_procs": opts.receiver_procs,
        "client_deflate": opts.deflate,
        "uvloop": uvloop_available(),
    }


def server_env(opts: argparse.Namespace) -> dict[str, str]:
    env = dict(QUIET_SERVER)
    if not opts.keep_rate_limit:
        env |= NO_RATE_LIMIT
    for item in opts.server_env:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--server-env wants KEY=VALUE, got {item!r}")
        env[key] = value
    return env


def measure(n: int, opts: argparse.Namespace) -> dict[str, Any]:
    """Start a server when needed, run one N, always stop the server; return the JSON record."""
    if opts.url:
        server = None
        target = Target(check_local(opts.url), None)
    else:
        server = ManagedServer(server_env(opts), opts.startup_timeout, keep_tmp=opts.keep_tmp)
        target = Target(server.base_url, server)
    record: dict[str, Any] = {"n_receivers": n, "n_senders": opts.senders}
    try:
        if server is not None:
            server.start()
        else:
            wait_healthy(target.base_url, None, opts.startup_timeout)
        record |= run_async(run_once(n, opts, target))
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        log(f"N={n} failed: {record['error']}")
    finally:
        if server is not None:
            alive = server.proc is not None and server.proc.poll() is None
            record["server_alive_at_end"] = alive
            record["server_returncode"] = server.stop()
            record["server_log_problems"] = server.log_problems()
            if record["server_log_problems"] or not alive:
                log(f"server log tail:\n{server.log_tail()}")
            server.cleanup()
    return record | run_config(opts, target)


# --------------------------------------------------------------------------- command line


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def sweep_list(text: str) -> list[int]:
    return [positive_int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Room fan-out benchmark: N WebSocket receivers, S senders at full speed. "
        "Prints one JSON line per N on stdout; progress on stderr.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--receivers", type=positive_int, default=50, help="N, receiving connections")
    add("--sweep", type=sweep_list, help="run several N in turn, e.g. 50,200,500")
    add("--senders", type=positive_int, default=4, help="S, sending connections")
    add("--window", type=positive_int, default=8, help="in-flight sends per sender")
    add("--duration", type=float, default=10.0, help="seconds of sending, at most")
    add("--max-messages", type=positive_int, default=20000, help="send attempts, at most")
    add("--rate", type=float, default=0.0, help="cap on total sends/s (0: full speed)")
    add("--content-bytes", type=positive_int, default=64, help="message content length")
    add("--drain-timeout", type=float, default=10.0, help="seconds to wait for deliveries")
    add("--receiver-procs", type=positive_int, default=2, help="receiver worker processes")
    add("--connect-concurrency", type=positive_int, default=50, help="receivers connecting")
    add("--settle", type=float, default=1.0, help="pause between connecting and sending, s")
    add("--deflate", action="store_true", help="offer permessage-deflate to the server")
    add("--url", help="use this running server instead (http://127.0.0.1 or [::1] only)")
    add("--server-env", action="append", default=[], metavar="KEY=VALUE", help="server env")
    add("--keep-rate-limit", action="store_true", help="keep the server's send rate limit")
    add("--startup-timeout", type=float, default=30.0, help="seconds for GET /health to pass")
    add("--keep-tmp", action="store_true", help="keep the server's tmp dir (db and log)")
    add("--worker", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.url:
        check_local(opts.url)
    return opts


def raise_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.worker:
        run_async(worker_main())
        return 0
    signal.signal(signal.SIGTERM, raise_on_sigterm)  # so the server is still stopped
    failed = False
    for n in opts.sweep or [opts.receivers]:
        record = measure(n, opts)
        failed = failed or "error" in record
        print(json.dumps(record), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
