"""What one flooding connection costs everyone else (issue 7, defect 1).

One user's connection streams ``typing`` frames as fast as it can for ``--duration`` seconds
(and at most ``--max-frames`` frames), from a process of its own so that it cannot slow the
measuring client down. Meanwhile a second user connects (time until the
server's first frame) and sends ``--sends`` messages one after another, timing each until its
``message_sent`` reply. The same is measured once more with no flood as the baseline.

    .venv/bin/python bench/flood.py                         # fresh server, defaults
    .venv/bin/python bench/flood.py --server-env TOKEN_BOWL_WS_FRAME_RATE=1000000

Only 127.0.0.1 is ever a target; the server is started here and stopped by its PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.serverproc import ServerProcess

from token_bowl_chat_server.settings import Settings

# ServerProcess lifts the frame budget for the test suite; measure with the shipped one.
_SERVER_DEFAULTS = {
    "TOKEN_BOWL_LOG_LEVEL": "warning",
    "TOKEN_BOWL_WS_FRAME_RATE": str(Settings.model_fields["ws_frame_rate"].default),
    "TOKEN_BOWL_WS_FRAME_BURST": str(Settings.model_fields["ws_frame_burst"].default),
}


def _register(base: str, name: str) -> str:
    resp = httpx.post(f"{base}/register", json={"username": name}, timeout=10)
    resp.raise_for_status()
    return str(resp.json()["api_key"])


async def _flood(ws_url: str, key: str, duration: float, max_frames: int) -> None:
    sent = 0
    frame = json.dumps({"type": "typing"})
    async with websockets.connect(f"{ws_url}?api_key={key}", max_queue=None) as ws:
        deadline = time.monotonic() + duration
        try:
            while time.monotonic() < deadline and sent < max_frames:
                await ws.send(frame)
                sent += 1
                if sent % 64 == 0:
                    await asyncio.sleep(0)  # let the reader see a close frame
        except websockets.ConnectionClosed:
            pass
    closed = f"closed by the server with {ws.close_code}" if ws.close_code else "not closed"
    print(f"  flooder sent {sent} frames in {duration:g} s at most; {closed}")


def _flooder_process(ws_url: str, key: str, duration: float, max_frames: int) -> None:
    asyncio.run(_flood(ws_url, key, duration, max_frames))


async def _victim(ws_url: str, key: str, sends: int) -> tuple[float, list[float]]:
    started = time.monotonic()
    async with websockets.connect(
        f"{ws_url}?api_key={key}&protocol_version=1.1", open_timeout=60
    ) as ws:
        await asyncio.wait_for(ws.recv(), 60)  # hello: the server has us
        connect = time.monotonic() - started
        acks = []
        for i in range(sends):
            rid = f"v{i}"
            t0 = time.monotonic()
            await ws.send(json.dumps({"type": "message", "content": f"m{i}", "request_id": rid}))
            async with asyncio.timeout(60):
                while json.loads(await ws.recv()).get("request_id") != rid:
                    pass
            acks.append(time.monotonic() - t0)
    return connect, acks


async def _measure(proc: ServerProcess, flood: bool, args: argparse.Namespace, n: int) -> None:
    victim_key = _register(proc.http_url, f"victim{n}")
    flooder_key = _register(proc.http_url, f"flooder{n}")
    flooder = None
    if flood:
        flooder = multiprocessing.Process(
            target=_flooder_process,
            args=(proc.ws_url, flooder_key, args.duration, args.max_frames),
        )
        flooder.start()
        await asyncio.sleep(0.5)  # let the flood get going
    connect, acks = await _victim(proc.ws_url, victim_key, args.sends)
    label = "with flood" if flood else "no flood  "
    print(
        f"{label}: connect {connect * 1000:8.1f} ms; send ack median "
        f"{statistics.median(acks) * 1000:8.1f} ms, max {max(acks) * 1000:8.1f} ms"
    )
    if flooder is not None:
        flooder.join(args.duration + 30)
        if flooder.is_alive():
            flooder.terminate()


async def _main(args: argparse.Namespace) -> None:
    env = dict(kv.split("=", 1) for kv in args.server_env)
    with tempfile.TemporaryDirectory() as tmp:
        proc = ServerProcess(Path(tmp), env={**_SERVER_DEFAULTS, **env})
        proc.start()
        try:
            await _measure(proc, False, args, 1)
            await _measure(proc, True, args, 2)
        finally:
            proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="flood seconds (max)")
    parser.add_argument("--max-frames", type=int, default=2_000_000, help="flood frames (max)")
    parser.add_argument("--sends", type=int, default=5, help="victim sends")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
