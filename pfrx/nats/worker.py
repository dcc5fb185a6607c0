"""``pfrx worker``: one pfrx pipeline as a JetStream worker.

Workers sharing a durable name share the input. An input is acknowledged only after every
result or drop made from it has been published and acknowledged by JetStream; each publish
carries a ``Nats-Msg-Id`` derived from its source ids, so the redelivery of an input whose
worker died is deduplicated by the server. Inputs held in open windows are kept alive with
in-progress acks. SIGTERM stops fetching, finishes what is in flight, hands back what open
windows hold (nak: redelivered at once to the others) and exits 0 within ``ack_wait``.

Run ``python -m pfrx.nats.worker --help`` (or ``pfrx worker --help``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import importlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

try:
    import nats
    import nats.errors
    import nats.js.errors
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError("pfrx.nats needs the 'nats' extra: pip install 'pfrx[nats]'") from None

import contextlib

from ..operators import Operator
from ..stream import Stream, registry
from ._pipeline import Delivery, PipelineRunner
from ._wire import MSG_ID, SOURCE_ID
from .sink import Output
from .source import ConsumerSettings, StreamMissing, ensure_stream, subscribe
from .tokens import MIN_KEY_BYTES, load_keys

__all__ = ["Worker", "WorkerOptions", "main", "parse_args"]


class WorkerError(Exception):
    """A failure the command reports as one line and exit status 1."""


@attrs.frozen
class WorkerOptions:
    servers: str
    input: str
    output: str
    dropped: str
    durable: str
    ack_wait: float = 30.0
    max_deliver: int = 5
    batch: int = 100
    max_in_flight: int = 1000
    max_ack_pending: int = 20_000
    create_streams: bool = True
    replicas: int = 1
    partitions: int = 0
    lease_ttl: float = 3.0
    fetch_timeout: float = 0.5
    connect_timeout: float = 2.0
    setup_timeout: float = 30.0

    @property
    def duplicate_window(self) -> float:
        """Longer than ``ack_wait * max_deliver``: every redelivery of an input falls inside
        the window of its first publish."""
        return self.ack_wait * self.max_deliver + 60.0


@attrs.define
class _Input:
    msg: Any
    touched: float
    partition: int | None = None
    outstanding: int = 0
    released: bool = False
    failed: bool = False


def load_factory(spec: str) -> Callable[[], Sequence[Operator]]:
    """``MODULE:FACTORY`` → the factory (raises `WorkerError` with one line)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise WorkerError(f"--pipeline must be MODULE:FACTORY, not {spec!r}")
    try:
        module = importlib.import_module(module_name)
        factory = getattr(module, attr)
    except (ImportError, AttributeError) as error:
        raise WorkerError(f"cannot load pipeline {spec!r}: {error}") from None
    if not callable(factory):
        raise WorkerError(f"pipeline {spec!r} is not callable")
    return factory  # type: ignore[no-any-return]


