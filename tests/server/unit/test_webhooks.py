"""Webhook targets, attempts, signature, delivery ids, outcomes, overload and shutdown, with
httpx.MockTransport.

Nothing here sleeps for real: the backoff goes through a recording ``sleep``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
import pytest

from token_bowl_chat.protocol.models import Role
from token_bowl_chat_server.domain.entities import Message, User
from token_bowl_chat_server.domain.webhook_policy import (
    AddressClass,
    DeliveryOutcome,
    DeliveryRecord,
    WebhookTarget,
    is_delivered,
    loggable_url,
    retry_delay,
    webhook_targets,
)
from token_bowl_chat_server.services.webhook_transport import AddressRefused
from token_bowl_chat_server.services.webhooks import WebhookService

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def user(name: str, role: Role = Role.MEMBER, webhook: bool = True) -> User:
    return User(
        id=f"id-{name}",
        username=name,
        role=role,
        logo=None,
        emoji=None,
        webhook_url=f"https://hooks.example/{name}?token=t0p-{name}" if webhook else None,
        email=None,
        api_key_hint="abcd",
        created_at=0,
    )


def message(sender: User, recipient: User | None = None, seq: int = 1) -> Message:
    return Message(
        seq=seq,
        id=f"msg-{seq}",
        from_user_id=sender.id,
        from_username=sender.username,
        from_user_logo=None,
        from_user_emoji=None,
        from_user_bot=False,
        to_user_id=recipient.id if recipient else None,
        to_username=recipient.username if recipient else None,
        content="hello",
        created_at=0,
    )


ALICE, BOB, CAROL = user("alice"), user("bob"), user("carol")
BOT = user("bot", Role.BOT)
VIEWER = user("viewer", Role.VIEWER)
QUIET = user("quiet", webhook=False)
EVERYONE = [ALICE, BOB, CAROL, BOT, VIEWER, QUIET]
BODY = '{"id":"msg-1","content":"hello"}'


class Directory:
    def __init__(self, users: list[User]) -> None:
        self.users = {u.id: u for u in users}
        self.reads = 0

    async def by_id(self, user_id: str) -> User | None:
        self.reads += 1
        return self.users.get(user_id)

    async def with_webhooks(self) -> list[User]:
        self.reads += 1
        return [u for u in self.users.values() if u.webhook_url is not None]


class Endpoints:
    """The URL and secret stored now for each user (here: the directory's URL)."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets

    async def endpoints(self, user_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        by_id = {u.id: u for u in EVERYONE}
        return {
            i: (by_id[i].webhook_url or "", self.secrets.get(i))
            for i in user_ids
            if by_id[i].webhook_url
        }


class Log:
    def __init__(self) -> None:
        self.records: list[DeliveryRecord] = []
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def add(self, record: DeliveryRecord) -> None:
        self.records.append(record)

    async def stop(self, grace: float) -> None:
        self.stopped = True


class Recorder:
    """The mock endpoint: records requests, answers through a per-test handler."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.handler = handler

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.handler is None:
            return httpx.Response(200)
        return await self.handler(request)

    def urls(self) -> list[str]:
        return [str(r.url) for r in self.requests]


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_service(sleeps: list[float]) -> Callable[..., WebhookService]:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    def make(recorder: Recorder, users: list[User] | None = None, **kwargs: Any) -> WebhookService:
        kwargs.setdefault("sleep", sleep)
        kwargs.setdefault("clock", lambda: 1_700_000_000_123_456)
        return WebhookService(
            Directory(EVERYONE if users is None else users),
            user_agent="token-bowl-chat-server/test",
            transport=httpx.MockTransport(recorder),
            **kwargs,
        )

    return make


async def deliver(service: WebhookService, *messages: Message) -> None:
    """Start, enqueue, wait (bounded) until every job is handled, stop."""
    service.start()
    for msg in messages:
        service.enqueue(msg, BODY)
    async with asyncio.timeout(5):
        await service.idle()
    await service.stop()


# --- policy ---------------------------------------------------------------------------------


def test_room_targets_everyone_with_a_webhook_but_the_sender_and_viewers() -> None:
    targets = webhook_targets(message(ALICE), EVERYONE)
    assert [t.user_id for t in targets] == [BOB.id, CAROL.id, BOT.id]
    assert targets[0] == WebhookTarget(BOB.id, BOB.webhook_url or "")


def test_dm_targets_only_the_recipient() -> None:
    assert webhook_targets(message(ALICE, BOB), EVERYONE) == [
        WebhookTarget(BOB.id, BOB.webhook_url or "")
    ]
    assert webhook_targets(message(ALICE, QUIET), EVERYONE) == []


def test_dm_to_oneself_and_room_message_of_a_deleted_sender() -> None:
    assert webhook_targets(message(ALICE, ALICE), EVERYONE) == []
    orphan = dataclasses.replace(message(ALICE), from_user_id=None)
    assert {t.user_id for t in webhook_targets(orphan, EVERYONE)} == {
        ALICE.id,
        BOB.id,
        CAROL.id,
        BOT.id,
    }


def test_success_backoff_and_log_redaction() -> None:
    assert [is_delivered(s) for s in (200, 204, 299, 300, 302, 404, 500)] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    assert [retry_delay(n, 1.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert loggable_url("https://u:p@hooks.example:8443/T0/s3cr3t?token=x") == (
        "https://hooks.example:8443"
    )


# --- delivery -------------------------------------------------------------------------------


async def test_room_message_posts_the_same_body_to_every_target(
    make_service: Callable[..., WebhookService],
) -> None:
    recorder = Recorder()
    service = make_service(recorder)
    await deliver(service, message(ALICE))
    assert sorted(recorder.urls()) == sorted(u.webhook_url or "" for u in (BOB, CAROL, BOT))
    for request in recorder.requests:
        assert request.method == "POST"
        assert request.content == BODY.encode()
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"] == "token-bowl-chat-server/test"
        assert "x-token-bowl-signature" not in request.headers
    assert service.stats.delivered == 3 and service.stats.failed == 0


async def test_dm_to_oneself_reads_nothing_and_posts_nothing(
    make_service: Callable[..., WebhookService],
) -> None:
    recorder = Recorder()
    service = make_service(recorder)
    await deliver(service, message(ALICE, ALICE))
    assert recorder.requests == []
    assert isinstance(service.users, Directory) and service.users.reads == 0


async def test_each_target_is_signed_with_its_own_secret_over_timestamp_and_body(
    make_service: Callable[..., WebhookService],
) -> None:
    recorder = Recorder()
    endpoints = Endpoints({BOB.id: "whsec_bob", CAROL.id: "whsec_carol"})
    service = make_service(recorder, endpoints=endpoints)
    await deliver(service, message(ALICE))
    by_url = {str(r.url): r for r in recorder.requests}
    for target, secret in ((BOB, b"whsec_bob"), (CAROL, b"whsec_carol")):
        request = by_url[target.webhook_url or ""]
        assert request.headers["x-token-bowl-timestamp"] == "1700000000"
        signed = b"1700000000." + request.content
        expected = hmac.new(secret, signed, hashlib.sha256).hexdigest()
        assert request.headers["x-token-bowl-signature"] == f"v1={expected}"
        assert json.loads(request.content) == json.loads(BODY)
    # A webhook without a secret (set before secrets existed) is sent unsigned.
    assert "x-token-bowl-signature" not in by_url[BOT.webhook_url or ""].headers
    ids = {r.headers["x-token-bowl-delivery"] for r in recorder.requests}
    assert len(ids) == 3  # one delivery per target


async def test_retries_keep_the_delivery_id_and_the_outcome_is_recorded(
    make_service: Callable[..., WebhookService],
) -> None:
    statuses = iter([500, 503, 200])

    async def flaky(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(statuses))

    recorder = Recorder(flaky)
    log = Log()
    service = make_service(recorder, endpoints=Endpoints({BOB.id: "whsec_b"}), log=log)
    await deliver(service, message(ALICE, BOB))
    assert len({r.headers["x-token-bowl-delivery"] for r in recorder.requests}) == 1
    (record,) = log.records
    assert record.id == recorder.requests[0].headers["x-token-bowl-delivery"]
    assert (record.outcome, record.attempts, record.status_code, record.error) == (
        DeliveryOutcome.DELIVERED,
        3,
        200,
        None,
    )
    assert (record.user_id, record.message_id, record.url) == (
        BOB.id,
        "msg-1",
        "https://hooks.example",
    )
    assert log.started and log.stopped


async def test_a_refused_address_is_recorded_not_sent_and_not_retried(
    make_service: Callable[..., WebhookService], sleeps: list[float]
) -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise AddressRefused("127.0.0.1", AddressClass.LOOPBACK)

    log = Log()
    service = make_service(Recorder(refuse), log=log)
    await deliver(service, message(ALICE, BOB))
    (record,) = log.records
    assert (record.outcome, record.attempts, record.error) == (
        DeliveryOutcome.REFUSED_ADDRESS,
        0,
        "loopback",
    )
    assert sleeps == []
    assert service.stats.refused == 1 and service.stats.failed == 0


async def test_two_failures_then_success_makes_three_attempts_with_backoff(
    make_service: Callable[..., WebhookService], sleeps: list[float]
) -> None:
    statuses = iter([500, 503, 200])

    async def flaky(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(statuses))

    recorder = Recorder(flaky)
    service = make_service(recorder)
    await deliver(service, message(ALICE, BOB))
    assert recorder.urls() == [BOB.webhook_url] * 3
    assert sleeps == [1.0, 2.0]
    assert service.stats.delivered == 1 and service.stats.failed == 0


async def test_a_redirect_is_a_failure_and_is_not_followed(
    make_service: Callable[..., WebhookService],
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://elsewhere.example/"})

    recorder = Recorder(redirect)
    service = make_service(recorder, backoff=0.5)
    with caplog.at_level(logging.WARNING):
        await deliver(service, message(ALICE, BOB))
    assert recorder.urls() == [BOB.webhook_url] * 3
    assert sleeps == [0.5, 1.0]
    assert service.stats.failed == 1 and service.stats.delivered == 0
    # Logged with the host only: the token in the URL and the path never reach the log.
    assert "https://hooks.example" in caplog.text and "HTTP 302" in caplog.text
    assert "t0p-bob" not in caplog.text


async def test_transport_errors_are_retried_then_given_up(
    make_service: Callable[..., WebhookService],
) -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    recorder = Recorder(refuse)
    service = make_service(recorder, attempts=2)
    await deliver(service, message(ALICE, BOB))
    assert len(recorder.requests) == 2
    assert service.stats.failed == 1


async def test_each_attempt_is_cut_off_after_the_timeout(
    make_service: Callable[..., WebhookService],
) -> None:
    never = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await never.wait()
        return httpx.Response(200)

    recorder = Recorder(hang)
    service = make_service(recorder, timeout=0.01)
    await deliver(service, message(ALICE, BOB))
    assert len(recorder.requests) == 3
    assert service.stats.failed == 1


async def test_one_failing_target_does_not_affect_the_others(
    make_service: Callable[..., WebhookService],
) -> None:
    async def bob_is_down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500 if "bob" in request.url.path else 204)

    recorder = Recorder(bob_is_down)
    service = make_service(recorder)
    await deliver(service, message(ALICE))
    assert service.stats.delivered == 2 and service.stats.failed == 1
    assert len(recorder.requests) == 3 + 2


async def test_a_target_deleted_before_delivery_gets_nothing(
    make_service: Callable[..., WebhookService],
) -> None:
    recorder = Recorder()
    service = make_service(recorder, users=[ALICE])
    await deliver(service, message(ALICE, BOB))
    assert recorder.requests == []


# --- queue and lifecycle --------------------------------------------------------------------


async def test_a_full_queue_drops_without_blocking(
    make_service: Callable[..., WebhookService],
) -> None:
    recorder = Recorder()
    service = make_service(recorder, queue_size=2)
    # Not started: nothing drains the queue.
    for seq in (1, 2, 3, 4):
        service.enqueue(message(ALICE, BOB, seq), BODY)
    assert service.stats.enqueued == 2 and service.stats.dropped == 2
    # Jobs queued before start are delivered once it starts.
    service.start()
    async with asyncio.timeout(5):
        await service.idle()
    await service.stop()
    assert len(recorder.requests) == 2


async def test_stop_gives_a_grace_then_cancels_and_refuses_new_jobs(
    make_service: Callable[..., WebhookService],
) -> None:
    arrived = asyncio.Event()
    never = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await never.wait()
        return httpx.Response(200)

    recorder = Recorder(hang)
    service = make_service(recorder, shutdown_grace=0.05, workers=1)
    service.start()
    service.enqueue(message(ALICE, BOB, 1), BODY)
    service.enqueue(message(ALICE, BOB, 2), BODY)
    async with asyncio.timeout(5):
        await arrived.wait()
        await service.stop()
    # One in flight, one still queued: both abandoned.
    assert service.stats.abandoned == 2
    service.enqueue(message(ALICE, BOB, 3), BODY)
    assert service.stats.dropped == 1
    assert len(recorder.requests) == 1


async def test_stop_lets_quick_deliveries_finish(
    make_service: Callable[..., WebhookService],
) -> None:
    recorder = Recorder()
    service = make_service(recorder)
    service.start()
    for seq in range(1, 6):
        service.enqueue(message(ALICE, BOB, seq), BODY)
    async with asyncio.timeout(5):
        await service.stop()
    assert len(recorder.requests) == 5
    assert service.stats.abandoned == 0


async def test_nothing_is_queued_while_nobody_has_a_webhook(
    make_service: Callable[..., WebhookService],
) -> None:
    recorder = Recorder()
    nobody = [True]
    service = make_service(recorder, nobody_has_a_webhook=lambda: nobody[0])
    await deliver(service, message(ALICE), message(ALICE, BOB))
    assert service.stats.unneeded == 2 and service.stats.enqueued == 0
    assert recorder.requests == []

    nobody[0] = False  # someone set a webhook since: messages go to the workers again
    service = make_service(recorder, nobody_has_a_webhook=lambda: nobody[0])
    await deliver(service, message(ALICE, BOB))
    assert service.stats.enqueued == 1 and service.stats.unneeded == 0
    assert recorder.urls() == [BOB.webhook_url]
