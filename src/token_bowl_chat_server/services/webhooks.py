"""Webhook delivery in the background (PROTOCOL.md section 7.9; fixes gap 18).

Upstream awaited every webhook before answering the sender, so one dead endpoint added up to
33 s to ``POST /messages`` and stalled the sender's WebSocket loop. Here the send path only
calls :meth:`WebhookService.enqueue`, which never blocks and never does I/O:

    MessageService._commit_and_publish --enqueue(message, text)--> bounded asyncio.Queue
        --> ``workers`` tasks: resolve targets, POST to each (concurrently), retry, log

* **Payload.** The body is the text already encoded for the WebSocket delivery (a
  MessageResponse, as upstream sends), so every target gets the same bytes, encoded once.
  Headers: ``Content-Type: application/json``, ``User-Agent: token-bowl-chat-server/<v>`` and,
  when a secret is configured, ``X-Token-Bowl-Signature: sha256=<hex HMAC of the body>``.
* **Targets** are resolved by the worker, not the sender: one indexed read of the users that
  have a webhook for a room message, one primary-key read for a DM (none for a DM to
  oneself). A cache of webhook URLs would need every profile, role and deletion path to
  invalidate it; a read that runs after the message was committed is always current and
  costs the sender nothing. Rules:
  :func:`~token_bowl_chat_server.domain.webhook_policy.webhook_targets`.
* **Attempts.** Up to ``attempts`` tries per target, each bounded by ``timeout`` seconds in
  total (connect to response headers; the response body is never read), waiting ``backoff``,
  then twice that, and so on between tries. Only a 2xx succeeds; redirects are not followed.
  Failures are only logged, with the URL cut to scheme, host and port and never the secret.
* **Overload.** When the queue is full the delivery is dropped and counted in
  ``stats.dropped`` (logged on the first drop and every 1000th after), never waited for.
* **Order.** Workers run concurrently, so a target may see messages out of order; the
  ``seq`` field lets it reorder. ``workers=1`` keeps send order except across retries.
* **Shutdown** (:meth:`stop`): new messages are refused, queued and in-flight deliveries get
  ``shutdown_grace`` seconds, the rest is cancelled (counted in ``stats.abandoned``).

Security: webhook URLs are user-supplied, so the server makes HTTP requests on a user's
behalf to any host it can reach (SSRF), including internal services and cloud metadata
endpoints. Deployments should restrict the server's egress (firewall or proxy) to the
networks webhook receivers live in; this module does no address filtering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from token_bowl_chat_server.domain.entities import Message, User
from token_bowl_chat_server.domain.webhook_policy import (
    SIGNATURE_HEADER,
    WebhookTarget,
    is_delivered,
    loggable_url,
    retry_delay,
    signature,
    webhook_targets,
)

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

_DROP_LOG_EVERY = 1000


class WebhookDirectory(Protocol):
    """The part of the user store that target resolution reads."""

    async def by_id(self, user_id: str) -> User | None: ...
    async def with_webhooks(self) -> list[User]: ...


@dataclass
class WebhookStats:
    """Counters since start, for logs and future metrics."""

    enqueued: int = 0  # messages accepted into the queue
    dropped: int = 0  # messages refused: queue full, or the service stopped
    delivered: int = 0  # target deliveries answered with 2xx
    failed: int = 0  # target deliveries that used up every attempt
    abandoned: int = 0  # messages still queued or in flight when shutdown cancelled them


@dataclass(frozen=True, slots=True)
class _Job:
    message: Message
    text: str


class WebhookService:
    """Owns the queue, the worker tasks and the one shared ``httpx.AsyncClient``.

    Call :meth:`start` once inside the running loop and :meth:`stop` once at shutdown.
    ``transport`` and ``sleep`` are for tests (``httpx.MockTransport``, a recording sleep).
    """

    def __init__(
        self,
        users: WebhookDirectory,
        *,
        user_agent: str,
        secret: str | None = None,
        attempts: int = 3,
        timeout: float = 10.0,
        backoff: float = 1.0,
        queue_size: int = 10_000,
        workers: int = 4,
        shutdown_grace: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.users = users
        self.stats = WebhookStats()
        self._user_agent = user_agent
        self._secret = secret.encode() if secret else None
        self._attempts = attempts
        self._timeout = timeout
        self._backoff = backoff
        self._worker_count = workers
        self._shutdown_grace = shutdown_grace
        self._transport = transport
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
            headers={"User-Agent": self._user_agent},
        )
        self._workers = [
            asyncio.create_task(self._work(), name=f"webhook-worker-{n}")
            for n in range(self._worker_count)
        ]

    def enqueue(self, message: Message, text: str) -> None:
        """Schedule the webhooks for a newly stored ``message``; ``text`` is its encoded
        MessageResponse. Never blocks: when the queue is full the message is dropped."""
        if not self._accepting:
            self.stats.dropped += 1
            logger.debug("webhooks stopped; message %s not delivered", message.id)
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
        headers = {"Content-Type": "application/json"}
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = signature(self._secret, body)
        if len(targets) == 1:
            await self._deliver(targets[0], body, headers, job.message.id)
            return
        async with asyncio.TaskGroup() as group:
            for target in targets:
                group.create_task(self._deliver(target, body, headers, job.message.id))

    async def _targets(self, message: Message) -> list[WebhookTarget]:
        if message.is_room:
            candidates = await self.users.with_webhooks()
        elif message.to_user_id is None or message.to_user_id == message.from_user_id:
            candidates = []
        else:
            recipient = await self.users.by_id(message.to_user_id)
            candidates = [recipient] if recipient is not None else []
        return webhook_targets(message, candidates)

    async def _deliver(
        self, target: WebhookTarget, body: bytes, headers: dict[str, str], message_id: str
    ) -> None:
        """POST to one target, retrying. A failed delivery is logged and counted, not raised."""
        client = self._client
        assert client is not None, "start() was not called"
        outcome = ""
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                await self._sleep(retry_delay(attempt - 1, self._backoff))
            try:
                async with (
                    asyncio.timeout(self._timeout),
                    client.stream("POST", target.url, content=body, headers=headers) as response,
                ):
                    status = response.status_code
            except (httpx.HTTPError, httpx.InvalidURL, TimeoutError, OSError) as exc:
                # The exception text may quote the URL; its class is enough.
                outcome = type(exc).__name__
            else:
                if is_delivered(status):
                    self.stats.delivered += 1
                    return
                outcome = f"HTTP {status}"
            logger.debug(
                "webhook attempt %d/%d to %s for message %s failed: %s",
                attempt,
                self._attempts,
                loggable_url(target.url),
                message_id,
                outcome,
            )
        self.stats.failed += 1
        logger.warning(
            "webhook to %s (user %s) for message %s failed after %d attempt(s): %s",
            loggable_url(target.url),
            target.user_id,
            message_id,
            self._attempts,
            outcome,
        )
