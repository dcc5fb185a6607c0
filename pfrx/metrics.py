"""Stream metrics and health, measured on a scheduler's clock.

Knows nothing of operators: operators (and [`pfrx.Stream`][]) call the ``record_*``
methods; users read [`StreamMetrics.snapshot`][pfrx.StreamMetrics.snapshot] and
[`StreamMetrics.health`][pfrx.StreamMetrics.health].

Per-operator figures are *operator* counters (`OperatorCounters`, `OperatorSnapshot`,
`StreamMetrics.operator`, `MetricsSnapshot.operators`): "stage" means one thing in pfrx, a
named operator sequence made by [`pfrx.stage`][] whose errors become
[`pfrx.StageError`][]. The old names (``StageSnapshot``, ``StageCounters``, ``MAX_STAGES``,
``StreamMetrics.stage``, ``MetricsSnapshot.stages``) still work for one release.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import attrs
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.scheduler import TimeoutScheduler

from ._clock import clock_of, positive_seconds

#: The most distinct drop reasons kept by name; drops with any further reason are counted
#: under `OTHER_REASON`, so memory is bounded by this, never by the variety of input.
MAX_DROP_REASONS = 1_000
OTHER_REASON = "other"
#: The most operators counted apart; beyond it an operator shares the counters of the latest
#: one of its name (or of one named `OTHER_REASON`): resubscribing for ever stays bounded.
MAX_OPERATORS = 1_000
#: Deprecated alias of `MAX_OPERATORS` (removed in the next release).
MAX_STAGES = MAX_OPERATORS


def _rate(_instance: object, attribute: attrs.Attribute[float], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{attribute.name} must be a number, not {type(value).__name__}")
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise ValueError(f"{attribute.name} must be a fraction in [0, 1], not {value!r}")


def _min_rate(_instance: object, attribute: attrs.Attribute[float | None], value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{attribute.name} must be a number or None, not {type(value).__name__}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be finite and >= 0, not {value!r}")


class Health(StrEnum):
    """How a stream is doing, from its metrics and [`HealthThresholds`][pfrx.HealthThresholds]."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@attrs.frozen(slots=True)
class HealthThresholds:
    """When a stream stops being healthy. A value *above* a threshold trips it.

    The defaults follow the Elixir guide's monitoring advice: an error rate over 5 % or a
    buffer over 80 % full is worth a warning (``degraded``); five times as bad is
    ``unhealthy``. ``min_processing_rate`` is off by default because an idle stream is not
    an ill one; set it for streams that must keep up.

    Each rate and utilisation threshold is a fraction in ``[0, 1]`` and a ``degraded_``
    threshold may not exceed its ``unhealthy_`` one; ``min_processing_rate`` is ``None`` or
    finite and ``>= 0``. Anything else (``nan`` included) raises ``ValueError`` (``TypeError``
    for a value that is not a number) when the thresholds are built.
    """

    degraded_error_rate: float = attrs.field(default=0.05, validator=_rate)
    unhealthy_error_rate: float = attrs.field(default=0.25, validator=_rate)
    degraded_buffer_utilization: float = attrs.field(default=0.80, validator=_rate)
    unhealthy_buffer_utilization: float = attrs.field(default=0.95, validator=_rate)
    degraded_drop_rate: float = attrs.field(default=0.10, validator=_rate)
    unhealthy_drop_rate: float = attrs.field(default=0.50, validator=_rate)
    min_processing_rate: float | None = attrs.field(default=None, validator=_min_rate)

    def __attrs_post_init__(self) -> None:
        for what in ("error_rate", "buffer_utilization", "drop_rate"):
            degraded = getattr(self, f"degraded_{what}")
            unhealthy = getattr(self, f"unhealthy_{what}")
            if degraded > unhealthy:
                raise ValueError(
                    f"degraded_{what} ({degraded}) must not exceed unhealthy_{what} ({unhealthy})"
                )

    def classify(self, snapshot: MetricsSnapshot) -> Health:
        """The health that ``snapshot`` shows.

        Error and drop rates are read over the recent window while it holds traffic (a
        stream recovers from an old burst), over the whole life of the metrics otherwise.
        """
        recent = snapshot.recent_received > 0
        error_rate = snapshot.recent_error_rate if recent else snapshot.error_rate
        drop_rate = snapshot.recent_drop_rate if recent else snapshot.drop_rate
        if (
            error_rate > self.unhealthy_error_rate
            or snapshot.buffer_utilization > self.unhealthy_buffer_utilization
            or drop_rate > self.unhealthy_drop_rate
        ):
            return Health.UNHEALTHY
        slow = (
            self.min_processing_rate is not None
            and snapshot.received > 0
            and snapshot.processing_rate < self.min_processing_rate
        )
        if (
            slow
            or error_rate > self.degraded_error_rate
            or snapshot.buffer_utilization > self.degraded_buffer_utilization
            or drop_rate > self.degraded_drop_rate
        ):
            return Health.DEGRADED
        return Health.HEALTHY