class Worker:
    """One worker: fetch → verify → pipeline → publish (acked) → ack input."""

    def __init__(
        self,
        options: WorkerOptions,
        factory: Callable[[], Sequence[Operator]],
        keys: Sequence[bytes],
    ) -> None:
        self.options = options
        self.factory = factory
        self.keys = list(keys)
        self.inputs: dict[str, _Input] = {}
        self.processed = 0
        self.acked = 0
        self.stopping = False
        self.owned: dict[int, Any] = {}  # partition -> pull subscription
        self._last_activity = time.monotonic()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._events: collections.deque[tuple[Callable[[Any], None], Any]] = collections.deque()
        self._drain_scheduled = False
        self._outbox: collections.deque[tuple[Output, float, int]] = collections.deque()
        self._publishing: dict[asyncio.Future[Any], tuple[Output, float, int, float]] = {}
        self._pumping = False
        self._acks: collections.deque[tuple[Any, bool]] = collections.deque()
        self._acking = False
        self.published = 0
        self.retries = 0
        self.publish_timeout = 5.0
        self.give_up_after = max(10.0, options.ack_wait)

    # -- helpers ---------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _touch(self) -> None:
        self._last_activity = time.monotonic()

    # -- from the pipeline thread ---------------------------------------------------------
    def _post(self, handler: Callable[[Any], None], arg: Any) -> None:
        """Hand an event to the loop: queued, with one wake-up per burst rather than one
        per event (each wake-up is a write to the loop's self-pipe)."""
        self._events.append((handler, arg))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._loop.call_soon_threadsafe(self._drain_events)

    def _drain_events(self) -> None:
        self._drain_scheduled = False  # first: an event posted from now on schedules again
        events = self._events
        while events:
            handler, arg = events.popleft()
            handler(arg)

    def _on_output(self, output: Output) -> None:
        self._touch()
        for sid in output.source_ids:
            held = self.inputs.get(sid)
            if held is not None:
                held.outstanding += 1
        self._enqueue(output, time.monotonic(), 0)

    # Publishes go out through nats-py's publish_async: no task and no request round trip
    # per output; each PubAck resolves a future. A future still open after
    # ``publish_timeout`` is cancelled and the output sent again (same Nats-Msg-Id: the
    # server keeps one); after ``give_up_after`` its inputs are nak'ed instead.
    def _enqueue(self, output: Output, first: float, attempt: int) -> None:
        self._outbox.append((output, first, attempt))
        if not self._pumping:
            self._pumping = True
            self._spawn(self._pump())

    async def _pump(self) -> None:
        try:
            while self._outbox:
                output, first, attempt = self._outbox.popleft()
                headers = {MSG_ID: output.msg_id, SOURCE_ID: ",".join(output.source_ids)}
                try:
                    future = await self.js.publish_async(
                        output.subject, output.data, headers=headers
                    )
                except Exception:
                    self._retry(output, first, attempt)
                    continue
                self._publishing[future] = (output, first, attempt, time.monotonic())
                future.add_done_callback(self._published)
        finally:
            self._pumping = False

    def _published(self, future: asyncio.Future[Any]) -> None:
        entry = self._publishing.pop(future, None)
        if entry is None:
            return
        output, first, attempt, _sent = entry
        if future.cancelled() or future.exception() is not None:
            self._retry(output, first, attempt)
        else:
            self.published += 1
            self._finish_output(output, ok=True)

    def _retry(self, output: Output, first: float, attempt: int) -> None:
        if time.monotonic() - first > self.give_up_after:
            self._finish_output(output, ok=False)
            return
        self.retries += 1
        delay = min(0.05 * 2**attempt, 1.0)
        self._loop.call_later(delay, self._enqueue, output, first, attempt + 1)

    def _finish_output(self, output: Output, *, ok: bool) -> None:
        for sid in output.source_ids:
            held = self.inputs.get(sid)
            if held is None:
                continue
            held.outstanding -= 1
            if not ok:
                held.failed = True
            self._settle(sid, held)

    def _expire_publishes(self, now: float) -> None:
        for future, (_output, _first, _attempt, sent) in list(self._publishing.items()):
            if now - sent > self.publish_timeout:
                future.cancel()  # its callback sends it again

    def _on_release(self, sid: str) -> None:
        self._touch()
        held = self.inputs.get(sid)
        if held is not None:
            held.released = True
            self._settle(sid, held)

    def _on_failed(self, sids: list[str]) -> None:
        for sid in sids:
            held = self.inputs.get(sid)
            if held is not None:
                held.failed = True
                self._settle(sid, held)

    def _settle(self, sid: str, held: _Input) -> None:
        if held.outstanding > 0 or not (held.released or held.failed):
            return
        del self.inputs[sid]
        self._room.set()
        self._touch()
        if not held.failed:
            self.acked += 1
        self._acks.append((held.msg, held.failed))
        if not self._acking:
            self._acking = True
            self._spawn(self._ack_pump())

    async def _ack_pump(self) -> None:
        """Acks (and naks) in order, from one task: an ack is a plain publish."""
        try:
            while self._acks:
                msg, failed = self._acks.popleft()
                await self._quietly(msg.nak() if failed else msg.ack())
        finally:
            self._acking = False

    @staticmethod
    async def _quietly(coro: Any) -> None:
        # An ack lost with the connection: the input comes back and its outputs dedupe.
        with contextlib.suppress(Exception):
            await coro

    # -- main loop -------------------------------------------------------------------------
    async def _connect(self) -> None:
        servers = [url.strip() for url in self.options.servers.split(",") if url.strip()]
        try:
            self.nc = await nats.connect(
                servers,
                connect_timeout=self.options.connect_timeout,
                max_reconnect_attempts=2,  # the first connect gives up: one clear line
                reconnect_time_wait=0.25,
                allow_reconnect=True,
                error_cb=self._ignore,
                disconnected_cb=self._ignore_event,
                reconnected_cb=self._ignore_event,
                closed_cb=self._ignore_event,
            )
        except Exception as error:
            raise WorkerError(
                f"cannot reach NATS at {self.options.servers}: {type(error).__name__}"
            ) from None
        # Once connected, ride out any outage (a cluster node restarting, a failover).
        self.nc.options["max_reconnect_attempts"] = -1
        self.js = self.nc.jetstream()

    @staticmethod
    async def _ignore(_error: Exception) -> None:
        return None

    @staticmethod
    async def _ignore_event() -> None:
        return None

    async def _setup(self) -> None:
        """Streams and consumer; transient failures (a cluster still electing, a timeout)
        are retried for ``setup_timeout`` seconds."""
        started = time.monotonic()
        deadline = started + self.options.setup_timeout
        while True:
            try:
                return await self._setup_once()
            except WorkerError:
                raise
            except (TimeoutError, nats.errors.TimeoutError, nats.js.errors.APIError) as error:
                no_responders = (
                    isinstance(error, nats.js.errors.ServiceUnavailableError) and not error.code
                )
                if no_responders and time.monotonic() - started > 5:
                    # Nobody answers the JetStream API (a cluster forming answers within
                    # seconds): this server runs without JetStream.
                    raise WorkerError(
                        f"JetStream is not enabled on {self.options.servers} "
                        "(start nats-server with -js)"
                    ) from None
                if time.monotonic() > deadline:
                    raise WorkerError(
                        f"JetStream at {self.options.servers} did not answer the setup "
                        f"({type(error).__name__}: {error})"
                    ) from None
                await asyncio.sleep(0.5)

    async def _setup_once(self) -> None:
        o = self.options
        try:
            self.stream_name = await ensure_stream(
                self.js,
                o.input,
                duplicate_window=o.duplicate_window,
                create=o.create_streams,
                partitions=o.partitions,
                replicas=o.replicas,
            )
            for subject in (o.output, o.dropped):
                await ensure_stream(
                    self.js,
                    subject,
                    duplicate_window=o.duplicate_window,
                    create=o.create_streams,
                    replicas=o.replicas,
                )
        except StreamMissing as error:
            raise WorkerError(str(error)) from None
        except nats.errors.NoRespondersError:
            raise WorkerError(
                f"JetStream is not enabled on {o.servers} (start nats-server with -js)"
            ) from None
        self.settings = ConsumerSettings(
            o.durable, o.ack_wait, o.max_deliver, max_ack_pending=o.max_ack_pending
        )
        if not o.partitions:
            self.owned[-1] = await subscribe(self.js, self.stream_name, o.input, self.settings)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._room = asyncio.Event()
        await self._connect()
        try:
            await self._setup()
            self.executor = ThreadPoolExecutor(1, thread_name_prefix="pfrx-worker-pipeline")
            self._loop = loop
            self.runner = PipelineRunner(
                self.factory,
                self.keys,
                output=self.options.output,
                dropped=self.options.dropped,
                emit=lambda out: self._post(self._on_output, out),
                release=lambda sid: self._post(self._on_release, sid),
                failed=lambda sids: self._post(self._on_failed, sids),
                max_deliver=self.options.max_deliver,
                name=f"worker.{self.options.durable}",
                on_new_stream=self._register_stream,
            )
            self._register_stream(self.runner.stream)
            stop = asyncio.Event()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            background = [asyncio.ensure_future(self._keep_alive())]
            if self.options.partitions:
                from ._lease import PartitionLeases

                self.leases = PartitionLeases(self)
                background.append(asyncio.ensure_future(self.leases.run()))
            fetching = asyncio.ensure_future(self._fetch_loop())
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({fetching, stopper}, return_when=asyncio.FIRST_COMPLETED)
            self.stopping = True
            if fetching in done and fetching.exception() is not None:
                stopper.cancel()
                for task in background:
                    task.cancel()
                raise fetching.exception()  # type: ignore[misc]
            await self._drain(fetching, background)
            return 0
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.close(), 5)

    def _register_stream(self, stream: Stream) -> None:
        """The pipeline's stream in `pfrx.registry` (what ``--metrics-port`` serves); a
        fresh pipeline after a failure takes the name over."""
        name = f"worker.{self.options.durable}.{os.getpid()}"
        with contextlib.suppress(KeyError):
            registry.unregister(name)
        with contextlib.suppress(ValueError):
            registry.register(name, stream)

    async def _drain(self, fetching: asyncio.Task[Any], background: list[Any]) -> None:
        """Finish in-flight work, hand back what open windows hold, within ``ack_wait``."""
        deadline = time.monotonic() + self.options.ack_wait * 0.8
        fetching.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await fetching
        if hasattr(self, "leases"):
            self.leases.stopping = True
        while time.monotonic() < deadline:
            busy = self._acks or any(held.outstanding for held in self.inputs.values())
            quiet = time.monotonic() - self._last_activity > 0.3
            if not self.inputs or (not busy and quiet):
                break
            await asyncio.sleep(0.05)
        for sid, held in list(self.inputs.items()):
            del self.inputs[sid]
            await self._quietly(held.msg.nak())
        for task in background:
            task.cancel()
        if hasattr(self, "leases"):
            await self.leases.release_all()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.nc.flush(), 2)

    async def _keep_alive(self) -> None:
        """In-progress acks for inputs held longer than a quarter of ``ack_wait``."""
        period = max(0.05, self.options.ack_wait / 4)
        while True:
            await asyncio.sleep(period / 2)
            now = time.monotonic()
            self._expire_publishes(now)
            leases = getattr(self, "leases", None)
            for held in list(self.inputs.values()):
                partition = held.partition
                if leases is not None and partition is not None and not leases.fresh(partition):
                    continue  # fenced: let it fall due for the next owner
                if now - held.touched >= period:
                    held.touched = now
                    await self._quietly(held.msg.in_progress())

    def _may_fetch(self, partition: int) -> bool:
        leases = getattr(self, "leases", None)
        if leases is None:
            return partition in self.owned
        return partition in self.owned and leases.fresh(partition)

    def subscriptions(self) -> list[tuple[int, Any]]:
        leases = getattr(self, "leases", None)
        if leases is None:
            return list(self.owned.items())
        return [(p, sub) for p, sub in self.owned.items() if leases.fresh(p)]

    async def _fetch_loop(self) -> None:
        """One fetch loop per subscription this worker may use (all partitions in
        parallel, so an idle partition never delays a busy one); ends with the first
        loop that fails (a stream that disappeared)."""
        loops: dict[int, asyncio.Task[None]] = {}
        try:
            while not self.stopping:
                wanted = dict(self.subscriptions())
                # A loop whose partition is no longer ours ends by itself after its
                # current batch (never cancelled mid-batch: nothing admitted is stranded).
                for partition, task in list(loops.items()):
                    if task.done():
                        del loops[partition]
                        if not task.cancelled() and task.exception() is not None:
                            raise task.exception()  # type: ignore[misc]
                for partition, sub in wanted.items():
                    if partition not in loops:
                        loops[partition] = asyncio.ensure_future(
                            self._partition_loop(partition, sub)
                        )
                await asyncio.sleep(0.05)
        finally:
            for task in loops.values():
                task.cancel()
            for task in loops.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _partition_loop(self, partition: int, sub: Any) -> None:
        loop = asyncio.get_running_loop()
        o = self.options
        # Slow start: a batch grows from 1 while inputs arrive fresh and falls back to 1 when
        # a redelivery shows up, so an input that kills its worker comes back alone and
        # its batch-mates do not use up their deliveries with it.
        batch = 1
        processing: asyncio.Future[None] | None = None
        try:
            while not self.stopping and self._may_fetch(partition):
                room = o.max_in_flight - len(self.inputs)
                if room <= 0:
                    self._room.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._room.wait(), 0.2)
                    continue
                try:
                    msgs = await sub.fetch(min(batch, room), timeout=o.fetch_timeout)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                except nats.js.errors.NotFoundError:
                    raise WorkerError(
                        f"the stream or consumer for {o.input!r} disappeared "
                        f"(durable {o.durable!r})"
                    ) from None
                except nats.js.errors.APIError as error:
                    if getattr(error, "code", None) == 404 or "not found" in str(error).lower():
                        raise WorkerError(
                            f"the stream or consumer for {o.input!r} disappeared "
                            f"({error.description})"
                        ) from None
                    await asyncio.sleep(0.2)
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception:  # connection trouble: nats-py reconnects, we retry
                    await asyncio.sleep(0.2)
                    continue
                deliveries = self._admit(msgs, partition)
                redelivered = any(delivery.delivered > 1 for delivery in deliveries)
                batch = 1 if redelivered else min(o.batch, batch * 2)
                # Fetch the next batch while this one runs through the pipeline (one batch
                # ahead at most): the pipeline thread and the round trip overlap. Not while
                # starting or after a redelivery: a suspect input is processed alone.
                if processing is not None:
                    await processing
                processing = loop.run_in_executor(self.executor, self.runner.process, deliveries)
                self.processed += len(msgs)
                if redelivered or len(deliveries) <= 1:
                    await processing
                    processing = None
        finally:
            if processing is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(processing)

    def _admit(self, msgs: list[Any], partition: int) -> list[Delivery]:
        now = time.monotonic()
        deliveries = []
        for msg in msgs:
            headers = msg.headers or {}
            meta = msg.metadata
            sid = headers.get(MSG_ID) or f"{meta.stream}:{meta.sequence.stream}"
            held = self.inputs.get(sid)
            if held is not None:  # redelivered while we still hold it: keep one copy
                held.msg = msg
                held.touched = now
                continue
            self.inputs[sid] = _Input(msg, now, partition if partition >= 0 else None)
            deliveries.append(Delivery(sid, msg.data, dict(headers), meta.num_delivered))
        return deliveries


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pfrx worker",
        description="Run one pfrx pipeline as a NATS JetStream worker.",
    )
    parser.add_argument("--servers", required=True, help="NATS URL(s), comma-separated")
    parser.add_argument("--input", required=True, help="input subject")
    parser.add_argument("--output", required=True, help="subject for results")
    parser.add_argument("--dropped", required=True, help="subject for Dropped records")
    parser.add_argument("--durable", required=True, help="durable consumer name (shared)")
    parser.add_argument("--pipeline", required=True, help="MODULE:FACTORY returning operators")
    parser.add_argument("--key-file", required=True, help="verification keys, one per line")
    parser.add_argument("--ack-wait", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument("--metrics-port", type=int, default=None, help="serve /metrics here")
    parser.add_argument("--max-deliver", type=int, default=5, help="deliveries per input")
    parser.add_argument("--batch", type=int, default=100, help="messages per fetch")
    parser.add_argument("--max-in-flight", type=int, default=1000, help="inputs held at once")
    parser.add_argument(
        "--partitions", type=int, default=0, help="keyed mode: partitions of <input>.<key>"
    )
    parser.add_argument(
        "--lease-ttl", type=float, default=3.0, help="keyed mode: partition lease seconds"
    )
    parser.add_argument("--replicas", type=int, default=1, help="replicas of created streams")
    parser.add_argument(
        "--no-create-streams", action="store_true", help="fail when a stream is missing"
    )
    return parser.parse_args(list(argv))


def _error(message: str) -> int:
    print(f"pfrx worker: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    """``pfrx worker ...``: exit 0 after SIGTERM drained; 1 with one line on failure."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.ack_wait <= 0 or args.max_deliver < 2 or args.batch < 1 or args.max_in_flight < 1:
        return _error(
            "--ack-wait must be > 0, --max-deliver >= 2, --batch and --max-in-flight >= 1"
        )
    try:
        keys = load_keys(args.key_file)
    except OSError as error:
        return _error(f"cannot read key file {args.key_file!r}: {error.strerror or error}")
    except ValueError as error:
        return _error(str(error))
    if any(len(key) < MIN_KEY_BYTES for key in keys):
        print(
            f"pfrx worker: warning: a key in {args.key_file!r} is shorter than "
            f"{MIN_KEY_BYTES} bytes (weak)",
            file=sys.stderr,
        )
    try:
        factory = load_factory(args.pipeline)
    except WorkerError as error:
        return _error(str(error))
    server = None
    if args.metrics_port is not None:
        try:
            from ..observe import serve
        except ImportError:
            return _error("--metrics-port needs the 'web' extra: pip install 'pfrx[web]'")
        try:
            server = serve(port=args.metrics_port)
        except OSError as error:
            return _error(f"cannot serve metrics on port {args.metrics_port}: {error.strerror}")
    options = WorkerOptions(
        servers=args.servers,
        input=args.input,
        output=args.output,
        dropped=args.dropped,
        durable=args.durable,
        ack_wait=args.ack_wait,
        max_deliver=args.max_deliver,
        batch=args.batch,
        max_in_flight=args.max_in_flight,
        create_streams=not args.no_create_streams,
        replicas=args.replicas,
        partitions=args.partitions,
        lease_ttl=args.lease_ttl,
    )
    try:
        return asyncio.run(Worker(options, factory, keys).run())
    except WorkerError as error:
        return _error(str(error))
    except Exception as error:  # one line, never a traceback of the library's insides
        return _error(f"{type(error).__name__}: {error}")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
