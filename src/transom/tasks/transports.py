"""How a task travels: in this process, inline (eager), or over RabbitMQ / Redis with taskiq.

The brokers are taskiq's (``taskiq-aio-pika``, ``taskiq-redis``), through their public API; this
module adds what the battery promises on both: per-queue delays, priorities, a dead-letter place
that can be listed and re-run, and durable queues with persistent messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, cast

import orjson

from transom.tasks.pipelining import Pipeliner

__all__ = [
    "AmqpTransport",
    "DeadLetter",
    "EagerTransport",
    "Envelope",
    "InProcessTransport",
    "RedisTransport",
    "Transport",
]

logger = logging.getLogger("transom.tasks")


@dataclasses.dataclass
class Envelope:
    """One run of one task, as it travels (JSON)."""

    id: str
    task: str
    arguments: dict[str, Any]
    queue: str
    priority: int | None = None
    attempt: int = 0
    request_id: str | None = None
    enqueued_at: float = dataclasses.field(default_factory=time.time)
    key: str | None = None

    def labels(self) -> dict[str, Any]:
        labels: dict[str, Any] = {
            "queue": self.queue,
            "attempt": self.attempt,
            "enqueued_at": repr(self.enqueued_at),
        }
        if self.priority is not None:
            labels["priority"] = self.priority
        if self.request_id:
            labels["request_id"] = self.request_id
        if self.key:
            labels["key"] = self.key
        return labels

    @classmethod
    def from_message(cls, message: Any) -> Envelope:
        """From a taskiq message (``TaskiqMessage``) received by a worker."""
        labels = message.labels
        priority = labels.get("priority")
        return cls(
            id=message.task_id,
            task=message.task_name,
            arguments=dict(message.kwargs),
            queue=str(labels.get("queue", "")),
            priority=int(priority) if priority not in (None, "") else None,
            attempt=int(labels.get("attempt", 0)),
            request_id=labels.get("request_id") or None,
            enqueued_at=float(labels.get("enqueued_at", time.time())),
            key=labels.get("key") or None,
        )

    @classmethod
    def from_body(cls, body: bytes) -> Envelope:
        """From the message body of :meth:`body` (taskiq's JSON message), as a worker gets it."""
        data = orjson.loads(body)
        labels = data.get("labels") or {}
        priority = labels.get("priority")
        return cls(
            id=str(data["task_id"]),
            task=str(data["task_name"]),
            arguments=dict(data.get("kwargs") or {}),
            queue=str(labels.get("queue", "")),
            priority=int(priority) if priority not in (None, "") else None,
            attempt=int(labels.get("attempt", 0)),
            request_id=labels.get("request_id") or None,
            enqueued_at=float(labels.get("enqueued_at", time.time())),
            key=labels.get("key") or None,
        )

    def to_json(self) -> bytes:
        return orjson.dumps(dataclasses.asdict(self))

    def body(self, destination: str) -> bytes:
        """The message body a taskiq worker reads (taskiq's JSON ``TaskiqMessage``), bound for
        ``destination`` (the queue or stream as named on the server).

        Written with orjson, not through taskiq's pydantic model and formatter: the same
        bytes' worth of JSON for a fraction of the CPU of every enqueue.
        """
        labels = self.labels()
        labels["queue_name"] = destination  # taskiq's brokers route by this label
        return orjson.dumps(
            {
                "task_id": self.id,
                "task_name": self.task,
                "labels": labels,
                "labels_types": None,
                "args": [],
                "kwargs": self.arguments,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Envelope:
        return cls(**orjson.loads(raw))


@dataclasses.dataclass
class DeadLetter:
    """A task that kept failing, kept until it is re-run or discarded."""

    envelope: Envelope
    error: str
    failed_at: float

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "envelope": dataclasses.asdict(self.envelope),
                "error": self.error,
                "at": self.failed_at,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        data = orjson.loads(raw)
        return cls(Envelope(**data["envelope"]), data["error"], data["at"])


Runner = Callable[[Envelope], Awaitable[None]]


class Transport(Protocol):
    """What the battery needs from a backend."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def send(self, envelope: Envelope, delay: float | None) -> None: ...
    async def dead_letter(self, letter: DeadLetter) -> None: ...
    async def dead_letters(self) -> list[DeadLetter]: ...
    async def take_dead(self, task_id: str) -> DeadLetter | None: ...


class _MemoryDeadLetters:
    def __init__(self) -> None:
        self.dead: dict[str, DeadLetter] = {}

    async def dead_letter(self, letter: DeadLetter) -> None:
        self.dead[letter.envelope.id] = letter

    async def dead_letters(self) -> list[DeadLetter]:
        return list(self.dead.values())

    async def take_dead(self, task_id: str) -> DeadLetter | None:
        return self.dead.pop(task_id, None)


class InProcessTransport(_MemoryDeadLetters):
    """Runs tasks on the app's event loop (sync ones in its thread pool), not in ``enqueue``.

    Nothing survives the process: this is the development default.
    """

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner
        self.running: set[asyncio.Task[None]] = set()
        self.timers: set[asyncio.TimerHandle] = set()

    async def start(self) -> None:
        return None

    def _start(self, envelope: Envelope, timer: asyncio.TimerHandle | None = None) -> None:
        if timer is not None:
            self.timers.discard(timer)
        run: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            cast("Coroutine[Any, Any, None]", self.runner(envelope))
        )
        self.running.add(run)
        run.add_done_callback(self.running.discard)

    async def send(self, envelope: Envelope, delay: float | None) -> None:
        loop = asyncio.get_running_loop()
        if delay:
            holder: list[asyncio.TimerHandle] = []
            timer = loop.call_later(delay, lambda: self._start(envelope, holder[0]))
            holder.append(timer)
            self.timers.add(timer)
        else:
            # call_soon, not create_task now: the task starts once the handler yields.
            loop.call_soon(self._start, envelope)

    async def drain(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait (bounded) for the tasks started so far (and the ones they start)."""
        deadline = time.monotonic() + timeout
        await asyncio.sleep(0)
        while self.running and time.monotonic() < deadline:
            await asyncio.wait(set(self.running), timeout=deadline - time.monotonic())
            await asyncio.sleep(0)

    async def close(self) -> None:
        for timer in self.timers:
            timer.cancel()
        if self.timers:
            logger.warning("%d delayed in-process task(s) dropped at shutdown", len(self.timers))
        self.timers.clear()
        await self.drain()


class EagerTransport(_MemoryDeadLetters):
    """Runs each task inside ``enqueue`` (delays ignored, retries at once): for tests."""

    def __init__(self, runner: Runner) -> None:
        super().__init__()
        self.runner = runner

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, envelope: Envelope, delay: float | None) -> None:
        await self.runner(envelope)


class AmqpTransport:
    """RabbitMQ through taskiq-aio-pika: one durable classic queue per task queue
    (``<prefix>.<queue>``, priorities 0-9), persistent messages, publisher confirms, a delay
    queue per queue (per-message TTL, dead-lettered back into the queue) and a dead-letter
    queue ``<prefix>.dead``.
    """

    def __init__(self, url: str, prefix: str, queues: list[str], prefetch: int, timeout: float):
        self.url = url
        self.prefix = prefix
        self.queues = list(dict.fromkeys(queues))
        self.broker = self.make_broker(self.queues, prefetch, timeout)
        self.exchange_name = f"{prefix}.tasks"

    def queue_name(self, queue: str) -> str:
        return f"{self.prefix}.{queue}"

    def make_broker(self, queues: list[str], prefetch: int, timeout: float) -> Any:
        from aio_pika import ExchangeType
        from taskiq_aio_pika import AioPikaBroker, Exchange, Queue, QueueType

        return AioPikaBroker(
            self.url,
            qos=prefetch,
            exchange=Exchange(name=f"{self.prefix}.tasks", type=ExchangeType.DIRECT),
            task_queues=[
                Queue(name=self.queue_name(q), type=QueueType.CLASSIC, max_priority=9)
                for q in queues
            ],
            dead_letter_queue=Queue(name=f"{self.prefix}.dead", type=QueueType.CLASSIC),
            timeout=timeout,
            # aio-pika's robust connection reconnects by itself; try every second, not five.
            reconnect_interval=1,
        )

    def queue_arguments(self) -> dict[str, Any]:
        """The arguments taskiq-aio-pika declares a task queue with (a consumer declaring it
        again must give the same ones, or RabbitMQ refuses with PRECONDITION_FAILED)."""
        return {
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": f"{self.prefix}.dead",
            "x-max-priority": 9,
            "x-queue-type": "classic",
        }

    async def consume(
        self,
        channel: Any,
        queues: list[str],
        prefetch: int,
        callback: Callable[[Any], Awaitable[None]],
    ) -> Callable[[], Awaitable[None]]:
        """Deliver the messages of ``queues`` to ``callback`` (an aio-pika ``IncomingMessage``
        each, acknowledged by the callback) through aio-pika's consumer on ``channel`` (a
        robust channel: the worker broker's ``read_channel``), at most ``prefetch`` unacknowledged
        per queue. Returns the function that stops the deliveries.

        A callback, not taskiq-aio-pika's ``listen()``: that one passes every delivery through
        aio-pika's queue iterator and then its own merged iterator (a queue and an asyncio task
        per message) before the worker sees it. The queues are declared (and bound) on this
        robust channel, with taskiq's arguments, so that aio-pika re-declares them and
        restarts the consumers by itself after a reconnection, as it did for ``listen()``.
        """
        await channel.set_qos(prefetch_count=prefetch)
        consumers: list[tuple[Any, str]] = []
        for name in queues:
            queue = await channel.declare_queue(
                self.queue_name(name), durable=True, arguments=self.queue_arguments()
            )
            await queue.bind(self.exchange_name, routing_key=self.queue_name(name))
            consumers.append((queue, await queue.consume(callback, no_ack=False)))

        async def cancel() -> None:
            for queue, tag in consumers:
                # The server sends no more; delivered and unacknowledged ones stay the worker's
                # until acknowledged, rejected or the channel closes.
                await queue.cancel(tag)

        return cancel

    async def start(self) -> None:
        await self.broker.startup()
        # A delay queue per task queue: taskiq's single delay queue would send every delayed
        # message to the first queue.
        channel = self.broker.write_channel
        for queue in self.queues:
            await channel.declare_queue(
                self.queue_name(queue) + ".delay",
                durable=True,
                arguments={
                    "x-dead-letter-exchange": f"{self.prefix}.tasks",
                    "x-dead-letter-routing-key": self.queue_name(queue),
                },
            )

    async def close(self) -> None:
        await self.broker.shutdown()

    async def _publish(self, exchange: Any, message: Any, routing_key: str) -> None:
        from pamqp.commands import Basic

        # Publisher confirms (taskiq's write channel has them) and mandatory routing: the
        # message counts as sent only when RabbitMQ acknowledged it, which for a persistent
        # message on a durable queue means it is on disk. An unroutable message (its queue
        # deleted) comes back instead of an Ack: that is a failed send, not a silent drop.
        confirmation = await exchange.publish(message, routing_key=routing_key, mandatory=True)
        if not isinstance(confirmation, Basic.Ack):
            raise ConnectionError(f"RabbitMQ did not take the message for {routing_key!r}")

    async def send(self, envelope: Envelope, delay: float | None) -> None:
        from pamqp.commands import Basic

        if envelope.queue not in self.queues:
            raise ValueError(f"queue {envelope.queue!r} is not declared (queues: {self.queues})")
        destination = self.queue_name(envelope.queue)
        # Straight to the channel under aio-pika (its public get_underlay_channel), with the
        # AMQP properties built here: aio-pika's Message and a headers table (which the worker
        # never read) cost more CPU than the rest of an enqueue. The guarantees are the same:
        # persistent (delivery_mode 2), mandatory, and the publisher confirm awaited.
        # wait=False only skips waiting for the socket buffer to drain; the confirm, awaited
        # below, comes after the broker wrote the message (on disk, for a durable queue).
        properties = Basic.Properties(
            content_type="application/json",
            delivery_mode=2,
            priority=envelope.priority,
            message_id=envelope.id,
            expiration=str(int(delay * 1000)) if delay else None,
        )
        if delay:
            exchange, routing_key = "", destination + ".delay"
        else:
            exchange, routing_key = self.exchange_name, destination
        channel = await self.broker.write_channel.get_underlay_channel()
        confirmation = await channel.basic_publish(
            envelope.body(destination),
            exchange=exchange,
            routing_key=routing_key,
            properties=properties,
            mandatory=True,
            wait=False,
        )
        if not isinstance(confirmation, Basic.Ack):
            raise ConnectionError(f"RabbitMQ did not take the message for {routing_key!r}")

    async def dead_letter(self, letter: DeadLetter) -> None:
        from aio_pika import DeliveryMode, Message

        await self._publish(
            self.broker.write_channel.default_exchange,
            Message(
                body=letter.to_json(),
                headers={"task_id": letter.envelope.id},
                delivery_mode=DeliveryMode.PERSISTENT,
            ),
            f"{self.prefix}.dead",
        )

    async def _browse(self, take: str | None) -> tuple[list[DeadLetter], DeadLetter | None]:
        # Browsing a queue in AMQP: get every message unacknowledged, then close the channel,
        # which puts them all back (except the one taken, acknowledged first).
        channel = await self.broker.write_conn.channel()
        letters: list[DeadLetter] = []
        taken: DeadLetter | None = None
        try:
            queue = await channel.get_queue(f"{self.prefix}.dead", ensure=True)
            while (message := await queue.get(no_ack=False, fail=False)) is not None:
                letter = DeadLetter.from_json(message.body)
                if take is not None and taken is None and letter.envelope.id == take:
                    await message.ack()
                    taken = letter
                else:
                    letters.append(letter)
        finally:
            await channel.close()
        return letters, taken

    async def dead_letters(self) -> list[DeadLetter]:
        return (await self._browse(None))[0]

    async def take_dead(self, task_id: str) -> DeadLetter | None:
        return (await self._browse(task_id))[1]


# Moves due delayed messages into their streams, atomically (two processes never both move one).
_PUMP = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, item in ipairs(due) do
  local sep = string.find(item, '\\n', 1, true)
  redis.call('XADD', string.sub(item, 1, sep - 1), '*', 'data', string.sub(item, sep + 1))
  redis.call('ZREM', KEYS[1], item)
end
return #due
"""


# Gives the messages a dead consumer took (pending longer than ARGV[2] ms) back to the stream,
# atomically. taskiq-redis claims them only after a read that returned new messages, so on a
# quiet queue a killed worker's task would wait for the next enqueue.
_RECLAIM = """
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], 'transom-reclaimer', ARGV[2], '0-0',
                           'COUNT', 100)
