"""Room fan-out with the receivers split across two server processes (scale-out, issue 11).

Our server twice, on one PostgreSQL database and one Redis (both throwaway, on 127.0.0.1:
``tests/pgcluster.py`` and ``tests/redisserver.py``), the receivers and the senders split
evenly over the two nodes, so most deliveries cross Redis. The baseline is the same load on
one server process on the same PostgreSQL without Redis. Runs alternate (two nodes, one
node, ...) for ``--rounds`` rounds, each on fresh processes and a fresh database, and every
N prints one JSON line shaped as ``bench/compare.py``'s: ``ours`` is two nodes,
``reference`` the one-node baseline (named in ``reference_is``), ``ratio`` ours / reference.

The load is ``bench/fanout.py``'s (its senders, receiver worker processes and figures):
``delivered_frames_per_s``, lost messages, seq out of order, latency. CPU is the sum of the
nodes (and Redis) beside the load generator's. Every loop is bounded; the processes are
stopped by their PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/pgcluster.py, ...

from tests.pgcluster import PostgresCluster
from tests.redisserver import RedisServer

import compare  # the sibling script, for its line shape and verdict
import fanout


def log(message: str) -> None:
    print(f"[fanout-nodes {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Deployment:
    """``nodes`` server processes on a fresh database of ``cluster`` (and Redis when 2+)."""

    def __init__(self, cluster: PostgresCluster, nodes: int, opts: argparse.Namespace) -> None:
        self.redis = (
            RedisServer(Path(tempfile.mkdtemp(prefix="tbc-bench-redis-"))) if nodes > 1 else None
        )
        env = fanout.QUIET_SERVER | fanout.NO_RATE_LIMIT
        env |= {"DATABASE_URL": cluster.create_database()}
        if self.redis is not None:
            env |= {"REDIS_URL": self.redis.url}
        env |= dict(item.split("=", 1) for item in opts.server_env)
        self.servers = [fanout.ManagedServer(dict(env), opts.startup_timeout) for _ in range(nodes)]

    def start(self) -> None:
        if self.redis is not None:
            self.redis.start()
        for server in self.servers:  # one after another: the first migrates the schema
            server.start()

    def cpu_seconds(self) -> float | None:
        seconds = [server.cpu_seconds() for server in self.servers]
        if self.redis is not None and self.redis.proc is not None:
            seconds.append(fanout.process_cpu_seconds(self.redis.proc.pid))
        return None if None in seconds else sum(s for s in seconds if s is not None)

    def stop(self) -> tuple[bool, int]:
        """Stop everything; whether every node was alive, and the log lines that look bad."""
        alive = all(s.proc is not None and s.proc.poll() is None for s in self.servers)
        problems = 0
        for server in self.servers:
            server.stop()
            problems += server.log_problems()
            if problems or not alive:
                log(f"server {server.base_url} log tail:\n{server.log_tail()}")
            server.cleanup()
        if self.redis is not None:
            self.redis.stop()
            shutil.rmtree(self.redis.data_dir, ignore_errors=True)
        return alive, problems


def ws_url(server: fanout.ManagedServer) -> str:
    return fanout.Target(server.base_url, server).ws_url


async def run_split(n: int, opts: argparse.Namespace, deployment: Deployment) -> dict[str, Any]:
    """``fanout.run_once`` with receivers and senders dealt over the nodes in turn."""
    servers = deployment.servers
    tag = secrets.token_hex(3)
    names = [f"bench-{tag}-r{i}" for i in range(n)]
    names += [f"bench-{tag}-s{j}" for j in range(opts.senders)]
    log(f"N={n} on {len(servers)} node(s): registering {len(names)} users")
    keys = await fanout.register_users(servers[0].base_url, names, limit_s=60 + len(names) * 0.5)
    per_node = copy.copy(opts)
    per_node.receiver_procs = max(1, opts.receiver_procs // len(servers))
    receiver_keys = fanout.split_evenly(keys[:n], len(servers))
    sender_keys = fanout.split_evenly(keys[n:], len(servers))
    workers: list[fanout.Worker] = []
    senders: list[fanout.Sender] = []
    try:
        for server, chunk in zip(servers, receiver_keys, strict=False):
            workers += await fanout.start_workers(chunk, per_node, ws_url(server))
        failures = await fanout.connect_phase(workers, n)
        for server, chunk in zip(servers, sender_keys, strict=False):
            opened = await fanout.open_senders(chunk, opts, ws_url(server))
            for sender in opened:
                sender.index += len(senders)  # distinct sender numbers across the nodes
            senders += opened
        await asyncio.sleep(opts.settle)
        cpu_before = deployment.cpu_seconds()
        own_cpu_before = time.process_time()
        machine_before = fanout.machine_cpu_ticks()
        phase = await fanout.run_senders(senders, opts)
        sent = sum(s.acked for s in senders)
        log(f"N={n}: {sent} messages accepted; draining (up to {opts.drain_timeout} s)")
        reports = await fanout.drain_phase(workers, sent, opts.drain_timeout)
        cpu_after = deployment.cpu_seconds()
        result = fanout.summarize(n, senders, phase, reports, failures)
        result["measured_wall_s"] = round((time.time_ns() - phase.start_ns) / 1e9, 3)
        if cpu_before is not None and cpu_after is not None:
            result["server_cpu_s"] = round(cpu_after - cpu_before, 2)
        result["sender_cpu_s"] = round(time.process_time() - own_cpu_before, 2)
        result["machine_cpu_busy_pct"] = fanout.busy_percent(
            machine_before, fanout.machine_cpu_ticks()
        )
        result["nodes"] = len(servers)
        return result
    finally:
        await asyncio.gather(*(sender.close() for sender in senders), return_exceptions=True)
        await asyncio.gather(*(worker.stop() for worker in workers), return_exceptions=True)


def measure(
    cluster: PostgresCluster, n: int, nodes: int, opts: argparse.Namespace
) -> dict[str, Any]:
    deployment = Deployment(cluster, nodes, opts)
    record: dict[str, Any] = {}
    try:
        deployment.start()
        record |= fanout.run_async(run_split(n, opts, deployment))
        wall = record["measured_wall_s"]
        generator = max(record["receiver_cpu_s_max"], record["sender_cpu_s"])
        record["generator_cpu_s"] = round(record["receiver_cpu_s"] + record["sender_cpu_s"], 2)
        # The nodes' CPU is a sum: saturated means the whole machine, not one process.
        record["saturated"] = compare.verdict(None, generator, wall, record["machine_cpu_busy_pct"])
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        log(f"N={n} on {nodes} node(s) failed: {record['error']}")
    finally:
        alive, problems = deployment.stop()
        if problems or not alive:
            record["server_log_problems"] = problems
            record["servers_alive_at_end"] = alive
    return record


def compare_line(cluster: PostgresCluster, n: int, opts: argparse.Namespace) -> dict[str, Any]:
    figure = "delivered_frames_per_s"
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "reference": []}
    for round_no in range(opts.rounds):
        for kind, nodes in (("ours", 2), ("reference", 1)):
            log(f"N={n}: round {round_no + 1}/{opts.rounds}, {nodes} node(s)")
            runs[kind].append(measure(cluster, n, nodes, opts))
    ours = compare.median(runs["ours"], figure)
    reference = compare.median(runs["reference"], figure)

    def keep(record: dict[str, Any]) -> dict[str, Any]:
        extra = ("latency_ms_p99", "messages_per_s", "nodes")
        return compare.brief(record, figure) | {k: record[k] for k in extra if k in record}

    return {
        "case": f"fanout-{n}-two-nodes",
        "figure": figure,
        "better": "higher",
        "ours": ours,
        "reference": reference,
        "ratio": round(ours / reference, 3) if ours is not None and reference else None,
        "rounds": opts.rounds,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "reference_is": "one node on the same PostgreSQL, no Redis",
        "runs": {kind: [keep(r) for r in records] for kind, records in runs.items()},
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Fan-out on two nodes (PostgreSQL + Redis) against one node: JSON lines.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--receivers", type=fanout.sweep_list, default=[200], help="N, e.g. 200 or 200,500")
    add("--rounds", type=fanout.positive_int, default=3, help="alternating runs per topology")
    add("--senders", type=fanout.positive_int, default=2, help="sending connections, all nodes")
    add("--window", type=fanout.positive_int, default=16, help="in-flight sends per sender")
    add("--duration", type=float, default=8.0, help="seconds of sending, at most")
    add("--max-messages", type=fanout.positive_int, default=50_000, help="send attempts, at most")
    add("--rate", type=float, default=0.0, help="cap on total sends/s (0: full speed)")
    add("--content-bytes", type=fanout.positive_int, default=64, help="message content length")
    add("--drain-timeout", type=float, default=20.0, help="seconds to wait for deliveries")
    add("--receiver-procs", type=fanout.positive_int, default=4, help="receiver processes, all")
    add("--connect-concurrency", type=fanout.positive_int, default=50, help="receivers connecting")
    add("--settle", type=float, default=1.0, help="pause between connecting and sending, s")
    add("--startup-timeout", type=float, default=60.0, help="seconds for GET /health to pass")
    add("--server-env", action="append", default=[], metavar="KEY=VALUE", help="nodes' env")
    opts = parser.parse_args(argv)
    opts.deflate = False
    for item in opts.server_env:
        if "=" not in item:
            raise SystemExit(f"--server-env wants KEY=VALUE, got {item!r}")
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, fanout.raise_on_sigterm)  # so the processes are still stopped
    failed = False
    cluster = PostgresCluster()
    cluster.start()
    try:
        for n in opts.receivers:
            line = compare_line(cluster, n, opts)
            failed = failed or any("error" in r for rs in line["runs"].values() for r in rs)
            print(json.dumps(line), flush=True)
    finally:
        cluster.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
