"""Server memory per idle WebSocket connection (issue 10: at most 20 KiB each, 20,000 held).

``bench/compare.py --cases idle-20k`` runs it on our server and on the reference, alternating.
The server's resident memory (``VmRSS`` in ``/proc/PID/status``) is read once the server is
warm (a few connections opened and closed, so lazy imports and caches are in) and again once
all ``N`` connections are open, authenticated and quiet; the figure is the difference over
``N``, in KiB.

The connections come from ``--procs`` client processes (this script with ``--worker``), each
with its own loopback source address (127.0.0.2, 127.0.0.3, ...): one source address has
about 28,000 ephemeral ports towards one server port. A client does the upgrade by hand
(one request, one status line) and then never reads, so the clients stay light; what the
server sends meanwhile (``hello``) waits in the kernel's buffers, outside the server's RSS.
The file limit is raised in the bench processes (the server inherits it), not in the server.
Every loop is bounded in count and time; only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
OPEN_CONCURRENCY = 64  # upgrades in flight per client process
SETTLE_S = 3.0  # after the last upgrade, before reading the server's memory


def log(message: str) -> None:
    print(f"[idle {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's open-file limit (children inherit it); return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    try:
        # Raising the hard limit needs CAP_SYS_RESOURCE (root); else go as far as it allows.
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(wanted, soft), max(wanted, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# --------------------------------------------------------------------------- client worker


def upgrade_request(port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def open_idle(
    port: int, key: str, source: str, limit_s: float
) -> asyncio.StreamWriter | None:
    """One upgraded connection that will never be read again, or None if refused."""
    try:
        async with asyncio.timeout(limit_s):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source, 0), limit=4096
            )
            writer.write(upgrade_request(port, f"/ws?api_key={key}"))
            head = await reader.readuntil(b"\r\n\r\n")
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    if not head.startswith(b"HTTP/1.1 101"):
        writer.close()
        return None
    return writer


async def worker_main() -> None:
    """Open the connections the parent asks for, report, hold them until told to stop."""
    raise_fd_limit(65536)
    command = json.loads(sys.stdin.readline())
    port, keys, count = command["port"], command["keys"], command["count"]
    source, limit_s = command["source"], command["limit_s"]
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)
    deadline = time.monotonic() + limit_s

    async def one(index: int) -> asyncio.StreamWriter | None:
        async with gate:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            return await open_idle(port, keys[index % len(keys)], source, min(left, 30.0))

    held = await asyncio.gather(*(one(i) for i in range(count)))
    writers = [w for w in held if w is not None]
    print(json.dumps({"opened": len(writers), "failed": count - len(writers)}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # the parent says stop (or exits)
    for writer in writers:
        writer.transport.abort()


# --------------------------------------------------------------------------- the measurement


async def register(base_url: str, count: int) -> list[str]:
    import fanout  # the sibling script

    tag = os.urandom(3).hex()
    names = [f"idle-{tag}-{i}" for i in range(count)]
    return await fanout.register_users(base_url, names, limit_s=60 + count)


def measure(
    base_url: str, pid: int, connections: int, procs: int, limit_s: float
) -> dict[str, Any]:
    """Open ``connections`` idle connections to the server ``pid``; its KiB per connection."""
    port = int(base_url.rsplit(":", 1)[1])
    keys = asyncio.run(register(base_url, 50))
    warm = asyncio.run(_warm_up(port, keys))
    time.sleep(1.0)
    before = rss_kib(pid)
    fds_before = open_fds(pid)
    share = [connections // procs + (1 if i < connections % procs else 0) for i in range(procs)]
    workers = []
    started = time.monotonic()
    for i, count in enumerate(share):
        worker = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert worker.stdin is not None
        command = {"port": port, "keys": keys, "count": count, "source": f"127.0.0.{2 + i}"}
        worker.stdin.write(json.dumps(command | {"limit_s": limit_s}) + "\n")
        worker.stdin.flush()
        workers.append(worker)
    try:
        reports = []
        for worker in workers:
            assert worker.stdout is not None
            line = worker.stdout.readline()  # bounded: each worker stops after limit_s
            reports.append(json.loads(line) if line else {"opened": 0, "failed": 0})
        open_s = time.monotonic() - started
        time.sleep(SETTLE_S)
        after = rss_kib(pid)
        fds_after = open_fds(pid)
    finally:
        for worker in workers:
            if worker.stdin is not None:
                worker.stdin.close()  # the worker's readline returns: it drops its sockets
        for worker in workers:
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait(5)
    opened = sum(r["opened"] for r in reports)
    return {
        "connections_asked": connections,
        "connections_open": opened,
        "connections_failed": sum(r["failed"] for r in reports),
        "server_fds_added": fds_after - fds_before,
        "warm_up_connections": warm,
        "server_rss_before_kib": before,
        "server_rss_after_kib": after,
        "kib_per_connection": round((after - before) / opened, 2) if opened else None,
        "open_s": round(open_s, 1),
    }


async def _warm_up(port: int, keys: list[str]) -> int:
    """Open and drop a few connections, so the first measured one pays no first-use cost."""
    writers = [await open_idle(port, key, "127.0.0.1", 10.0) for key in keys[:20]]
    opened = [w for w in writers if w is not None]
    for writer in opened:
        writer.close()
    await asyncio.sleep(0.5)
    return len(opened)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.worker:
        asyncio.run(worker_main())
        return 0
    parser.error("run through bench/compare.py --cases idle-20k")
    return 2


if __name__ == "__main__":
    sys.exit(main())