local n = 0
for _, entry in ipairs(claimed[2]) do
  local id, fields = entry[1], entry[2]
  if fields then
    for i = 1, #fields, 2 do
      if fields[i] == 'data' then
        redis.call('XADD', KEYS[1], '*', 'data', fields[i + 1])
        n = n + 1
      end
    end
  end
  redis.call('XACK', KEYS[1], ARGV[1], id)
  redis.call('XDEL', KEYS[1], id)
end
return n
"""


def _stream_broker_class() -> Any:
    from redis.asyncio import Redis
    from taskiq import AckableMessage
    from taskiq_redis import RedisStreamBroker

    class StreamBroker(RedisStreamBroker):
        """taskiq-redis's stream broker, reading with one XREADGROUP per batch.

        taskiq-redis follows every read with a locked XAUTOCLAIM (two more round trips, one
        of them a SCRIPT EXISTS) before the next read, which delays the next task; the
        transport's own ``pump`` gives back a dead worker's tasks instead. Acknowledgements
        of tasks finishing together share pipelines (each is still sent after its task).
        """

        _acks: Pipeliner | None = None

        async def listen(self) -> Any:
            streams = {self.queue_name: ">", **self.additional_streams}
            client: Any = Redis(connection_pool=self.connection_pool)
            async with client as redis:
                while True:
                    fetched = await redis.xreadgroup(
                        self.consumer_group_name,
                        self.consumer_name,
                        streams,
                        block=self.block,
                        noack=False,
                        count=self.count,
                    )
                    for stream, entries in fetched or ():
                        for entry_id, fields in entries:
                            yield AckableMessage(
                                data=fields[b"data"], ack=self._acker(stream, entry_id)
                            )

        def _acker(self, stream: Any, entry_id: Any) -> Any:
            if self._acks is None:
                self._acks = Pipeliner(Redis(connection_pool=self.connection_pool))
            acks = self._acks

            async def ack() -> None:
                await acks.execute("XACK", stream, self.consumer_group_name, entry_id)

            return ack

        async def shutdown(self) -> None:
            if self._acks is not None:
                await self._acks.close()
            await super().shutdown()

    return StreamBroker


class RedisTransport:
    """Redis through taskiq-redis's stream broker: a stream per queue (``<prefix>:<queue>``)
    read by one consumer group, so a task a dead worker took is given to another after
    ``redeliver_after``; delayed tasks wait in a sorted set that workers and schedulers pump.
    Priorities are not supported by streams (use a separate queue).
    """

    def __init__(
        self, url: str, prefix: str, queues: list[str], prefetch: int, redeliver_after: float
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.queues = list(dict.fromkeys(queues))
        self.prefetch = prefetch
        self.redeliver_after = redeliver_after
        self.broker = self.make_broker(self.queues)
        from redis.asyncio import Redis

        self.client: Any = Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
        # Concurrent enqueues' XADDs share pipelines (see transom.tasks.pipelining).
        self.appender = Pipeliner(self.client)
        self.delayed_key = f"{prefix}:delayed"
        self.dead_key = f"{prefix}:dead"

    def stream(self, queue: str) -> str:
        return f"{self.prefix}:{queue}"

    def make_broker(self, queues: list[str]) -> Any:
        streams = [self.stream(q) for q in queues]
        return _stream_broker_class()(
            self.url,
            queue_name=streams[0],
            consumer_group_name=f"{self.prefix}-workers",
            # "0": a group created after tasks were sent still gets them.
            consumer_id="0",
            additional_streams=dict.fromkeys(streams[1:], ">"),
            xread_count=self.prefetch,
            xread_block=1000,
            idle_timeout=int(self.redeliver_after * 1000),
            unacknowledged_lock_timeout=5,
        )

    async def start(self) -> None:
        await self.broker.startup()

    async def close(self) -> None:
        await self.appender.close()
        await self.broker.shutdown()
        await self.client.aclose()

    async def send(self, envelope: Envelope, delay: float | None) -> None:
        stream = self.stream(envelope.queue)
        body = envelope.body(stream)
        if not delay:
            # What taskiq-redis's kick does (XADD of a "data" field), batched with the
            # enqueues running beside this one.
            await self.appender.execute("XADD", stream, "*", "data", body)
            return
        item = stream.encode() + b"\n" + body
        await self.client.zadd(self.delayed_key, {item: time.time() + delay})

    async def pump(self) -> int:
        """Move the delayed tasks that are due into their streams, and give back the tasks
        dead workers took; how many were moved."""
        moved = int(await self.client.eval(_PUMP, 1, self.delayed_key, repr(time.time())))
        idle = str(int(self.redeliver_after * 1000))
        for queue in self.queues:
            try:
                moved += int(
                    await self.client.eval(
                        _RECLAIM, 1, self.stream(queue), f"{self.prefix}-workers", idle
                    )
                )
            except Exception as exc:
                if "NOGROUP" not in str(exc):  # no worker has read this queue yet
                    raise
        return moved

    async def dead_letter(self, letter: DeadLetter) -> None:
        await self.client.hset(self.dead_key, letter.envelope.id, letter.to_json())

    async def dead_letters(self) -> list[DeadLetter]:
        raw = await self.client.hgetall(self.dead_key)
        return sorted((DeadLetter.from_json(v) for v in raw.values()), key=lambda d: d.failed_at)

    async def take_dead(self, task_id: str) -> DeadLetter | None:
        raw = await self.client.hget(self.dead_key, task_id)
        if raw is None or not await self.client.hdel(self.dead_key, task_id):
            return None
        return DeadLetter.from_json(raw)