@attrs.frozen(slots=True)
class BufferGauge:
    """What a buffering operator reports about its buffer when metrics are read."""

    size: int
    capacity: int
    peak: int = 0


@attrs.frozen(slots=True)
class OperatorSnapshot:
    """The counts of one operator inside a stream."""

    name: str
    received: int
    emitted: int
    dropped: int
    errors: int

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen(slots=True)
class MetricsSnapshot:
    """A frozen reading of [`StreamMetrics`][pfrx.StreamMetrics].

    Rates are per second over the last ``rate_interval`` seconds of the scheduler clock,
    counted in tenths of the interval (the window is the ten tenths ending with the current
    one), or since the first item when less time has passed. ``error_rate``, ``drop_rate``
    and ``avg_processing_time`` cover the whole life of the metrics; their ``recent_``
    counterparts cover the same sliding window as the rates (``recent_received`` items came
    in during it), and health is judged on them while the window holds traffic. Error and
    drop rates are fractions of what was received.

    ``drops_by_reason`` names at most `MAX_DROP_REASONS` (1,000) distinct reasons, the
    first ones seen; drops with any later reason are counted under ``"other"``. Memory and
    the cost of a snapshot are bounded by that, never by the variety of reasons (exception
    texts may differ per item). ``dropped`` counts every drop.
    """

    timestamp: float
    received: int
    emitted: int
    dropped: int
    errors: int
    backpressure_events: int
    processing_rate: float
    input_rate: float
    buffer_utilization: float
    peak_buffer_utilization: float
    buffered: int
    avg_processing_time: float
    max_processing_time: float
    slow_events: int
    error_rate: float
    drop_rate: float
    drops_by_reason: Mapping[str, int]
    recent_received: int = 0
    recent_error_rate: float = 0.0
    recent_drop_rate: float = 0.0
    recent_avg_processing_time: float = 0.0
    operators: tuple[OperatorSnapshot, ...] = ()
    info: Mapping[str, Any] = attrs.field(factory=lambda: MappingProxyType({}))

    @property
    def stages(self) -> tuple[OperatorSnapshot, ...]:
        """Deprecated: read ``operators`` (the same tuple); removed in the next release."""
        warnings.warn(
            "MetricsSnapshot.stages is deprecated, read MetricsSnapshot.operators",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.operators

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-friendly dict for export."""
        data: dict[str, Any] = {}
        for field in attrs.fields(MetricsSnapshot):
            value = getattr(self, field.name)
            if field.name == "operators":
                value = [operator.to_dict() for operator in value]
            elif isinstance(value, Mapping):
                value = dict(value)
            data[field.name] = value
        return data


class OperatorCounters:
    """Mutable counters for one operator; cheap to bump on the hot path."""

    __slots__ = ("dropped", "emitted", "errors", "name", "received")

    def __init__(self, name: str) -> None:
        self.name = name
        self.received = 0
        self.emitted = 0
        self.dropped = 0
        self.errors = 0

    def snapshot(self, name: str | None = None) -> OperatorSnapshot:
        return OperatorSnapshot(
            name or self.name, self.received, self.emitted, self.dropped, self.errors
        )


#: Deprecated aliases of `OperatorSnapshot` and `OperatorCounters` (removed in the next release).
StageSnapshot = OperatorSnapshot
StageCounters = OperatorCounters


def _unique_operator_snapshots(
    operators: list[OperatorCounters],
) -> tuple[OperatorSnapshot, ...]:
    seen: dict[str, int] = {}
    snapshots = []
    for counters in operators:
        seen[counters.name] = seen.get(counters.name, 0) + 1
        n = seen[counters.name]
        snapshots.append(counters.snapshot(counters.name if n == 1 else f"{counters.name}#{n}"))
    return tuple(snapshots)


def _ratio(part: float, whole: float) -> float:
    return min(part / whole, 1.0) if whole else 0.0


class _RateCounter:
    """Sums what is added in time buckets, so totals and rates over a sliding interval
    are exact on the scheduler's clock (counts, or seconds of processing time)."""

    __slots__ = ("_buckets", "_clock", "_history", "count", "current", "first_seen", "width")

    def __init__(self, clock: Callable[[], float], interval: float, buckets: int = 10) -> None:
        self._clock = clock
        self.width = interval / buckets
        self._buckets = buckets
        self._history: deque[tuple[int, float]] = deque(maxlen=buckets)
        self.current = -1
        self.count: float = 0
        self.first_seen: float | None = None

    def add(self, n: float = 1) -> None:
        self.add_at(self._clock(), n)

    def add_at(self, now: float, n: float = 1) -> None:
        index = int(now // self.width)
        if index != self.current:
            if self.count:
                self._history.append((self.current, self.count))
            else:
                if self.first_seen is None:
                    self.first_seen = now
            self.current = index
            self.count = 0
        self.count += n

    def total(self, now: float) -> float:
        """What was added in the window of ``buckets`` buckets ending with ``now``'s."""
        current_index = int(now // self.width)
        oldest = current_index - self._buckets + 1
        total = sum(count for index, count in self._history if index >= oldest)
        if oldest <= self.current <= current_index:
            total += self.count
        return total

    def rate(self, now: float) -> float:
        if self.first_seen is None:
            return 0.0
        total = self.total(now)
        # At least one bucket wide, so a lone burst does not read as an absurd rate.
        span = max(min(now - self.first_seen, self.width * self._buckets), self.width)
        if span <= 0:
            return 0.0
        return total / span


class StreamMetrics:
    """Counters, rates and gauges for one stream or one operator, on a scheduler clock.

    Args:
        scheduler: whose clock measures time (default: the system clock). Give a
            ``TestScheduler`` for exact, repeatable figures in virtual time.
        rate_interval: the sliding interval for rates, seconds or a ``timedelta``.
        thresholds: what [`health`][pfrx.StreamMetrics.health] compares against.
        name: a label for logs and exports.

    Example:
        >>> from reactivex.testing import TestScheduler
        >>> m = StreamMetrics(TestScheduler())
        >>> m.record_received(); m.record_emitted()
        >>> m.snapshot().emitted
        1
    """

    def __init__(
        self,
        scheduler: abc.SchedulerBase | None = None,
        *,
        rate_interval: float | timedelta = 10.0,
        thresholds: HealthThresholds | None = None,
        name: str | None = None,
    ) -> None:
        if scheduler is not None and not isinstance(scheduler, abc.SchedulerBase):
            raise TypeError(f"scheduler must be a reactivex scheduler, not {scheduler!r}")
        if thresholds is not None and not isinstance(thresholds, HealthThresholds):
            raise TypeError(f"thresholds must be HealthThresholds, not {thresholds!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, not {name!r}")
        self.scheduler: abc.SchedulerBase = scheduler or TimeoutScheduler.singleton()
        self.name = name
        self.thresholds = thresholds or HealthThresholds()
        self.rate_interval = positive_seconds(rate_interval, "rate_interval")
        self.now = clock_of(self.scheduler)
        self._lock = threading.Lock()
        self._operators: list[OperatorCounters] = []
        self._gauges: dict[int, tuple[str, Callable[[], BufferGauge]]] = {}
        self._sources: dict[int, Callable[[], None]] = {}
        self._info: dict[str, Any] = {}
        self.reset()

    def reset(self) -> None:
        """Forget every count (gauges and operators stay registered, their counts restart)."""
        self.received = 0
        self.emitted = 0
        self.errors = 0
        self.backpressure_events = 0
        self.slow_events = 0
        self._processing_total = 0.0
        self._processing_count = 0
        self._processing_max = 0.0
        self._drops: dict[str, int] = {}
        self._dropped = 0
        self._in = _RateCounter(self.now, self.rate_interval)
        self._out = _RateCounter(self.now, self.rate_interval)
        self._recent_errors = _RateCounter(self.now, self.rate_interval)
        self._recent_drops = _RateCounter(self.now, self.rate_interval)
        self._recent_busy = _RateCounter(self.now, self.rate_interval)
        self._recent_timed = _RateCounter(self.now, self.rate_interval)
        for counters in self._operators:
            counters.received = counters.emitted = counters.dropped = counters.errors = 0

    # -- recording (hot path) ------------------------------------------------------------
    def record_received(self, n: int = 1) -> None:
        self.received += n
        self._in.add(n)

    def record_emitted(self, n: int = 1) -> None:
        self.emitted += n
        self._out.add(n)

    def record_drop(self, reason: str, n: int = 1) -> None:
        """``n`` items dropped with ``reason``; past `MAX_DROP_REASONS` distinct
        reasons, a new one is counted under ``"other"``."""
        with self._lock:
            drops = self._drops
            if reason not in drops and len(drops) >= MAX_DROP_REASONS:
                reason = OTHER_REASON
            drops[reason] = drops.get(reason, 0) + n
            self._dropped += n
            self._recent_drops.add(n)

    def record_error(self, n: int = 1) -> None:
        self.errors += n
        self._recent_errors.add(n)

    def record_backpressure(self, n: int = 1) -> None:
        self.backpressure_events += n

    def record_processing_time(
        self, seconds: float, *, slow: bool = False, at: float | None = None
    ) -> None:
        """One item took ``seconds``; ``at`` (default: now) is when it finished."""
        at = self.now() if at is None else at
        self._recent_busy.add_at(at, seconds)
        self._recent_timed.add_at(at)
        self._processing_total += seconds
        self._processing_count += 1
        if seconds > self._processing_max:
            self._processing_max = seconds
        if slow:
            self.slow_events += 1

    def set_info(self, key: str, value: Any) -> None:
        """Publish a named value (an adaptive state, a batch size) in snapshots."""
        self._info[key] = value

    def operator(self, name: str) -> OperatorCounters:
        """Counters for one operator of the pipeline.

        RxPY subscribes a pipeline from its last operator back to its source, so each new
        operator goes in front: snapshots list operators in pipeline order. A repeated name
        reads ``name#2``, ``name#3``... in snapshots, counted from the source.
        """
        with self._lock:
            operators = self._operators
            if len(operators) >= MAX_OPERATORS:
                for counters in operators:
                    if counters.name == name:
                        return counters
                for counters in operators:
                    if counters.name == OTHER_REASON:
                        return counters
                name = OTHER_REASON
            counters = OperatorCounters(name)
            operators.insert(0, counters)
        return counters

    def stage(self, name: str) -> OperatorCounters:
        """Deprecated: call `operator` (same counters); removed in the next release."""
        warnings.warn(
            "StreamMetrics.stage() is deprecated, call StreamMetrics.operator()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.operator(name)

    def record_batch(
        self, count: int, busy: float, slowest: float, at: float, *, totals: bool = True
    ) -> None:
        """``count`` items that passed through, downstream busy ``busy`` seconds in all.

        For operators that count locally and flush (``metrics_tap``): ``at`` places the items
        in their rate bucket; with ``totals=False`` only processing time is recorded.
        """
        if totals:
            self.received += count
            self.emitted += count
            self._in.add_at(at, count)
            self._out.add_at(at, count)
        self._recent_busy.add_at(at, busy)
        self._recent_timed.add_at(at, count)
        self._processing_total += busy
        self._processing_count += count
        if slowest > self._processing_max:
            self._processing_max = slowest

    def register_source(self, flush: Callable[[], None]) -> Disposable:
        """Call ``flush`` before every snapshot, so locally counted figures are current."""
        key = id(flush)
        with self._lock:
            self._sources[key] = flush

        def unregister() -> None:
            with self._lock:
                self._sources.pop(key, None)

        return Disposable(unregister)

    @property
    def rate_bucket(self) -> float:
        """The width of one rate bucket (a tenth of ``rate_interval``), in seconds."""
        return self.rate_interval / 10

    def register_buffer(self, name: str, gauge: Callable[[], BufferGauge]) -> Disposable:
        """Read ``gauge`` in every snapshot until the returned disposable is disposed."""
        key = id(gauge)
        with self._lock:
            self._gauges[key] = (name, gauge)

        def unregister() -> None:
            with self._lock:
                self._gauges.pop(key, None)

        return Disposable(unregister)

    # -- reading -------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        return self._dropped

    def snapshot(self) -> MetricsSnapshot:
        """A frozen reading of every figure, at the scheduler's current time."""
        with self._lock:
            sources = list(self._sources.values())
        for flush in sources:
            flush()
        now = self.now()
        with self._lock:
            drops = dict(self._drops)
            dropped = self._dropped
            gauges = [gauge() for _, gauge in self._gauges.values()]
            operators = _unique_operator_snapshots(self._operators)
            info = MappingProxyType(dict(self._info))
        received = self.received
        buffered = sum(g.size for g in gauges)
        utilization = max((g.size / g.capacity for g in gauges if g.capacity), default=0.0)
        peak = max((g.peak / g.capacity for g in gauges if g.capacity), default=0.0)
        count = self._processing_count
        recent_in = self._in.total(now)
        recent_timed = self._recent_timed.total(now)
        return MetricsSnapshot(
            timestamp=now,
            received=received,
            emitted=self.emitted,
            dropped=dropped,
            errors=self.errors,
            backpressure_events=self.backpressure_events,
            processing_rate=self._out.rate(now),
            input_rate=self._in.rate(now),
            buffer_utilization=min(utilization, 1.0),
            peak_buffer_utilization=min(max(peak, utilization), 1.0),
            buffered=buffered,
            avg_processing_time=self._processing_total / count if count else 0.0,
            max_processing_time=self._processing_max,
            slow_events=self.slow_events,
            error_rate=min(self.errors / received, 1.0) if received else 0.0,
            drop_rate=min(dropped / received, 1.0) if received else 0.0,
            recent_received=int(recent_in),
            recent_error_rate=_ratio(self._recent_errors.total(now), recent_in),
            recent_drop_rate=_ratio(self._recent_drops.total(now), recent_in),
            recent_avg_processing_time=(
                self._recent_busy.total(now) / recent_timed if recent_timed else 0.0
            ),
            drops_by_reason=MappingProxyType(drops),
            operators=operators,
            info=info,
        )

    def health(self) -> Health:
        """``healthy``, ``degraded`` or ``unhealthy``, per ``thresholds``."""
        return self.thresholds.classify(self.snapshot())

    def health_changes(
        self,
        period: float | timedelta = 1.0,
        scheduler: abc.SchedulerBase | None = None,
    ) -> Observable[Health]:
        """An observable of [`Health`][pfrx.Health]: checks every ``period``, emits on change.

        The first value is the health at subscription; after that only changes are emitted.
        Checks run on ``scheduler`` (default: the metrics' own scheduler).
        """
        period_s = positive_seconds(period, "period")
        sched = scheduler or self.scheduler
        return reactivex.concat(
            reactivex.defer(lambda _: reactivex.just(self.health())),
            reactivex.interval(period_s, scheduler=sched).pipe(ops.map(lambda _: self.health())),
        ).pipe(ops.distinct_until_changed())
