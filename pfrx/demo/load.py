"""Part 2 of the demo, the running: the substrate's stream, its producers and observers."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from reactivex.scheduler import EventLoopScheduler

from .. import (
    Context,
    Dropped,
    Envelope,
    Health,
    HealthThresholds,
    MetricsSnapshot,
    Stream,
    StreamMetrics,
)
from .. import operators as pf
from ..examples.eventstore import EventStore
from ..examples.filesystem import (
    FileActivitySummary,
    FileEventFilter,
    FileEventTransformer,
    FileStream,
    SessionSummary,
    SessionWindow,
    TimeWindow,
    required_capability,
)
from ..examples.patterns import EventSourcingStream

#: The demo's health thresholds: drops are its point, so only shedding most of the load
#: (over 75 % of recent items) is ``unhealthy``; over 25 % is ``degraded``.
THRESHOLDS = HealthThresholds(degraded_drop_rate=0.25, unhealthy_drop_rate=0.75)


@attrs.frozen
class LoadSettings:
    """What part 2 runs: the workload's size and the stream's configuration."""

    strategy: str
    buffer_size: int
    rate: float
    producers: int
    span: float
    gap: float


class Tally:
    """What the demo's subscribers saw (each updated from one thread at a time)."""

    def __init__(self) -> None:
        self.results: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.windows = 0
        self.window_items = 0
        self.summaries = 0
        self.sessions = 0
        self.session_items = 0
        self.busiest: Counter[str] = Counter()
        self.sent = 0
        self.accepted = 0
        self.lock = threading.Lock()

    def on_result(self, envelope: Envelope) -> None:
        self.results[type(envelope.event).__name__] += 1

    def on_drop(self, record: Dropped) -> None:
        self.dropped[record.reason] += 1

    def on_window(self, summaries: tuple[FileActivitySummary, ...]) -> None:
        self.windows += 1
        self.summaries += len(summaries)
        for s in summaries:
            count = s.read_count + s.write_count + s.delete_count
            self.window_items += count
            self.busiest[s.path] += count

    def on_session(self, session: SessionSummary) -> None:
        self.sessions += 1
        self.session_items += session.events


@attrs.frozen
class LoadResult:
    """What the run measured, for the report."""

    tally: Tally
    snapshot: MetricsSnapshot
    health: Health
    produced: float  # seconds until every producer was done
    elapsed: float  # seconds until every window had closed
    peak: float  # the highest buffer utilisation seen (0..1)
    stored: int  # events in the store


def build_stream(root: str, store: EventStore, settings: LoadSettings) -> Stream:
    """The substrate: who may, what is allowed, flow control, file I/O, the event store."""
    return Stream(
        pf.capability_filter(required_capability),
        FileEventFilter(allowed="/", protected="/system"),
        FileEventTransformer(),
        pf.backpressure(settings.strategy, buffer_size=settings.buffer_size),
        pf.process(FileStream(root), name="file_stream"),
        pf.process(EventSourcingStream(store, pass_queries=True), name="event_store"),
        name="filesystem",
        metrics=StreamMetrics(name="filesystem", thresholds=THRESHOLDS),
    )


def _produce(
    stream: Stream, items: Sequence[tuple[Any, Context]], rate: float, tally: Tally
) -> None:
    send = stream.send
    accepted = 0
    refused: Counter[str] = Counter()
    started = time.perf_counter()
    for i, (intent, ctx) in enumerate(items):
        result = send(intent, ctx)
        if result.ok:
            accepted += 1
        else:
            refused[result.reason or "?"] += 1
        if (i & 255) == 255:
            with tally.lock:
                tally.sent += 256
            if rate > 0:
                ahead = (i + 1) / rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)
    with tally.lock:
        tally.sent += len(items) % 256
        tally.accepted += accepted
        tally.refused.update(refused)


def run_load(
    stream: Stream,
    store: EventStore,
    workload: Sequence[tuple[Any, Context]],
    settings: LoadSettings,
    watch: Callable[[Stream, Callable[[], int]], Callable[[], None]] | None = None,
) -> LoadResult:
    """Send ``workload`` from ``settings.producers`` threads; wait until everything settled.

    ``watch(stream, sent)`` is called once the observers are subscribed (e.g. to start a
    progress line) and returns what to call when the load is over.
    """
    tally = Tally()
    stream.dropped.subscribe(tally.on_drop)
    stream.results.subscribe(tally.on_result)
    windows_done = threading.Event()
    sessions_done = threading.Event()
    # One timer thread for every window timer (the default would start a thread per timer).
    timers = EventLoopScheduler()
    stream.results.pipe(TimeWindow(settings.span, scheduler=timers)).subscribe(
        tally.on_window, lambda e: windows_done.set(), windows_done.set
    )
    stream.results.pipe(
        SessionWindow(settings.gap, max_duration=5 * settings.gap, scheduler=timers)
    ).subscribe(tally.on_session, lambda e: sessions_done.set(), sessions_done.set)

    started = time.perf_counter()
    unwatch = watch(stream, lambda: tally.sent) if watch is not None else None
    producers = settings.producers
    threads = [
        threading.Thread(
            target=_produce,
            args=(stream, workload[i::producers], settings.rate / producers, tally),
            name=f"pfrx-demo-producer-{i}",
        )
        for i in range(producers)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        produced = time.perf_counter() - started
        stream.close()
        stream.join()
        windows_done.wait(10.0)
        sessions_done.wait(10.0)
        elapsed = time.perf_counter() - started
    finally:
        if unwatch is not None:
            unwatch()
        timers.dispose()
    snap = stream.metrics()
    drain = snap.info.get("backpressure.drain") or {}
    peak_items = drain.get("peak_buffered", 0) if isinstance(drain, dict) else 0
    return LoadResult(
        tally,
        snap,
        stream.health(),
        produced,
        elapsed,
        peak_items / settings.buffer_size,
        store.count(),
    )
