"""The backpressure strategies: one object per policy, asked by the buffer what to do.

`_backpressure` owns the buffer and the drain (the lock, the owner token, the waiting
and inline delivery of ``block``); a `Strategy` only decides, under that lock, what an
item that finds the buffer full does (`Full`), whether an arrival at a buffer with
room sheds (``adaptive``), and how large each drain turn is. Each decision is typed, so the
buffer's dispatch over them is checked by mypy.

The adaptive machine has two independent parts, both driven by what the drain observes:

*Load* (``normal`` / ``shedding``), over buffer utilisation:

- ``normal`` -> ``shedding`` when ``sustain`` drain turns in a row start with the buffer at or
  above the high-water mark (``ceil(high_water * buffer_size)`` items): one full turn is not
  enough, a sustained backlog is.
- While ``shedding``, each arriving item evicts the oldest buffered item (reason ``shed``):
  the buffer stops growing and the drain brings it down.
- ``shedding`` -> ``normal`` as soon as the buffer holds no more than the low-water mark
  (``floor(low_water * buffer_size)`` items), checked at each arrival and each turn's end.
- In either state an item that finds the buffer full evicts the oldest (reason ``overflow``,
  one backpressure event): the bound always holds.

*Batch size*, over processing time per item (measured on the scheduler's clock per turn):

- a turn slower than ``slow_item_time`` per item halves the batch size, down to
  ``min_batch_size``;
- a turn at or below half of ``slow_item_time`` per item doubles it, up to the configured
  ``batch_size``;
- in between nothing changes.

The gap between the marks (and between ``slow_item_time`` and its half) is the hysteresis
that keeps the machine from flapping. Each change is one `Switch`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from datetime import timedelta
from typing import ClassVar

import attrs

from .._clock import positive_seconds

NORMAL = "normal"
SHEDDING = "shedding"

OVERFLOW = "overflow"
OVERWRITTEN = "overwritten"
SHED = "shed"


def _fraction(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"{attribute.name} must be a fraction in (0, 1], not {value!r}")


def _at_least_one(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an int >= 1, not {value!r}")


def _seconds(value: float | timedelta) -> float:
    return positive_seconds(value, "slow_item_time")


@attrs.frozen(slots=True)
class AdaptivePolicy:
    """The knobs of ``backpressure("adaptive")`` (see the module docstring for the machine).

    Attributes:
        high_water: utilisation (0..1] at which a sustained backlog starts shedding.
        low_water: utilisation below ``high_water`` at which shedding stops.
        sustain: how many drain turns in a row must start at or above the high-water mark.
        min_batch_size: the floor when halving the batch size (capped at ``batch_size``).
        slow_item_time: seconds (or a ``timedelta``) per item above which processing is slow.
    """

    high_water: float = attrs.field(default=0.8, validator=_fraction)
    low_water: float = attrs.field(default=0.5, validator=_fraction)
    sustain: int = attrs.field(default=2, validator=_at_least_one)
    min_batch_size: int = attrs.field(default=10, validator=_at_least_one)
    slow_item_time: float = attrs.field(default=0.01, converter=_seconds)

    def __attrs_post_init__(self) -> None:
        if self.low_water >= self.high_water:
            raise ValueError(
                f"low_water ({self.low_water}) must be below high_water ({self.high_water})"
            )


@attrs.frozen(slots=True)
class Switch:
    """One change of the adaptive machine: ``what`` (``state`` or ``batch_size``) went from
    ``old`` to ``new`` because of ``why``."""

    what: str
    old: str | int
    new: str | int
    why: str


class AdaptiveMachine:
    """The state of one subscription's adaptive strategy. Not thread-safe: the operator calls
    it under its lock."""

    __slots__ = (
        "batch_size",
        "high_mark",
        "low_mark",
        "max_batch",
        "min_batch",
        "policy",
        "state",
        "streak",
        "switches",
    )

    def __init__(self, policy: AdaptivePolicy, capacity: int, batch_size: int) -> None:
        self.policy = policy
        self.high_mark = max(1, math.ceil(policy.high_water * capacity - 1e-9))
        self.low_mark = min(math.floor(policy.low_water * capacity + 1e-9), self.high_mark - 1)
        self.max_batch = batch_size
        self.min_batch = min(policy.min_batch_size, batch_size)
        self.batch_size = batch_size
        self.state = NORMAL
        self.streak = 0
        self.switches = 0

    def _to(self, state: str, why: str) -> Switch:
        old, self.state = self.state, state
        self.switches += 1
        return Switch("state", old, state, why)

    def arrival(self, size: int) -> tuple[bool, Switch | None]:
        """An item arrives at a buffer holding ``size`` items (not full). Returns whether to
        shed the oldest item, and the switch made, if any."""
        if self.state == SHEDDING:
            if size <= self.low_mark:
                return False, self._to(NORMAL, f"{size} buffered <= low-water mark")
            return True, None
        return False, None

    def turn_start(self, size: int) -> Switch | None:
        """A drain turn starts with ``size`` items buffered."""
        if self.state == NORMAL:
            if size >= self.high_mark:
                self.streak += 1
                if self.streak >= self.policy.sustain:
                    self.streak = 0
                    return self._to(
                        SHEDDING,
                        f"{self.policy.sustain} turn(s) started >= high-water mark",
                    )
            else:
                self.streak = 0
            return None
        if size <= self.low_mark:
            return self._to(NORMAL, f"{size} buffered <= low-water mark")
        return None

    def turn_end(self, size: int, items: int, elapsed: float) -> list[Switch]:
        """A turn delivered ``items`` items in ``elapsed`` seconds; ``size`` are left."""
        changes: list[Switch] = []
        if self.state == SHEDDING and size <= self.low_mark:
            changes.append(self._to(NORMAL, f"{size} buffered <= low-water mark"))
        if items > 0:
            per_item = elapsed / items
            slow = self.policy.slow_item_time
            old = self.batch_size
            if per_item > slow and old > self.min_batch:
                self.batch_size = max(self.min_batch, old // 2)
                why = f"{per_item:.6g}s per item > {slow:g}s"
            elif per_item <= slow / 2 and old < self.max_batch:
                self.batch_size = min(self.max_batch, old * 2)
                why = f"{per_item:.6g}s per item <= {slow / 2:g}s"
            if self.batch_size != old:
                self.switches += 1
                changes.append(Switch("batch_size", old, self.batch_size, why))
        return changes


# -- the strategies ------------------------------------------------------------------------


class Full(enum.Enum):
    """What an item that finds the buffer full does (each is one backpressure event)."""

    EVICT_OLDEST = "evict_oldest"  # the oldest buffered item is lost, the new one goes in
    DROP_INCOMING = "drop_incoming"  # the new item is lost
    FAIL = "fail"  # the new item is lost and the operator fails with BackpressureOverflow
    WAIT = "wait"  # the producer waits for room (or delivers inline): nothing is lost


class Strategy:
    """One policy of ``backpressure``: the buffer calls it under its lock, so it needs no lock
    of its own. The base class is a buffer that never sheds and keeps its batch size."""

    __slots__ = ()

    name: str
    full: Full
    #: the reason of the item lost when the buffer is full
    reason: str = OVERFLOW
    #: whether `turn_end` needs each turn's delivery time
    timed: ClassVar[bool] = False

    def capacity(self, buffer_size: int) -> int:
        """How many items may wait."""
        return buffer_size

    def arrivals(self) -> Callable[[int], tuple[bool, Switch | None]] | None:
        """What to ask when an item arrives at a buffer holding ``size`` items, not full:
        whether to shed the oldest (reason ``shed``, not a backpressure event), and the
        switch made, if any. ``None``: never shed, so nothing is asked per item."""
        return None

    def turn_start(self, size: int, batch_size: int) -> tuple[int, Switch | None]:
        """A drain turn starts with ``size`` items buffered: the most items it may take."""
        return batch_size, None

    def turn_end(self, size: int, items: int, elapsed: float) -> list[Switch]:
        """A turn delivered ``items`` in ``elapsed`` seconds and left ``size`` buffered."""
        return []

    def info(self) -> dict[str, str | int]:
        """What the strategy publishes in the metrics' ``info`` (under the operator's label)."""
        return {}

    def snapshot(self) -> dict[str, str | int]:
        """The strategy's own state for a checkpoint (plain data; none for most)."""
        return {}

    def restore(self, state: dict[str, str | int]) -> None:
        """Take over a state from `snapshot`."""


