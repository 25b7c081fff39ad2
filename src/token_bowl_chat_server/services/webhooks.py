"""Webhook delivery in the background (PROTOCOL.md section 7.9; fixes gap 18).

Upstream awaited every webhook before answering the sender, so one dead endpoint added up to
33 s to ``POST /messages`` and stalled the sender's WebSocket loop. Here the send path only
calls :meth:`WebhookService.enqueue`, which never blocks and never does I/O:

    MessageService._commit_and_publish --enqueue(message, text)--> bounded asyncio.Queue
        --> ``workers`` tasks: resolve targets, POST to each (concurrently), retry, log

* **Payload.** The body is the text already encoded for the WebSocket delivery (a
  MessageResponse, as upstream sends), so every target gets the same bytes, encoded once.
  Headers: ``Content-Type: application/json``, ``User-Agent: token-bowl-chat-server/<v>``,
  ``X-Token-Bowl-Delivery`` (one id per message and target, the same on every attempt),
  ``X-Token-Bowl-Timestamp`` (Unix seconds of the attempt) and, when the target has a secret,
  ``X-Token-Bowl-Signature: v1=<hex HMAC-SHA256(secret, timestamp "." body)>``
  (:func:`~token_bowl_chat_server.domain.webhook_policy.signature`). A URL set before
  per-user secrets existed has none and is sent unsigned until its owner sets or rotates it.
* **Targets** are resolved by the worker, not the sender: one indexed read of the users that
  have a webhook for a room message, one primary-key read for a DM (none for a DM to
  oneself). A cache of webhook URLs would need every profile, role and deletion path to
  invalidate it; a read that runs after the message was committed is always current and
  costs the sender nothing. Rules:
  :func:`~token_bowl_chat_server.domain.webhook_policy.webhook_targets`.
* **Addresses.** The transport (``services/webhook_transport.py``) resolves the host at
  every connect, refuses the request when any address is forbidden
  (:func:`~token_bowl_chat_server.domain.webhook_policy.address_refusal`) and connects only
  to an address it checked, so DNS rebinding cannot slip a private address in. A refused
  address is not retried.
* **Attempts.** Up to ``attempts`` tries per target, each bounded by ``timeout`` seconds in
  total (resolve, connect, response headers; the response body is never read), waiting
  ``backoff``, then twice that, and so on between tries. Only a 2xx succeeds; redirects are
  not followed. Failures are logged with the URL cut to scheme, host and port and never the
  secret.
* **Outcome.** Each finished delivery (delivered, failed, refused_address) goes to the
  :class:`~token_bowl_chat_server.services.webhook_log.DeliveryLog`, which stores it for
  the owner (``GET /users/me/webhook/deliveries``) without ever holding up a worker.
* **Overload.** When the queue is full the delivery is dropped and counted in
  ``stats.dropped`` (logged on the first drop and every 1000th after), never waited for.
* **Order.** Workers run concurrently, so a target may see messages out of order; the
  ``seq`` field lets it reorder. ``workers=1`` keeps send order except across retries.
* **Shutdown** (:meth:`stop`): new messages are refused, queued and in-flight deliveries get
  ``shutdown_grace`` seconds, the rest is cancelled (counted in ``stats.abandoned``).

Targets and secrets are read by the worker after the message was committed: a URL changed
since is honoured at once, and a URL is always signed with the secret stored with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx

from token_bowl_chat_server.domain.entities import Message, User
from token_bowl_chat_server.domain.webhook_policy import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryOutcome,
    DeliveryRecord,
    WebhookTarget,
    is_delivered,
    loggable_url,
    retry_delay,
    signature,
    webhook_targets,
)
from token_bowl_chat_server.services.clock import WallClock, now_micros
from token_bowl_chat_server.services.webhook_transport import AddressRefused, CheckedTransport

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

_DROP_LOG_EVERY = 1000


class WebhookDirectory(Protocol):
    """The part of the user store that target resolution reads."""

    async def by_id(self, user_id: str) -> User | None: ...
    async def with_webhooks(self) -> list[User]: ...


class WebhookEndpoints(Protocol):
    """Where each target's webhook points now, and the secret stored with that URL."""

    async def endpoints(self, user_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]: ...


class DeliveryRecorder(Protocol):
    """Started and stopped with the service; ``add`` must never block."""

    def start(self) -> None: ...
    def add(self, record: DeliveryRecord) -> None: ...
    async def stop(self, grace: float) -> None: ...


