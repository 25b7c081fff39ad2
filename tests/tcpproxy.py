"""A TCP proxy on 127.0.0.1 that a test can use to cut every connection through it, as a
network failure or a crashed load balancer would."""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.drops = 0
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
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
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            link = (writer, up_writer)
            self._links.add(link)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except OSError:
            pass  # the target is down (restarting): the client sees a reset
        finally:
            self._accepted.discard(writer)
            self._links.discard((writer, up_writer))  # type: ignore[arg-type]
            writer.transport.abort()
            if up_writer is not None:
                up_writer.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

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
