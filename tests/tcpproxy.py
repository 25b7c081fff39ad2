"""A TCP proxy on 127.0.0.1 that a test can use to cut connections through it, as a network
failure or a crashed load balancer would, or to stop passing the server's bytes on, as a
client that stops reading would look to the server."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket


class TcpProxy:
    def __init__(self, target_port: int, upstream_rcvbuf: int | None = None) -> None:
        """``upstream_rcvbuf``: a small receive buffer towards the server, so that while
        paused the server's send buffer fills after little data."""
        self.target_port = target_port
        self.upstream_rcvbuf = upstream_rcvbuf
        self.port = 0
        self.drops = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        # Insertion-ordered, so a seeded drop_random picks the same way on every run.
        self._links: dict[tuple[asyncio.StreamWriter, asyncio.StreamWriter], None] = {}
        self._accepted: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._accepted.add(writer)
        up_writer: asyncio.StreamWriter | None = None
        try:
            up_reader, up_writer = await self._open_upstream()
            link = (writer, up_writer)
            self._links[link] = None
            await asyncio.gather(
                self._pipe(reader, up_writer), self._pipe(up_reader, writer, self._flowing)
            )
        except OSError:
            pass  # the target is down (restarting): the client sees a reset
        finally:
            self._accepted.discard(writer)
            self._links.pop((writer, up_writer), None)  # type: ignore[arg-type]
            writer.transport.abort()
            if up_writer is not None:
                up_writer.transport.abort()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if self.upstream_rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.upstream_rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.target_port))
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock)

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        flowing: asyncio.Event | None = None,
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                if flowing is not None:
                    await flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

    def pause_downstream(self) -> None:
        """Stop reading what the server sends (on every connection, new ones too), as a
        client that stops reading; what the client sends still goes through."""
        self._flowing.clear()

    def resume_downstream(self) -> None:
        self._flowing.set()

    def drop_random(self, rng: random.Random) -> bool:
        """Abort one connection chosen by ``rng``; False when there is none to cut."""
        if not self._links:
            return False
        client, upstream = rng.choice(list(self._links))
        self.drops += 1
        client.transport.abort()
        upstream.transport.abort()
        return True

    def drop_all(self) -> None:
        """Abort every connection now (both sides see a reset, no close frame)."""
        self.drops += 1
        for client, upstream in list(self._links):
            client.transport.abort()
            upstream.transport.abort()

    async def close(self) -> None:
        self.drop_all()
        for writer in list(self._accepted):
            writer.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
