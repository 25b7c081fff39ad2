"""The webhook transport connects only to addresses it checked (services/webhook_transport.py).

A real HTTP receiver listens on 127.0.0.1; name resolution is a stub where a test needs a
name to answer something particular (DNS rebinding), and the network layer is a recording
stub only where a test must show that a public address was chosen without ever reaching it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import httpcore
import httpx
import pytest

from token_bowl_chat_server.domain.webhook_policy import AddressClass
from token_bowl_chat_server.services.webhook_transport import (
    AddressRefused,
    CheckedTransport,
    system_resolver,
)

PUBLIC = "93.184.215.14"


class Receiver:
    """Counts connections and records each request head; answers 204."""

    def __init__(self) -> None:
        self.connections = 0
        self.heads: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            self.heads.append(head)
            length = next(
                (
                    int(line.split(":", 1)[1])
                    for line in head.split("\r\n")
                    if line.lower().startswith("content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


class ScriptedResolver:
    """Answers each lookup with the next list of addresses (the last one repeats)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class RecordingNetwork(httpcore.AsyncNetworkBackend):
    """Records where connections were asked for; refuses every one (nothing leaves)."""

    def __init__(self) -> None:
        self.connects: list[str] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append(host)
        raise httpcore.ConnectError(f"test network: no route to {host}")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def post(transport: CheckedTransport, url: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=transport, timeout=5.0) as client:
        return await client.post(url, content=b"{}")


async def test_a_checked_name_is_connected_by_address_keeping_the_host_header(
    receiver: Receiver,
) -> None:
    resolver = ScriptedResolver(["127.0.0.1"])
    transport = CheckedTransport(allow_private=True, resolver=resolver)
    resp = await post(transport, f"http://hooks.test:{receiver.port}/in")
    assert resp.status_code == 204
    assert resolver.lookups == ["hooks.test"]
    (head,) = receiver.heads
    assert head.startswith("POST /in HTTP/1.1\r\n")
    assert f"\r\nHost: hooks.test:{receiver.port}\r\n" in head


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
async def test_loopback_is_refused_before_connecting(receiver: Receiver, host: str) -> None:
    transport = CheckedTransport(allow_private=False, resolver=system_resolver)
    with pytest.raises(AddressRefused) as refused:
        await post(transport, f"http://{host}:{receiver.port}/in")
    assert refused.value.refused is AddressClass.LOOPBACK
    assert receiver.connections == 0
    # The same receiver is reachable when private addresses are allowed (the test can fail).
    if host != "[::ffff:127.0.0.1]":
        allowed = CheckedTransport(allow_private=True, resolver=system_resolver)
        assert (await post(allowed, f"http://{host}:{receiver.port}/in")).status_code == 204
        assert receiver.connections == 1


async def test_dns_rebinding_public_then_loopback_never_reaches_loopback(
    receiver: Receiver,
) -> None:
    """The name answers a public address, then loopback. The first request goes to the
    public address it checked (not to the name, which a second lookup could rebind); the
    second is refused. Loopback is never connected to."""
    resolver = ScriptedResolver([PUBLIC], ["127.0.0.1"])
    network = RecordingNetwork()
    transport = CheckedTransport(allow_private=False, resolver=resolver, network=network)
    url = f"http://rebind.test:{receiver.port}/in"

    with pytest.raises(httpx.ConnectError):
        await post(transport, url)
    assert network.connects == [PUBLIC]

    with pytest.raises(AddressRefused) as refused:
        await post(transport, url)
    assert refused.value.address == "127.0.0.1"
    assert resolver.lookups == ["rebind.test", "rebind.test"]  # once per connection
    assert network.connects == [PUBLIC]
    assert receiver.connections == 0


async def test_one_refused_address_refuses_the_whole_name(receiver: Receiver) -> None:
    resolver = ScriptedResolver([PUBLIC, "127.0.0.1"])
    network = RecordingNetwork()
    transport = CheckedTransport(allow_private=False, resolver=resolver, network=network)
    with pytest.raises(AddressRefused):
        await post(transport, f"http://mixed.test:{receiver.port}/in")
    assert network.connects == []
    assert receiver.connections == 0


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("169.254.169.254", AddressClass.METADATA),
        ("fd00:ec2::254", AddressClass.METADATA),
        ("10.0.0.1", AddressClass.PRIVATE),
        ("::ffff:192.168.1.1", AddressClass.PRIVATE),
        ("0.0.0.0", AddressClass.UNSPECIFIED),
    ],
)
async def test_resolved_private_and_metadata_addresses_are_refused(
    address: str, expected: AddressClass
) -> None:
    network = RecordingNetwork()
    transport = CheckedTransport(
        allow_private=False, resolver=ScriptedResolver([address]), network=network
    )
    with pytest.raises(AddressRefused) as refused:
        await post(transport, "http://inside.test/")
    assert refused.value.refused is expected
    assert network.connects == []


