"""The database's disk fills up: sends get a clear, stable error (503 ``storage_unavailable``
over REST, an error frame with that code over WebSocket) instead of a hang or a 500, nothing
acknowledged is lost, and once space is freed the server stores messages again by itself.

The disk is a size-limited tmpfs mounted by the test (root only; CI runs as root) and always
unmounted at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer
from tests.faults.ledger import Ledger, sdk
from tests.serverproc import ServerProcess
from token_bowl_chat import AsyncTokenBowlClient, ServerError, TokenBowlWebSocket

DISK_SIZE = "4m"
HEADROOM = 400_000  # bytes left free for messages once the filler is written
CONTENT = "d" * 9000


@contextlib.contextmanager
def small_disk(where: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root (CI runs as root)")
    where.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE},mode=0755", "tmpfs", str(where)],
        check=True,
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=True)


def fill(path: Path, leave: int) -> None:
    """Write ``path`` until only ``leave`` bytes of its filesystem are free."""
    stats = os.statvfs(path.parent)
    size = max(0, stats.f_bavail * stats.f_frsize - leave)
    with path.open("wb") as filler:
        try:
            filler.write(b"\0" * size)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


@pytest.mark.sqlite_only
async def test_a_full_disk_refuses_sends_clearly_and_recovers(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    with small_disk(tmp_path / "disk") as disk:
        # The log stays off the small disk: only the database lives there.
        proc = ServerProcess(
            tmp_path / "server", database_url=f"sqlite+aiosqlite:///{disk / 'chat.db'}"
        )
        proc.start()
        try:
            await _fill_the_disk_and_recover(LiveServer(proc), disk)
        finally:
            proc.stop()


async def _fill_the_disk_and_recover(server: LiveServer, disk: Path) -> None:
    sender, listener = server.register(), server.register()
    ledger = Ledger()
    receiver = sdk(server.http_url, listener.api_key, ledger.receiver(listener.username).on_message)
    writer = sdk(server.http_url, sender.api_key)
    rest = AsyncTokenBowlClient(api_key=sender.api_key, base_url=server.http_url, timeout=20)
    async with receiver, writer, rest:
        await _fill_and_free(server, disk, ledger, sender.username, listener.api_key, writer, rest)


async def _fill_and_free(
    server: LiveServer,
    disk: Path,
    ledger: Ledger,
    sender: str,
    listener_key: str,
    writer: TokenBowlWebSocket,
    rest: AsyncTokenBowlClient,
) -> None:
    fill(disk / "filler", HEADROOM)
    refusals: list[tuple[str, int, str]] = []

    async def send(client_id: str, over_ws: bool) -> bool:
        """One attempt; True when stored. A refusal must be the clear one, never a hang."""
        ledger.sent.add(client_id)
        try:
            async with asyncio.timeout(30):  # a hang fails the test here
                if over_ws:
                    stored = await writer.send_message(CONTENT, client_message_id=client_id)
                else:
                    stored = await rest.send_message(CONTENT, client_message_id=client_id)
        except ServerError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            refusals.append(("ws" if over_ws else "rest", status, exc.code or ""))
            return False
        ledger.acked[client_id] = stored.id
        ledger.to[stored.id] = None
        ledger.senders[stored.id] = sender
        return True

    # Fill it: alternate REST and WebSocket sends until both have been refused a few times.
    i = 0
    while i < 2000 and len(refusals) < 6:
        await send(f"fill-{i}", over_ws=i % 2 == 1)
        i += 1
    assert len(refusals) >= 6, f"the disk never filled after {i} sends"
    assert {kind for kind, _, _ in refusals} == {"rest", "ws"}
    assert {(status, code) for kind, status, code in refusals if kind == "rest"} == {
        (503, "storage_unavailable")
    }, refusals
    assert {code for kind, _, code in refusals if kind == "ws"} == {"storage_unavailable"}
    # While full, the server is alive and serves reads.
    with httpx.Client(base_url=server.http_url, headers={"X-API-Key": listener_key}) as http:
        assert http.get("/health").status_code == 200
        assert http.get("/messages", params={"limit": 5}).status_code == 200
    assert writer.is_connected

    (disk / "filler").unlink()  # space is back: sends work again without a restart
    for j in range(20):
        assert await send(f"after-{j}", over_ws=j % 2 == 1), refusals[-1]

    await ledger.wait_delivered()
    await asyncio.sleep(0.3)  # a late duplicate would show up now
    stored = ledger.stored_ids(server, listener_key)
    print(f"\nrefused while full: {len(refusals)} ({refusals[0]})")
    ledger.report("disk full, then freed", stored)