class Fixed(Strategy):
    """A policy with no state of its own, so one instance serves every subscription: what
    an item finding the buffer full does, the reason of the item lost then, and how many
    items may wait (``limit``; ``None``: ``buffer_size``)."""

    __slots__ = ("full", "limit", "name", "reason")

    def __init__(
        self, name: str, full: Full, reason: str = OVERFLOW, limit: int | None = None
    ) -> None:
        self.name = name
        self.full = full
        self.reason = reason
        self.limit = limit

    def capacity(self, buffer_size: int) -> int:
        return buffer_size if self.limit is None else self.limit


class Adaptive(Strategy):
    """``drop_oldest``'s bound plus the `AdaptiveMachine` (see the module docstring)."""

    __slots__ = ("machine",)
    name = "adaptive"
    full = Full.EVICT_OLDEST
    timed = True

    def __init__(self, policy: AdaptivePolicy, buffer_size: int, batch_size: int) -> None:
        self.machine = AdaptiveMachine(policy, buffer_size, batch_size)

    def arrivals(self) -> Callable[[int], tuple[bool, Switch | None]] | None:
        return self.machine.arrival

    def turn_start(self, size: int, batch_size: int) -> tuple[int, Switch | None]:
        switch = self.machine.turn_start(size)
        return self.machine.batch_size, switch

    def turn_end(self, size: int, items: int, elapsed: float) -> list[Switch]:
        return self.machine.turn_end(size, items, elapsed)

    def info(self) -> dict[str, str | int]:
        machine = self.machine
        return {
            "adaptive_state": machine.state,
            "batch_size": machine.batch_size,
            "adaptive_switches": machine.switches,
        }

    def snapshot(self) -> dict[str, str | int]:
        machine = self.machine
        return {
            "state": machine.state,
            "streak": machine.streak,
            "batch_size": machine.batch_size,
            "switches": machine.switches,
        }

    def restore(self, state: dict[str, str | int]) -> None:
        machine = self.machine
        machine.state = str(state["state"])
        machine.streak = int(state["streak"])
        machine.batch_size = int(state["batch_size"])
        machine.switches = int(state["switches"])


_FIXED = {
    fixed.name: fixed
    for fixed in (
        Fixed("drop_oldest", Full.EVICT_OLDEST),
        Fixed("drop_newest", Full.DROP_INCOMING),
        # at most one pending item, the most recent: buffer_size does not apply
        Fixed("latest", Full.EVICT_OLDEST, reason=OVERWRITTEN, limit=1),
        Fixed("block", Full.WAIT),
        Fixed("error", Full.FAIL),
    )
}
STRATEGIES = (*_FIXED, "adaptive")


def make_strategy(name: str, buffer_size: int, batch_size: int, policy: AdaptivePolicy) -> Strategy:
    """The strategy of one subscription: a fresh one for ``adaptive`` (it keeps state), the
    shared `Fixed` one for the others."""
    if name == "adaptive":
        return Adaptive(policy, buffer_size, batch_size)
    return _FIXED[name]
