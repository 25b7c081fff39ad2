"""Our server against the reference ceiling (``bench/reference.py``), the same load on both.

Every case runs on a fresh server of each kind, alternating (ours, reference, ours,
reference, ...) for ``--rounds`` rounds, and prints one JSON line with the median figure of each
server, their ratio (ours / reference) and, per run, the server's CPU beside the load
generator's with the verdict which of them saturated. Cases (issue 10):

* ``fanout-200``, ``fanout-500``: room fan-out, 2 senders x window 16 at full speed, driven by
  ``bench/fanout.py`` (receivers in several processes): delivered frames/s, lost, out of order;
* ``steady-500``: 10 messages/s to 500 receivers: p99 send-to-receive latency;
* ``rest-post-16``: ``POST /messages`` from 16 concurrent keep-alive connections: requests/s;
* ``unread-count-1k`` / ``-1m``: ``GET /messages/unread/count`` p50 with 1,000 / 1,000,000
  room messages of history (seeded straight into a fresh SQLite file, after the migrations);
* ``mark-all-read-1k`` / ``-1m``: ``POST /messages/mark-all-read`` p50 with nothing unread;
* ``idle-20k``: server memory per idle authenticated WebSocket connection, 20,000 of them
  (``bench/idle.py``): KiB each.

The REST load comes from a small HTTP/1.1 keep-alive client (this script with
``--http-worker``, one process per group of connections) that parses only the status line and
``Content-Length``. Every loop is bounded in count and time; only 127.0.0.1 is a target; the
servers are stopped by their PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fanout  # the sibling script, imported as a module
import idle

SCRIPT = Path(__file__).resolve()
REFERENCE = SCRIPT.parent / "reference.py"
SATURATED = 0.85  # share of one core above which a process counts as saturated
ALL_CASES = (
    "fanout-200",
    "fanout-500",
    "steady-500",
    "rest-post-16",
    "unread-count-1k",
    "mark-all-read-1k",
    "unread-count-1m",
    "mark-all-read-1m",
    "idle-20k",
)


def log(message: str) -> None:
    print(f"[compare {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class ReferenceServer(fanout.ManagedServer):
    """``bench/reference.py`` as a child process, started and stopped like our server."""

    rest = "fastapi"  # what serves its REST routes (compare.py --reference-rest)

    def argv(self) -> list[str]:
        return [sys.executable, str(REFERENCE), "--port", str(self.port), "--rest", self.rest]


# --------------------------------------------------------------------------- history seeding


class HistoryTemplates:
    """Seeded databases, one per history size, made once per run and copied for every server."""

    def __init__(self) -> None:
        self.root: Path | None = None  # made on first use
        self.files: dict[int, Path] = {}

    def install(self, server: fanout.ManagedServer, count: int, limit_s: float) -> float:
        """Put a database with ``count`` messages where ``server`` expects it; seconds taken."""
        started = time.monotonic()
        if count not in self.files:
            if self.root is None:
                self.root = Path(tempfile.mkdtemp(prefix="tbc-compare-history-"))
            template = fanout.ManagedServer({}, 0, tmpdir=self.root / str(count))
            template.tmpdir.mkdir()
            log(f"seeding {count} messages of history (once per run)")
            seed_history(template, count, limit_s)
            self.files[count] = template.tmpdir / "bench.db"
        shutil.copyfile(self.files[count], server.tmpdir / "bench.db")
        return time.monotonic() - started

    def cleanup(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def seed_history(server: fanout.ManagedServer, count: int, limit_s: float) -> float:
    """Migrate ``server``'s fresh SQLite file, then insert ``count`` room messages; seconds taken.

    The rows go in with one ``executemany`` per 50,000 in a single transaction, as the server's
    own migrations left the schema; the ``counters`` row is moved past them so the server's next
    ``seq`` follows the history.
    """
    from token_bowl_chat_server.storage.database import Database

    started = time.monotonic()
    database = Database(server.database_url)

    async def migrate() -> None:
        try:
            await database.migrate()
        finally:
            await database.close()

    asyncio.run(migrate())
    path = server.database_url.removeprefix("sqlite+aiosqlite:///")
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")  # a scratch file: durability is not the point here
        now_ms = int(time.time() * 1000) - count
        seq = 0
        with db:
            while seq < count:
                if time.monotonic() - started > limit_s:
                    raise RuntimeError(f"seeding {count} messages took over {limit_s:.0f} s")
                batch = range(seq + 1, min(count, seq + 50_000) + 1)
                db.executemany(
                    "INSERT INTO messages (seq, id, message_type, from_username, content,"
                    " created_at) VALUES (?, ?, 'room', 'history-seeder', ?, ?)",
                    ((s, str(uuid.UUID(int=s)), f"history message {s}", now_ms + s) for s in batch),
                )
                seq = batch[-1]
            updated = db.execute(
                "UPDATE counters SET last_seq = ?, room_messages = ? WHERE id = 1", (count, count)
            ).rowcount
            if updated != 1:
                raise RuntimeError("the migrated database has no counters row")
    finally:
        db.close()
    return time.monotonic() - started


HISTORY = HistoryTemplates()


# --------------------------------------------------------------------------- HTTP load worker


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response; return its status. Only Content-Length or chunked bodies."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


def http_request(method: str, path: str, key: str, body: bytes) -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def http_worker_main() -> None:
    """Open the connections, say ``ready``, wait for ``go``, run, print the result line."""
    setup = json.loads(sys.stdin.readline())
    requests = [
        http_request(setup["method"], setup["path"], key, setup["body"].encode())
        for key in setup["keys"]
    ]
    streams = [await asyncio.open_connection("127.0.0.1", setup["port"]) for _ in requests]
    fanout.emit({"event": "ready"})
    await asyncio.to_thread(sys.stdin.readline)  # "go"
    latencies = fanout.LatencyHistogram()
    statuses: Counter[str] = Counter()
    budget = fanout.Budget(setup["max_requests"])
    stop = time.monotonic() + setup["duration_s"]
    cpu_start = time.process_time()
    started = time.monotonic()

    async def one_connection(request: bytes, reader: asyncio.StreamReader, writer: Any) -> None:
        while time.monotonic() < stop and budget.take():
            sent = time.perf_counter_ns()
            try:
                writer.write(request)
                status = str(await read_response(reader))
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                statuses[type(exc).__name__] += 1
                return
            statuses[status] += 1
            latencies.add(time.perf_counter_ns() - sent)

    connections = [
        one_connection(request, reader, writer)
        for request, (reader, writer) in zip(requests, streams, strict=True)
    ]
    try:
        async with asyncio.timeout(setup["duration_s"] + 30):
            await asyncio.gather(*connections)
    finally:
        wall = time.monotonic() - started
        for _, writer in streams:
            writer.close()
    fanout.emit(
        {
            "event": "result",
            "statuses": dict(statuses),
            "wall_s": wall,
            "cpu_s": time.process_time() - cpu_start,
            "latency": latencies.to_json(),
        }
    )


@dataclass
class HttpLoad:
    method: str
    path: str
    body: str
    connections: int
    processes: int
    duration_s: float
    max_requests: int
    warmup_requests: int = 0


async def run_http_load(
    server: fanout.ManagedServer, keys: Sequence[str], load: HttpLoad
) -> dict[str, Any]:
    """Drive ``load`` from worker processes; return requests/s, latencies and the CPU split."""
    workers: list[fanout.Worker] = []
    try:
        per_proc = fanout.split_evenly(list(keys), load.processes)
        for chunk in per_proc:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(SCRIPT),
                "--http-worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=fanout.LINE_LIMIT,
            )
            worker = fanout.Worker(proc, len(chunk))
            workers.append(worker)
            setup = {
                "port": server.port,
                "keys": chunk,
                "method": load.method,
                "path": load.path,
                "body": load.body,
                "duration_s": load.duration_s,
                "max_requests": max(1, load.max_requests // len(per_proc)),
            }
            await worker.send(setup)
        await asyncio.gather(*(worker.read(60) for worker in workers))  # ready
        server_cpu = server.cpu_seconds()
        machine = fanout.machine_cpu_ticks()
        started = time.monotonic()
        for worker in workers:
            await worker.send({"cmd": "go"})
        reports = await asyncio.gather(*(w.read(load.duration_s + 60) for w in workers))
        wall = time.monotonic() - started
        server_cpu_after = server.cpu_seconds()
    finally:
        await asyncio.gather(*(worker.stop() for worker in workers), return_exceptions=True)
    statuses: Counter[str] = Counter()
    latencies = fanout.LatencyHistogram()
    for report in reports:
        statuses.update(report["statuses"])
        latencies.merge_json(report["latency"])
    ok = sum(n for code, n in statuses.items() if code.startswith("2"))
    run_wall = max(report["wall_s"] for report in reports)
    return {
        "requests_ok": ok,
        "statuses": dict(statuses),
        "requests_per_s": round(ok / run_wall, 1),
        "latency_ms_p50": latencies.quantile_ms(0.5),
        "latency_ms_p99": latencies.quantile_ms(0.99),
        "wall_s": round(wall, 3),
        "server_cpu_s": None
        if server_cpu is None or server_cpu_after is None
        else round(server_cpu_after - server_cpu, 2),
        "generator_cpu_s": round(sum(report["cpu_s"] for report in reports), 2),
        "generator_cpu_s_max": round(max(report["cpu_s"] for report in reports), 2),
        "machine_cpu_busy_pct": fanout.busy_percent(machine, fanout.machine_cpu_ticks()),
    }


# --------------------------------------------------------------------------- cases


def verdict(server_cpu: float | None, generator_max: float, wall: float, busy: float | None) -> str:
    """Which side ran out of CPU: one process near a full core, or the machine."""
    if server_cpu is not None and server_cpu / wall >= SATURATED:
        return "server"
    if generator_max / wall >= SATURATED:
        return "generator"
    if busy is not None and busy >= 90:
        return "machine"
    return "none"


@dataclass(frozen=True)
class Case:
    name: str
    figure: str  # key of the run record that the comparison is about
    better: str  # "higher" or "lower"
    run: Callable[[fanout.ManagedServer, argparse.Namespace], dict[str, Any]]
    history: int = 0  # room messages to seed before the server starts
    server_env: tuple[tuple[str, str], ...] = ()  # our server's settings for this case


def fanout_run(
    receivers: int, rate: float
) -> Callable[[fanout.ManagedServer, argparse.Namespace], dict[str, Any]]:
    def run(server: fanout.ManagedServer, opts: argparse.Namespace) -> dict[str, Any]:
        argv = ["--senders", "2", "--window", "16", "--duration", str(opts.duration)]
        argv += ["--max-messages", str(opts.max_messages), "--rate", str(rate)]
        argv += ["--receiver-procs", str(opts.receiver_procs), "--drain-timeout", "20"]
        fan_opts = fanout.parse_args(argv)
        target = fanout.Target(server.base_url, server)
        record = fanout.run_async(fanout.run_once(receivers, fan_opts, target))
        wall = record["measured_wall_s"]
        generator = max(record["receiver_cpu_s_max"], record["sender_cpu_s"])
        record["generator_cpu_s"] = round(record["receiver_cpu_s"] + record["sender_cpu_s"], 2)
        record["saturated"] = verdict(
            record.get("server_cpu_s"), generator, wall, record["machine_cpu_busy_pct"]
        )
        return record

    return run


async def register(server: fanout.ManagedServer, count: int) -> list[str]:
    tag = os.urandom(3).hex()
    names = [f"cmp-{tag}-{i}" for i in range(count)]
    return await fanout.register_users(server.base_url, names, limit_s=60 + count)


def http_run(
    method: str, path: str, connections: int, *, prepare: str | None = None
) -> Callable[[fanout.ManagedServer, argparse.Namespace], dict[str, Any]]:
    processes = 2 if connections > 1 else 1

    def run(server: fanout.ManagedServer, opts: argparse.Namespace) -> dict[str, Any]:
        keys = fanout.run_async(register(server, connections))
        if prepare is not None:  # e.g. mark everything read first: "nothing unread"
            import httpx

            with httpx.Client(base_url=server.base_url, trust_env=False, timeout=120) as client:
                for key in keys:
                    client.post(prepare, headers={"X-API-Key": key}).raise_for_status()
        body = json.dumps({"content": "compare bench message"}) if method == "POST" else ""
        load = HttpLoad(
            method,
            path,
            body,
            connections,
            processes,
            duration_s=opts.duration,
            max_requests=opts.max_requests,
        )
        record = fanout.run_async(run_http_load(server, keys, load))
        record["saturated"] = verdict(
            record["server_cpu_s"],
            record["generator_cpu_s_max"],
            record["wall_s"],
            record["machine_cpu_busy_pct"],
        )
        return record

    return run


# Idle connections: the caps and the stale timeout would close or refuse them, not memory.
IDLE_ENV = (
    ("TOKEN_BOWL_WS_MAX_CONNECTIONS_PER_USER", "100000"),
    ("TOKEN_BOWL_WS_MAX_CONNECTIONS_PER_ADDRESS", "100000"),
    ("TOKEN_BOWL_HEARTBEAT_TIMEOUT", "3600"),
)


def idle_run(server: fanout.ManagedServer, opts: argparse.Namespace) -> dict[str, Any]:
    assert server.proc is not None
    return idle.measure(
        server.base_url, server.proc.pid, opts.idle_connections, opts.idle_procs, limit_s=240
    )


def cases() -> dict[str, Case]:
    read_all = "/messages/mark-all-read"
    listed = [
        Case("fanout-200", "delivered_frames_per_s", "higher", fanout_run(200, 0.0)),
        Case("fanout-500", "delivered_frames_per_s", "higher", fanout_run(500, 0.0)),
        Case("steady-500", "latency_ms_p99", "lower", fanout_run(500, 10.0)),
        Case("rest-post-16", "requests_per_s", "higher", http_run("POST", "/messages", 16)),
    ]
    idle_case = Case("idle-20k", "kib_per_connection", "lower", idle_run, server_env=IDLE_ENV)
    listed.append(idle_case)
    for label, history in (("1k", 1_000), ("1m", 1_000_000)):
        count = http_run("GET", "/messages/unread/count", 1)
        listed.append(Case(f"unread-count-{label}", "latency_ms_p50", "lower", count, history))
        mark = http_run("POST", read_all, 1, prepare=read_all)
        listed.append(Case(f"mark-all-read-{label}", "latency_ms_p50", "lower", mark, history))
    return {case.name: case for case in listed}


def measure(case: Case, kind: str, opts: argparse.Namespace) -> dict[str, Any]:
    """One run of ``case`` on a fresh server of ``kind`` ("ours" or "reference")."""
    env = fanout.QUIET_SERVER | fanout.NO_RATE_LIMIT
    if kind == "ours":
        env |= dict(case.server_env)
        env |= dict(item.split("=", 1) for item in opts.server_env)
    ReferenceServer.rest = opts.reference_rest
    server_class = fanout.ManagedServer if kind == "ours" else ReferenceServer
    server = server_class(env, opts.startup_timeout)
    record: dict[str, Any] = {}
    try:
        if case.history and kind == "ours":
            seconds = HISTORY.install(server, case.history, opts.seed_timeout)
            record["seed_s"] = round(seconds, 1)
        server.start()
        record |= case.run(server, opts)
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        log(f"{case.name} on {kind} failed: {record['error']}")
    finally:
        alive = server.proc is not None and server.proc.poll() is None
        server.stop()
        problems = server.log_problems()
        if problems or not alive:
            record["server_log_problems"] = problems
            log(f"{kind} server log tail:\n{server.log_tail()}")
        server.cleanup()
    return record


def median(records: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in records if r.get(key) is not None and "error" not in r]
    return round(statistics.median(values), 3) if values else None


def brief(record: dict[str, Any], figure: str) -> dict[str, Any]:
    keys = (
        figure,
        "error",
        "messages_sent",
        "lost_messages",
        "seq_out_of_order",
        "slow_consumer_closes",
        "drain_complete",
        "latency_ms_p50",
        "statuses",
        "server_cpu_s",
        "generator_cpu_s",
        "measured_wall_s",
        "wall_s",
        "machine_cpu_busy_pct",
        "saturated",
        "seed_s",
        "connections_open",
        "connections_failed",
        "server_rss_before_kib",
        "server_rss_after_kib",
        "open_s",
    )
    return {key: record[key] for key in keys if key in record}


def compare(case: Case, opts: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "reference": []}
    for round_no in range(opts.rounds):
        for kind in ("ours", "reference"):
            log(f"{case.name}: round {round_no + 1}/{opts.rounds}, {kind}")
            runs[kind].append(measure(case, kind, opts))
    ours = median(runs["ours"], case.figure)
    reference = median(runs["reference"], case.figure)
    ratio = round(ours / reference, 3) if ours is not None and reference else None
    return {
        "case": case.name,
        "figure": case.figure,
        "better": case.better,
        "ours": ours,
        "reference": reference,
        "ratio": ratio,
        "reference_rest": opts.reference_rest,  # what served its REST routes
        "rounds": opts.rounds,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "runs": {kind: [brief(r, case.figure) for r in records] for kind, records in runs.items()},
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Our server against bench/reference.py: one JSON line per case on stdout.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--cases",
        default=",".join(ALL_CASES),
        help="comma-separated, from: " + ", ".join(ALL_CASES),
    )
    add("--rounds", type=fanout.positive_int, default=3, help="alternating runs per server")
    add("--duration", type=float, default=8.0, help="seconds of load per run, at most")
    add("--max-messages", type=fanout.positive_int, default=50_000, help="sends per fan-out run")
    add("--max-requests", type=fanout.positive_int, default=100_000, help="requests per REST run")
    add("--receiver-procs", type=fanout.positive_int, default=3, help="receiver processes")
    add("--receivers", type=fanout.positive_int, help="override N of the fan-out cases (smoke)")
    add("--history-scale", type=float, default=1.0, help="multiply seeded history (smoke)")
    add("--idle-connections", type=fanout.positive_int, default=20_000, help="idle-20k: N")
    add("--idle-procs", type=fanout.positive_int, default=4, help="idle-20k: client processes")
    add("--seed-timeout", type=float, default=120.0, help="seconds for seeding the history")
    add("--startup-timeout", type=float, default=60.0, help="seconds for GET /health to pass")
    add(
        "--reference-rest",
        choices=["fastapi", "starlette"],
        default="fastapi",
        help="the reference's REST routes: FastAPI endpoints (issue 10's reference) or bare "
        "Starlette handlers (a higher ceiling)",
    )
    add("--server-env", action="append", default=[], metavar="KEY=VALUE", help="our server's env")
    add("--http-worker", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    for item in opts.server_env:
        if "=" not in item:
            raise SystemExit(f"--server-env wants KEY=VALUE, got {item!r}")
    return opts


def selected(opts: argparse.Namespace) -> list[Case]:
    known = cases()
    chosen = []
    for name in (part.strip() for part in opts.cases.split(",") if part.strip()):
        if name not in known:
            raise SystemExit(f"unknown case {name!r}; known: {', '.join(known)}")
        case = known[name]
        if opts.receivers and case.name.startswith(("fanout", "steady")):
            rate = 10.0 if case.name.startswith("steady") else 0.0
            case = Case(case.name, case.figure, case.better, fanout_run(opts.receivers, rate))
        if case.history:
            history = max(1, int(case.history * opts.history_scale))
            case = Case(case.name, case.figure, case.better, case.run, history, case.server_env)
        chosen.append(case)
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.http_worker:
        fanout.run_async(http_worker_main())
        return 0
    signal.signal(signal.SIGTERM, fanout.raise_on_sigterm)  # so the servers are still stopped
    # Inherited by the servers: 20,000 idle connections need as many sockets (idle-20k).
    idle.raise_fd_limit(65536)
    failed = False
    try:
        for case in selected(opts):
            line = compare(case, opts)
            failed = failed or any("error" in r for rs in line["runs"].values() for r in rs)
            print(json.dumps(line), flush=True)
    finally:
        HISTORY.cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
