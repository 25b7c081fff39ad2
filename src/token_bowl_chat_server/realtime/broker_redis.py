"""The broker across server processes: Redis pub/sub, one channel for every node.

Publishing delivers to this node at once (a frame with a seq through the sequencer, which
puts it in seq order with the frames of other nodes) and queues the frame for Redis; a
background task publishes what the queue holds as one Redis message per batch, so
``publish`` never waits on the network and a busy node costs the others few reads. Every
node subscribes to the channel and delivers what other nodes published the same way.
Commands (close a user's sockets, refresh an account, stop a typing indicator) travel on the
same channel, so they keep their order with the frames of their node.

Pub/sub keeps nothing: a node that is away misses what was said meanwhile. That is the
right trade here, because the database is the log: a frame with a seq that never arrives is
read back by the sequencer (``sequencer.py``) and resumed clients replay from the database;
what has no seq (typing, receipts, presence) is only worth something live. While Redis is
down the node keeps serving its own clients (local delivery does not go through Redis),
reads the database's last seq every second to deliver other nodes' commits, and reconnects
with jittered backoff; ``on_connect`` callbacks then re-register what lives in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from token_bowl_chat_server.realtime.audience import Audience
from token_bowl_chat_server.realtime.cluster_codec import (
    BadEnvelope,
    Envelope,
    FrameEnvelope,
    decode_batch,
    encode_batch,
    encode_command,
    encode_frame,
)
from token_bowl_chat_server.realtime.hub import Hub
from token_bowl_chat_server.realtime.sequencer import Sequencer

logger = logging.getLogger(__name__)

CHANNEL = "tbc:events"
OUTBOX_SIZE = 50_000
# Envelopes in one Redis message at most.
_PUBLISH_BATCH = 256
_FIRST_BACKOFF = 0.1
_MAX_BACKOFF = 5.0
# While Redis is away, how often the database is asked for commits of other nodes.
_POLL_INTERVAL = 1.0

CommandHandler = Callable[[dict[str, Any]], None]


class RedisBroker:
    def __init__(
        self,
        hub: Hub,
        sequencer: Sequencer,
        redis: Redis,
        node_id: str,
        last_committed: Callable[[], Awaitable[int]],
        channel: str = CHANNEL,
    ) -> None:
        self.hub = hub
        self.sequencer = sequencer
        self.redis = redis
        self.node_id = node_id
        self.last_committed = last_committed
        self.channel = channel
        self.connected = False
        # Called (awaited, in order) after every (re)subscription: re-register what lives in
        # Redis and catch up with what was missed. A failure counts as a lost connection.
        self.on_connect: list[Callable[[], Awaitable[None]]] = []
        self._handlers: dict[str, CommandHandler] = {}
        self._outbox: asyncio.Queue[str] = asyncio.Queue(OUTBOX_SIZE)
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self._publish_failing = False
        self.published = 0  # envelopes sent to Redis
        self.received = 0  # envelopes of other nodes taken from Redis
        self.dropped = 0  # envelopes not sent: Redis away or the outbox full
        self.reconnects = 0

    # --- the Publisher port -----------------------------------------------------------------

    def publish(self, audience: Audience, text: str, seq: int | None = None) -> None:
        if seq is None:
            self.hub.deliver(audience, text)
        else:
            self.sequencer.offer(seq, audience, text)
        self._send(encode_frame(self.node_id, audience, text, seq))

    # --- commands to the other nodes --------------------------------------------------------

    def on_command(self, name: str, handler: CommandHandler) -> None:
        self._handlers[name] = handler

    def broadcast(self, name: str, **args: Any) -> None:
        """Run command ``name`` on every other node (its handler there, with ``args``)."""
        self._send(encode_command(self.node_id, name, **args))

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._receive_forever(), name="redis-receive"),
            loop.create_task(self._publish_forever(), name="redis-publish"),
            loop.create_task(self._poll_while_away(), name="redis-away-poll"),
        ]

    async def wait_subscribed(self, within: float) -> bool:
        """Whether the first subscription succeeded within ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                await self._subscribed.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._flush()
        self.sequencer.close()

    async def _flush(self) -> None:
        """Publish what is still queued (the last messages' frames, this node's users going
        offline), while Redis answers within a second: a stopping node's news is not lost."""
        pending = [self._outbox.get_nowait() for _ in range(self._outbox.qsize())]
        if not pending or not self.connected:
            return
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                for start in range(0, len(pending), _PUBLISH_BATCH):
                    batch = pending[start : start + _PUBLISH_BATCH]
                    await self.redis.publish(self.channel, encode_batch(batch))
                    self.published += len(batch)

    async def ping(self) -> bool:
        """Whether Redis answers now, within a second (readiness)."""
        if not self.connected:
            return False
        try:
            async with asyncio.timeout(1.0):
                return bool(await self.redis.ping())  # type: ignore[misc]
        except (RedisError, OSError, TimeoutError):
            return False

    # --- internals ----------------------------------------------------------------------------

    def _send(self, payload: str) -> None:
        if not self.connected:
            self.dropped += 1
            return
        try:
            self._outbox.put_nowait(payload)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _publish_forever(self) -> None:
        while True:
            batch = [await self._outbox.get()]
            while len(batch) < _PUBLISH_BATCH and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            if not self.connected:
                self.dropped += len(batch)
                continue
            try:
                # One message for the batch: a receiving node takes it in one read.
                await self.redis.publish(self.channel, encode_batch(batch))
            except (RedisError, OSError) as exc:
                self.dropped += len(batch)
                if not self._publish_failing:
                    logger.warning("publishing to Redis failed: %s", exc)
                self._publish_failing = True
                continue
            self._publish_failing = False
            self.published += len(batch)

    async def _receive_forever(self) -> None:
        backoff = _FIRST_BACKOFF
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                for callback in self.on_connect:
                    await callback()
                logger.info("node %s subscribed to Redis (%s)", self.node_id, self.channel)
                self.connected = True
                self._subscribed.set()
                backoff = _FIRST_BACKOFF
                await self._catch_up()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self._dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis gone (or a callback failed with it)
                if self.connected or self.reconnects == 0:
                    logger.warning("Redis unavailable (%s); delivering locally only", exc)
                self.connected = False
                self.reconnects += 1
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _catch_up(self) -> None:
        """Deliver what other nodes committed while this one was not listening."""
        try:
            self.sequencer.catch_up(await self.last_committed())
        except Exception as exc:  # the database is down too: later gaps are filled then
            logger.warning("cannot read the last seq after subscribing: %s", exc)

    async def _poll_while_away(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(_POLL_INTERVAL)
            if self.connected:
                continue
            try:
                self.sequencer.catch_up(await self.last_committed())
                failing = False
            except Exception as exc:
                if not failing:
                    logger.warning("cannot read the last seq while Redis is away: %s", exc)
                failing = True

    def _dispatch(self, data: bytes) -> None:
        try:
            envelopes = decode_batch(data, skip_node=self.node_id)
        except BadEnvelope as exc:
            logger.warning("ignoring a malformed payload on %s: %s", self.channel, exc)
            return
        for envelope in envelopes:
            if envelope.node != self.node_id:
                self.received += 1
                self._take(envelope)

    def _take(self, envelope: Envelope) -> None:
        if isinstance(envelope, FrameEnvelope):
            if envelope.seq is None:
                self.hub.deliver(envelope.audience, envelope.text)
            else:
                self.sequencer.offer(envelope.seq, envelope.audience, envelope.text)
            return
        handler = self._handlers.get(envelope.name)
        if handler is None:
            return
        try:
            handler(envelope.args)
        except Exception:
            logger.exception("command %s from node %s failed", envelope.name, envelope.node)