@dataclass
class WebhookStats:
    """Counters since start, for logs and future metrics."""

    enqueued: int = 0  # messages accepted into the queue
    unneeded: int = 0  # messages not queued: nobody had a webhook when they were stored
    dropped: int = 0  # messages refused: queue full, or the service stopped
    delivered: int = 0  # target deliveries answered with 2xx
    failed: int = 0  # target deliveries that used up every attempt
    refused: int = 0  # target deliveries not sent: the host resolved to a refused address
    abandoned: int = 0  # messages still queued or in flight when shutdown cancelled them


@dataclass(frozen=True, slots=True)
class _Job:
    message: Message
    text: str


class WebhookService:
    """Owns the queue, the worker tasks and the one shared ``httpx.AsyncClient``.

    Call :meth:`start` once inside the running loop and :meth:`stop` once at shutdown.
    ``transport`` defaults to a :class:`CheckedTransport` that refuses every non-public
    address; tests pass ``httpx.MockTransport``, a recording ``sleep`` and a fixed ``clock``.
    Without ``endpoints`` requests are unsigned and go to the URL read with the target;
    without ``log`` outcomes are only counted.
    """

    def __init__(
        self,
        users: WebhookDirectory,
        *,
        user_agent: str,
        endpoints: WebhookEndpoints | None = None,
        log: DeliveryRecorder | None = None,
        attempts: int = 3,
        timeout: float = 10.0,
        backoff: float = 1.0,
        queue_size: int = 10_000,
        workers: int = 4,
        shutdown_grace: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: WallClock = now_micros,
        nobody_has_a_webhook: Callable[[], bool] = lambda: False,
    ) -> None:
        """``nobody_has_a_webhook``: True when it is known at once that no user has one
        (``CachedWebhookDirectory``); each message is then dropped at :meth:`enqueue` rather
        than queued and woken a worker for, which was a few percent of every send."""
        self.users = users
        self._nobody_has_a_webhook = nobody_has_a_webhook
        self.stats = WebhookStats()
        self._user_agent = user_agent
        self._endpoints = endpoints
        self._log = log
        self._clock = clock
        self._attempts = attempts
        self._timeout = timeout
        self._backoff = backoff
        self._worker_count = workers
        self._shutdown_grace = shutdown_grace
        self._transport = transport or CheckedTransport(allow_private=False)
        self._sleep = sleep
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(queue_size)
        self._workers: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._accepting = True
        self._busy = 0

    def start(self) -> None:
        """Open the HTTP client and start the workers. Jobs queued before are delivered."""
        self._client = httpx.AsyncClient(
            transport=self._transport,
            timeout=self._timeout,
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: it would resolve names itself
            headers={"User-Agent": self._user_agent},
        )
        self._workers = [
            asyncio.create_task(self._work(), name=f"webhook-worker-{n}")
            for n in range(self._worker_count)
        ]
        if self._log is not None:
            self._log.start()

    def enqueue(self, message: Message, text: str) -> None:
        """Schedule the webhooks for a newly stored ``message``; ``text`` is its encoded
        MessageResponse. Never blocks: when the queue is full the message is dropped."""
        if not self._accepting:
            self.stats.dropped += 1
            logger.debug("webhooks stopped; message %s not delivered", message.id)
            return
        if self._nobody_has_a_webhook():
            self.stats.unneeded += 1
            return
        try:
            self._queue.put_nowait(_Job(message, text))
        except asyncio.QueueFull:
            self.stats.dropped += 1
            if self.stats.dropped % _DROP_LOG_EVERY == 1:
                logger.warning(
                    "webhook queue full (%d); message %s dropped (%d dropped so far)",
                    self._queue.maxsize,
                    message.id,
                    self.stats.dropped,
                )
            return
        self.stats.enqueued += 1

    async def idle(self) -> None:
        """Wait until every job queued so far has been handled."""
        await self._queue.join()

    async def stop(self) -> None:
        """Refuse new jobs, give the queued and in-flight ones ``shutdown_grace`` seconds,
        cancel the rest and close the client."""
        self._accepting = False
        if self._workers:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._shutdown_grace):
                    await self._queue.join()
            abandoned = self._queue.qsize() + self._busy
            for task in self._workers:
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            self._workers = []
            if abandoned:
                self.stats.abandoned += abandoned
                logger.warning("shutdown: webhooks for %d message(s) abandoned", abandoned)
        if self._log is not None:
            # After the workers, whose last outcomes it still stores.
            await self._log.stop(self._shutdown_grace)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            self._busy += 1
            try:
                await self._handle(job)
            except Exception:
                logger.exception("webhooks for message %s failed", job.message.id)
            finally:
                self._busy -= 1
                self._queue.task_done()

    async def _handle(self, job: _Job) -> None:
        targets = await self._targets(job.message)
        if not targets:
            return
        body = job.text.encode()
        if len(targets) == 1:
            await self._deliver(targets[0], body, job.message.id)
            return
        async with asyncio.TaskGroup() as group:
            for target in targets:
                group.create_task(self._deliver(target, body, job.message.id))

    async def _targets(self, message: Message) -> list[_Endpoint]:
        if message.is_room:
            candidates = await self.users.with_webhooks()
        elif message.to_user_id is None or message.to_user_id == message.from_user_id:
            candidates = []
        else:
            recipient = await self.users.by_id(message.to_user_id)
            candidates = [recipient] if recipient is not None else []
        targets = webhook_targets(message, candidates)
        if self._endpoints is None or not targets:
            return [_Endpoint(t, t.url, None) for t in targets]
        # The URL and its secret from one row: a URL changed since the first read is signed
        # with its own secret, never with the one of the URL it replaced.
        current = await self._endpoints.endpoints([t.user_id for t in targets])
        return [_Endpoint(t, *current[t.user_id]) for t in targets if t.user_id in current]

    async def _deliver(self, endpoint: _Endpoint, body: bytes, message_id: str) -> None:
        """POST to one target, retrying; the outcome is counted, logged and recorded for
        the owner, never raised."""
        client = self._client
        assert client is not None, "start() was not called"
        delivery_id = str(uuid.uuid4())
        started = self._clock()
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery_id}
        attempts = 0
        status: int | None = None
        error: str | None = None
        outcome = DeliveryOutcome.FAILED
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                await self._sleep(retry_delay(attempt - 1, self._backoff))
            timestamp = self._clock() // 1_000_000
            headers[TIMESTAMP_HEADER] = str(timestamp)
            if endpoint.secret is not None:
                headers[SIGNATURE_HEADER] = signature(endpoint.secret, timestamp, body)
            try:
                async with asyncio.timeout(self._timeout):
                    async with client.stream(
                        "POST", endpoint.url, content=body, headers=headers
                    ) as response:
                        status, error = response.status_code, None
            except AddressRefused as exc:
                # Nothing was sent (the connection is refused before it is made), and the
                # same name will most likely resolve the same way: no retry.
                outcome, error = DeliveryOutcome.REFUSED_ADDRESS, exc.refused.value
                break
            except (httpx.HTTPError, httpx.InvalidURL, TimeoutError, OSError) as exc:
                # The exception text may quote the URL; its class is enough.
                attempts += 1
                status, error = None, type(exc).__name__
            else:
                attempts += 1
                if is_delivered(status):
                    outcome = DeliveryOutcome.DELIVERED
                    break
                error = f"HTTP {status}"
            logger.debug(
                "webhook attempt %d/%d to %s for message %s failed: %s",
                attempt,
                self._attempts,
                loggable_url(endpoint.url),
                message_id,
                error,
            )
        self._count(endpoint, message_id, outcome, error)
        if self._log is not None:
            self._log.add(
                DeliveryRecord(
                    id=delivery_id,
                    user_id=endpoint.target.user_id,
                    message_id=message_id,
                    url=loggable_url(endpoint.url),
                    outcome=outcome,
                    attempts=attempts,
                    status_code=status,
                    error=None if outcome is DeliveryOutcome.DELIVERED else error,
                    created_at=started,
                    finished_at=self._clock(),
                )
            )

    def _count(
        self, endpoint: _Endpoint, message_id: str, outcome: DeliveryOutcome, error: str | None
    ) -> None:
        if outcome is DeliveryOutcome.DELIVERED:
            self.stats.delivered += 1
            return
        if outcome is DeliveryOutcome.REFUSED_ADDRESS:
            self.stats.refused += 1
            what = "refused: the host resolved to a forbidden address"
        else:
            self.stats.failed += 1
            what = f"failed after {self._attempts} attempt(s)"
        logger.warning(
            "webhook to %s (user %s) for message %s %s: %s",
            loggable_url(endpoint.url),
            endpoint.target.user_id,
            message_id,
            what,
            error,
        )


@dataclass(frozen=True, slots=True)
class _Endpoint:
    target: WebhookTarget
    url: str
    secret: str | None