async def test_unresolvable_names_and_dead_ports_are_httpx_connect_errors(
    receiver: Receiver,
) -> None:
    async def no_such_name(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    with pytest.raises(httpx.ConnectError):
        await post(CheckedTransport(allow_private=True, resolver=no_such_name), "http://x.test/")
    await receiver.close()  # nothing listens on its port any more
    transport = CheckedTransport(allow_private=True, resolver=ScriptedResolver(["127.0.0.1"]))
    with pytest.raises(httpx.ConnectError):
        await post(transport, f"http://gone.test:{receiver.port}/")


# A self-signed certificate for hooks.test only (EC P-256, valid until 2126), made for this
# test with `openssl req -x509 -newkey ec ... -subj /CN=hooks.test
# -addext subjectAltName=DNS:hooks.test`.
HOOKS_TEST_CERT = """\
-----BEGIN CERTIFICATE-----
MIIBmDCCAT6gAwIBAgIUB7XBwQYK7by65QV9jWjNvprtMNswCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKaG9va3MudGVzdDAgFw0yNjEyMDEwNTI0MThaGA8yMTI2MTEw
NzA1MjQxOFowFTETMBEGA1UEAwwKaG9va3MudGVzdDBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABOeGmhZBIrw2f/DmBlzQ/ZgrhA83noInE4iweEN9TfBA0S3UkLXQ
FnyoBHYSU7YGXKS6Bi2dz+sHf3pk4M+aSnijajBoMB0GA1UdDgQWBBR079PcWYOy
Aoyvo09fIJmtSXQKGDAfBgNVHSMEGDAWgBR079PcWYOyAoyvo09fIJmtSXQKGDAP
BgNVHRMBAf8EBTADAQH/MBUGA1UdEQQOMAyCCmhvb2tzLnRlc3QwCgYIKoZIzj0E
AwIDSAAwRQIhAO7kk60gMRnytW31Py5wZfeCZLDeBwLTAfpoXowpue23AiBIUMTK
w3GXAGKpyNkI4y7rca8kKgzKIzTM/9UmyZ60RA==
-----END CERTIFICATE-----
"""
HOOKS_TEST_KEY = """\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgLchaJQJc/2IxHQoA
ldS8NSLoFaXnqlq12tOd1/8kwPWhRANCAATnhpoWQSK8Nn/w5gZc0P2YK4QPN56C
JxOIsHhDfU3wQNEt1JC10BZ8qAR2ElO2BlykugYtnc/rB396ZODPmkp4
-----END PRIVATE KEY-----
"""


async def test_https_keeps_the_name_for_sni_and_the_certificate_check(tmp_path: Path) -> None:
    """Connecting to the checked address must not change what TLS sees: SNI and the
    certificate check use the URL's host name."""
    (tmp_path / "cert.pem").write_text(HOOKS_TEST_CERT)
    (tmp_path / "key.pem").write_text(HOOKS_TEST_KEY)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    names: list[str | None] = []
    server_tls.sni_callback = lambda _sock, name, _ctx: names.append(name)
    receiver = Receiver()
    receiver._server = await asyncio.start_server(receiver._serve, "127.0.0.1", 0, ssl=server_tls)
    receiver.port = receiver._server.sockets[0].getsockname()[1]
    client_tls = ssl.create_default_context(cadata=HOOKS_TEST_CERT)
    try:
        transport = CheckedTransport(
            allow_private=True,
            resolver=ScriptedResolver(["127.0.0.1"]),
            ssl_context=client_tls,
        )
        resp = await post(transport, f"https://hooks.test:{receiver.port}/in")
        assert resp.status_code == 204
        assert names == ["hooks.test"]
        assert f"\r\nHost: hooks.test:{receiver.port}\r\n" in receiver.heads[0]

        # Another name on the same address: the certificate does not match it.
        with pytest.raises(httpx.ConnectError):
            await post(transport, f"https://other.test:{receiver.port}/in")
        assert names[-1] == "other.test"
        assert len(receiver.heads) == 1
    finally:
        await receiver.close()
