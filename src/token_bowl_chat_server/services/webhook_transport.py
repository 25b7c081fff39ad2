"""An httpx transport for webhooks that connects only to addresses it has checked.

Checking a URL's host name and then letting the HTTP library resolve it again is open to DNS
rebinding: the name answers a public address to the check and ``127.0.0.1`` to the connect.
So the check sits where the connection is made, in the network backend under httpcore's
connection pool:

    httpx.AsyncClient --> CheckedTransport --> httpcore pool --> CheckedBackend.connect_tcp
        resolve the host once --> every address passes address_refusal --> connect to one
        of those addresses (never to the name)

httpcore still uses the URL's host name for the ``Host`` header, TLS SNI and certificate
verification, so only the address lookup is taken out of its hands. A name with any refused
address is refused as a whole: a public answer padded with ``127.0.0.1`` must not get through
on the retry of a failed connect. Pooled keep-alive connections stay on the address that was
checked when they were opened. No proxy is ever used (the environment's ``HTTP_PROXY`` would
resolve the name itself), and Unix sockets are refused.

Failures reach the caller as httpx exceptions, except :class:`AddressRefused`, which tells
the caller that nothing was sent and retrying is pointless.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator

import httpcore
import httpx

from token_bowl_chat_server.domain.webhook_policy import (
    AddressClass,
    address_refusal,
    parse_address,
)

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``: every address ``host`` resolves to, as text."""


class AddressRefused(Exception):
    """The host resolved to an address webhooks may not reach; no connection was made."""

    def __init__(self, address: str, refused: AddressClass) -> None:
        super().__init__(f"webhook address {address} refused ({refused.value})")
        self.address = address
        self.refused = refused


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer (``getaddrinfo``), duplicates removed, order kept."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves once, checks every address, connects only to a checked one."""

    def __init__(
        self,
        allow_private: bool,
        resolver: Resolver = system_resolver,
        network: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._resolver = resolver
        self._network = network or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port, timeout)
        for address in addresses:
            parsed = parse_address(address)
            refused = (
                AddressClass.RESERVED
                if parsed is None
                else address_refusal(parsed, self._allow_private)
            )
            if refused is not None:
                raise AddressRefused(address, refused)
        failure: Exception = httpcore.ConnectError(f"{host} resolved to no address")
        for address in addresses:
            try:
                return await self._network.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def _resolve(self, host: str, port: int, limit: float | None) -> list[str]:
        try:
            async with asyncio.timeout(limit):
                return await self._resolver(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:  # socket.gaierror: no such name, no DNS server
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused(path, AddressClass.RESERVED)

    async def sleep(self, seconds: float) -> None:
        await self._network.sleep(seconds)


# httpcore's exceptions as httpx's, as httpx's own transport maps them.
_HTTPX_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProxyError: httpx.ProxyError,
}


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for source, target in _HTTPX_ERRORS.items():
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes] | Iterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self._stream, AsyncIterable)  # the async pool's streams are
        with _as_httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            with _as_httpx_errors():
                await close()


class CheckedTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` over a connection pool whose every connection goes
    through :class:`CheckedBackend`. ``resolver`` and ``network`` are for tests."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = system_resolver,
        network: httpcore.AsyncNetworkBackend | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        keepalive_expiry: float = 5.0,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),  # certifi's CAs
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
            network_backend=CheckedBackend(allow_private, resolver, network),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors():
            response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
