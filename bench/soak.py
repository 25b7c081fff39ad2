"""Soak run: mixed load on a real server for minutes, watching for leaks.

What runs
---------
One fresh server (``fanout.ManagedServer``: a SQLite file in a temporary directory, the
send and registration limits lifted, ``TOKEN_BOWL_METRICS_TOKEN`` set so ``/metrics``
answers) and, for ``--minutes``, these clients at a moderate, bounded pace:

* chatters (SDK ``TokenBowlWebSocket``): room messages, DMs, typing indicators, every
  mark variant and unread-count requests;
* listeners (SDK): only receive; their ``on_message`` counts every delivery, so the run
  ends with a lost / duplicated count for them;
* reconnectors (raw WebSocket): connect, read a little, then close cleanly, drop the TCP
  connection without a close, or come back with ``?since_seq=`` to resume;
* slow readers (raw WebSocket with a small receive buffer): stop reading for a while, so
  the server closes them as slow consumers (4001) or they catch up, then resume;
* REST pollers (SDK ``AsyncTokenBowlClient``): history, unread lists and counts, online
  users.

Every ``--interval`` seconds (60) it prints one line of the server's own numbers from
``/metrics``: resident memory, open file descriptors, asyncio tasks, connections and the
outbox depths (total and the fullest connection). After the load stops and the clients
leave, one more sample shows what the idle server still holds. At the end it says for each
gauge whether it leveled off: the mean of the last two minutes against the minute after
warm-up (the first minute fills caches and pools).

    .venv/bin/python bench/soak.py --minutes 10          # make soak
    .venv/bin/python bench/soak.py --minutes 3 --interval 30

Only 127.0.0.1 is ever a target; the server is stopped by its PID whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import random
import secrets
import socket
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx
import websockets

from fanout import ManagedServer, log, register_users
from token_bowl_chat import AsyncTokenBowlClient, TokenBowlError, TokenBowlWebSocket
from token_bowl_chat.models import MessageResponse

GAUGES = {
    "rss_mb": "tbc_process_rss_bytes",
    "fds": "tbc_process_open_fds",
    "tasks": "tbc_asyncio_tasks",
    "conns": "tbc_connections",
    "outbox": "tbc_outbox_frames",
    "outbox_max": "tbc_outbox_frames_max",
}
# How much a gauge may grow from the warm-up minute to the end and still count as level:
# relative, plus an absolute allowance for small numbers that jitter with the load.
LEVEL_TOLERANCE = {
    "rss_mb": (0.10, 8.0),
    "fds": (0.10, 8.0),
    "tasks": (0.10, 16.0),
    "outbox": (0.0, 2048.0),  # bounded by the outbox size per connection by design
    "outbox_max": (0.0, 1024.0),
}


@dataclass
class Tally:
    """Client-side counts, to tell a quiet server from a server that stopped serving."""

    sent: int = 0
    dms: int = 0
    marks: int = 0
    typing: int = 0
    reconnects: int = 0
    slow_cycles: int = 0
    slow_closes: int = 0
    polls: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    room_ids: set[str] = field(default_factory=set)  # room messages acknowledged
    dm_ids: dict[str, set[str]] = field(default_factory=dict)  # recipient -> DMs acked


@dataclass
class Listener:
    username: str
    seen: Counter[str] = field(default_factory=Counter)

    def on_message(self, message: MessageResponse) -> None:
        self.seen[message.id] += 1


@dataclass(frozen=True)
class Account:
    username: str
    api_key: str


class Soak:
    def __init__(self, opts: argparse.Namespace, server: ManagedServer, token: str) -> None:
        self.opts = opts
        self.server = server
        self.base_url = server.base_url
        self.ws_url = "ws" + server.base_url.removeprefix("http") + "/ws"
        self.token = token
        self.rng = random.Random(opts.seed)
        self.tally = Tally()
        self.stop_at = 0.0
        self.done = asyncio.Event()

    # --- metrics ------------------------------------------------------------------------

    async def scrape(self) -> dict[str, float]:
        async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
            resp = await http.get(
                f"{self.base_url}/metrics", headers={"Authorization": f"Bearer {self.token}"}
            )
        resp.raise_for_status()
        values = {
            line.split()[0]: float(line.split()[1])
            for line in resp.text.splitlines()
            if line and not line.startswith("#")
        }
        sample = {key: values.get(metric, float("nan")) for key, metric in GAUGES.items()}
        sample["rss_mb"] /= 1024 * 1024
        sample["stored"] = values.get("tbc_messages_stored_total", 0.0)
        sample["slow_closes"] = values.get("tbc_slow_consumer_closes_total", 0.0)
        return sample

    @staticmethod
    def line(label: str, sample: dict[str, float]) -> str:
        return (
            f"{label:>8}  rss {sample['rss_mb']:7.1f} MB  fds {sample['fds']:5.0f}  "
            f"tasks {sample['tasks']:5.0f}  conns {sample['conns']:4.0f}  "
            f"outbox {sample['outbox']:6.0f} (max {sample['outbox_max']:5.0f})  "
            f"stored {sample['stored']:8.0f}  4001s {sample['slow_closes']:4.0f}"
        )

    # --- load ---------------------------------------------------------------------------

    def running(self) -> bool:
        return time.monotonic() < self.stop_at

    async def pause(self, low: float, high: float) -> None:
        await asyncio.sleep(self.rng.uniform(low, high))

    async def guarded(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        """Run one actor until the end; an error is counted and the actor starts over."""
        while self.running():
            try:
                await body()
            except (TokenBowlError, OSError, websockets.WebSocketException, TimeoutError) as exc:
                self.tally.errors[f"{name}: {type(exc).__name__}"] += 1
                await asyncio.sleep(0.5)

    async def chatter(self, me: Account, others: Sequence[Account]) -> None:
        async with TokenBowlWebSocket(
            api_key=me.api_key, base_url=self.base_url, reconnect_initial_delay=0.1
        ) as ws:
            while self.running():
                roll = self.rng.random()
                if roll < 0.55:
                    stored = await ws.send_message(f"room {self.tally.sent} " + "r" * 100)
                    self.tally.sent += 1
                    self.tally.room_ids.add(stored.id)
                elif roll < 0.70:
                    peer = self.rng.choice(others)
                    stored = await ws.send_message("dm " + "d" * 50, to_username=peer.username)
                    self.tally.dms += 1
                    self.tally.dm_ids.setdefault(peer.username, set()).add(stored.id)
                elif roll < 0.80:
                    target = self.rng.choice([None, self.rng.choice(others).username])
                    await ws.send_typing_indicator(target)
                    self.tally.typing += 1
                else:
                    await self.mark(ws, others)
                await self.pause(0.05, 0.25)

    async def flooder(self, me: Account) -> None:
        """Now and then a burst of long room messages, as fast as they are acknowledged: the
        readers that stopped reading overflow their outboxes (4001), the rest must keep up."""
        async with TokenBowlWebSocket(
            api_key=me.api_key, base_url=self.base_url, reconnect_initial_delay=0.1
        ) as ws:
            while self.running():
                await self.pause(15, 30)
                for _ in range(200):
                    stored = await ws.send_message(f"burst {self.tally.sent} " + "b" * 9000)
                    self.tally.sent += 1
                    self.tally.room_ids.add(stored.id)

    async def mark(self, ws: TokenBowlWebSocket, others: Sequence[Account]) -> None:
        kind = self.rng.randrange(5)
        if kind == 0:
            await ws.mark_all_messages_read()
        elif kind == 1:
            await ws.mark_room_messages_read()
        elif kind == 2:
            await ws.mark_direct_messages_read(self.rng.choice(others).username)
        elif kind == 3 and self.tally.room_ids:
            await ws.mark_message_read(self.rng.choice(sorted(self.tally.room_ids)[-50:]))
        else:
            await ws.get_unread_count()
        self.tally.marks += 1

    async def listen(self, me: Account, listener: Listener) -> None:
        async with TokenBowlWebSocket(
            api_key=me.api_key,
            base_url=self.base_url,
            on_message=listener.on_message,
            reconnect_initial_delay=0.1,
        ):
            await self.done.wait()

    async def reconnector(self, me: Account) -> None:
        last_seq: int | None = None
        while self.running():
            query = f"?api_key={me.api_key}&protocol_version=1.1"
            if last_seq is not None and self.rng.random() < 0.5:
                query += f"&since_seq={last_seq}"
            conn = await websockets.connect(self.ws_url + query, open_timeout=20)
            self.tally.reconnects += 1
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.rng.uniform(0.2, 2.0)):
                        async for raw in conn:
                            frame = json.loads(raw)
                            if isinstance(frame.get("seq"), int):
                                last_seq = max(last_seq or 0, frame["seq"])
                            elif frame.get("type") in ("hello", "resumed"):
                                last_seq = frame.get("last_seq", last_seq)
            finally:
                if self.rng.random() < 0.5:
                    await conn.close()
                else:
                    conn.transport.abort()  # gone without a close frame
            await self.pause(0.1, 0.5)

    async def slow_reader(self, me: Account) -> None:
        """A raw socket that stops reading (no library reads on its behalf) but keeps
        writing pongs, so the heartbeat sees a live client and only the outbox limit can end
        it; then it reads what is left and leaves."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.server.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        try:
            key = base64.b64encode(secrets.token_bytes(16)).decode()
            writer.write(
                f"GET /ws?api_key={me.api_key}&protocol_version=1.1 HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{self.server.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                raise OSError(f"upgrade refused: {head[:80]!r}")
            self.tally.slow_cycles += 1
            tail = b""
            try:
                for _ in range(self.rng.randrange(10, 25)):
                    writer.write(_masked_text_frame(b'{"type": "pong"}'))
                    await writer.drain()
                    await asyncio.sleep(2)
                async with asyncio.timeout(10):
                    while chunk := await reader.read(65536):
                        tail = (tail + chunk)[-4096:]
            except TimeoutError:
                pass  # caught up and still open: the outbox never overflowed
            except ConnectionResetError:
                self.tally.slow_closes += 1  # closed, then aborted when we did not read
            else:
                # The reason of the 4001 close frame, or the end of a heartbeat close.
                self.tally.slow_closes += b"outbox overflow" in tail
        finally:
            writer.transport.abort()

    async def poller(self, me: Account) -> None:
        async with AsyncTokenBowlClient(api_key=me.api_key, base_url=self.base_url) as rest:
            while self.running():
                kind = self.rng.randrange(4)
                if kind == 0:
                    await rest.get_messages(limit=50)
                elif kind == 1:
                    await rest.get_unread_count()
                elif kind == 2:
                    await rest.get_online_users()
                else:
                    await rest.get_unread_messages(limit=50)
                self.tally.polls += 1
                await self.pause(0.2, 0.6)

    # --- the run ------------------------------------------------------------------------

    async def run(self) -> int:
        opts = self.opts
        tag = secrets.token_hex(3)
        groups = {
            "chat": opts.chatters,
            "listen": opts.listeners,
            "recon": opts.reconnectors,
            "slow": opts.slow_readers,
            "poll": opts.pollers,
            "flood": 1,
        }
        names = [f"soak{tag}-{g}{i}" for g, n in groups.items() for i in range(n)]
        keys = await register_users(self.base_url, names, 60)
        accounts = {name: Account(name, key) for name, key in zip(names, keys, strict=True)}
        by_group = {g: [a for n, a in accounts.items() if f"-{g}" in n] for g in groups}
        listeners = {a.username: Listener(a.username) for a in by_group["listen"]}

        baseline = await self.scrape()
        print(self.line("idle", baseline), flush=True)
        started = time.monotonic()
        self.stop_at = started + opts.minutes * 60
        listening = [
            asyncio.create_task(
                self.guarded("listener", lambda a=a: self.listen(a, listeners[a.username]))
            )
            for a in by_group["listen"]
        ]
        actors = [
            *(
                self.guarded("chatter", lambda a=a: self.chatter(a, by_group["listen"]))
                for a in by_group["chat"]
            ),
            *(
                self.guarded("reconnector", lambda a=a: self.reconnector(a))
                for a in by_group["recon"]
            ),
            *(self.guarded("slow", lambda a=a: self.slow_reader(a)) for a in by_group["slow"]),
            *(self.guarded("poller", lambda a=a: self.poller(a)) for a in by_group["poll"]),
            *(self.guarded("flooder", lambda a=a: self.flooder(a)) for a in by_group["flood"]),
        ]
        tasks = [asyncio.create_task(actor) for actor in actors]
        samples: list[dict[str, float]] = []
        try:
            for tick in range(1, int(opts.minutes * 60 / opts.interval) + 1):
                await asyncio.sleep(max(0.0, started + tick * opts.interval - time.monotonic()))
                sample = await self.scrape()
                samples.append(sample)
                label = f"{tick * opts.interval / 60:.1f} min"
                print(self.line(label, sample) + f"  {self.client_line()}", flush=True)
            self.stop_at = 0.0
            async with asyncio.timeout(60):
                await asyncio.gather(*tasks)
            # The listeners get what was acknowledged last before they leave.
            for _ in range(300):  # 30 s at most
                if not self.missing(listeners):
                    break
                await asyncio.sleep(0.1)
            self.done.set()
            async with asyncio.timeout(30):
                await asyncio.gather(*listening)
        finally:
            for task in (*tasks, *listening):
                task.cancel()
            await asyncio.gather(*tasks, *listening, return_exceptions=True)
        await asyncio.sleep(opts.settle)
        after = await self.scrape()
        print(self.line("after", after), flush=True)
        return self.verdict(baseline, samples, after, listeners)

    def missing(self, listeners: dict[str, Listener]) -> int:
        """Acknowledged messages a listener has not had (yet)."""
        return sum(
            len((self.tally.room_ids | self.tally.dm_ids.get(name, set())) - li.seen.keys())
            for name, li in listeners.items()
        )

    def client_line(self) -> str:
        t = self.tally
        return (
            f"| sent {t.sent} dm {t.dms} marks {t.marks} typing {t.typing} "
            f"reconnects {t.reconnects} slow {t.slow_cycles}/{t.slow_closes} polls {t.polls}"
        )

    def verdict(
        self,
        baseline: dict[str, float],
        samples: list[dict[str, float]],
        after: dict[str, float],
        listeners: dict[str, Listener],
    ) -> int:
        ok = True
        print("\nleveled off? (warm-up sample vs the mean of the last two)")
        if len(samples) < 3:
            print("  too few samples to say: run for at least three intervals")
            ok = False
        else:
            warm = samples[0]
            half = samples[len(samples) // 2 :]
            for key, (relative, absolute) in LEVEL_TOLERANCE.items():
                last = statistics.fmean(s[key] for s in samples[-2:])
                allowed = warm[key] * (1 + relative) + absolute
                level = last <= allowed
                ok &= level
                # The trend over the second half, per sample: what a longer run would add.
                slope = (half[-1][key] - half[0][key]) / max(1, len(half) - 1)
                print(
                    f"  {key:>10}: {warm[key]:10.1f} -> {last:10.1f}  "
                    f"{'yes' if level else 'NO'} (allowed up to {allowed:.1f}; "
                    f"second half {slope:+.2f} per sample)"
                )
        # Once everyone left, the server must hold no connection and no queued frame, and
        # about the tasks it had before the load.
        idle_ok = after["conns"] == 0 and after["outbox"] == 0
        idle_ok &= after["tasks"] <= baseline["tasks"] + 2
        ok &= idle_ok
        print(
            f"  idle after the load: conns {after['conns']:.0f}, outbox {after['outbox']:.0f}, "
            f"tasks {after['tasks']:.0f} (before {baseline['tasks']:.0f}): "
            f"{'yes' if idle_ok else 'NO'}"
        )
        lost = self.missing(listeners)
        dup = sum(n - 1 for li in listeners.values() for n in li.seen.values() if n > 1)
        ok &= lost == 0 and dup == 0
        print(f"  SDK listeners: lost {lost}, duplicated {dup}")
        if self.tally.errors:
            print(f"  client errors (actor restarted): {dict(self.tally.errors)}")
        print(f"  server log lines with ERROR or a traceback: {self.server.log_problems()}")
        print("RESULT:", "leveled off" if ok else "DID NOT level off (see NO above)")
        return 0 if ok else 1


def _masked_text_frame(payload: bytes) -> bytes:
    """One client-to-server text frame (RFC 6455 5.2; clients must mask), payload < 126."""
    mask = secrets.token_bytes(4)
    body = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="load duration (10)")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds per sample (60)")
    parser.add_argument("--chatters", type=int, default=4)
    parser.add_argument("--listeners", type=int, default=4)
    parser.add_argument("--reconnectors", type=int, default=4)
    parser.add_argument("--slow-readers", type=int, default=2)
    parser.add_argument("--pollers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--settle", type=float, default=5.0, help="idle seconds before the last sample"
    )
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="KEY=VALUE", help="repeatable"
    )
    parser.add_argument("--keep-tmp", action="store_true", help="keep the database and log")
    opts = parser.parse_args(argv)
    if opts.minutes * 60 < opts.interval:
        parser.error("--minutes must cover at least one --interval")
    return opts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    token = secrets.token_urlsafe(16)
    env = {
        "TOKEN_BOWL_LOG_LEVEL": "warning",
        "TOKEN_BOWL_METRICS_TOKEN": token,
        "TOKEN_BOWL_SEND_RATE": "1000000",
        "TOKEN_BOWL_SEND_BURST": "1000000",
        "TOKEN_BOWL_REGISTER_RATE": "1000000",
        "TOKEN_BOWL_REGISTER_BURST": "1000000",
        # Small outboxes and a short heartbeat, so slow-consumer closes and heartbeat
        # timeouts happen during the run rather than never.
        "TOKEN_BOWL_OUTBOX_SIZE": "32",
        "TOKEN_BOWL_HEARTBEAT_INTERVAL": "5",
        "TOKEN_BOWL_HEARTBEAT_TIMEOUT": "15",
    }
    for item in opts.server_env:
        key, _, value = item.partition("=")
        env[key] = value
    server = ManagedServer(env_overrides=env, startup_timeout=60, keep_tmp=opts.keep_tmp)
    server.start()
    log(f"soak: {opts.minutes:g} min on {server.base_url}, a sample every {opts.interval:g} s")
    try:
        return asyncio.run(Soak(opts, server, token).run())
    finally:
        server.stop()
        server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
