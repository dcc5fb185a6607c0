"""Records that operators produce: drops, processing outcomes, windows and errors."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable
from datetime import datetime
from operator import attrgetter
from typing import Any, Generic, TypeVar

import attrs

from .context import Envelope
from .resources import slot_setter

S = TypeVar("S")
_event_of = attrgetter("event")


def _reason(_instance: Any, _attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise TypeError(f"reason must be a non-empty str, not {value!r}")


class _DroppedSlots:
    """The base of `Dropped`, holding its ``__weakref__`` slot, so that `DroppedDraft`
    shares its layout exactly (as `Envelope` and `EnvelopeDraft` do)."""

    __slots__ = ("__weakref__",)


@attrs.frozen(slots=True, init=False)
class Dropped(_DroppedSlots):
    """An item that entered an operator and will never leave it.

    Every operator that can lose an item reports it exactly once, to its ``on_drop``.

    Attributes:
        item: what was lost (usually the [`Envelope`][pfrx.Envelope]).
        reason: why, e.g. ``"insufficient_capabilities"``, ``"overflow"``, ``"late"``.
        operator: the name of the operator that dropped it.
        timestamp: when, in seconds on the operator's scheduler clock.
        windows: for an item dropped as ``"late"`` by an event-time window operator, the
            ``(start, end)`` bounds of every window it missed, earliest first, in the unit
            the operator reports windows in (seconds, or aware datetimes): for
            ``window_time`` each tumbling or sliding window holding its timestamp; for
            ``window_session`` the session the item alone would have made,
            ``[t, t + gap)`` (cut at ``max_duration``). ``()`` for every other drop.
            An annotation: equality and hash are those of the four fields above, so a late
            drop equals ``Dropped(item, "late", operator, timestamp)``.
    """

    item: Any
    reason: str = attrs.field(validator=_reason)
    operator: str
    timestamp: float
    # An annotation, not part of the record's identity: a late drop still equals (and hashes
    # as) the contract's four-field Dropped(item, "late", operator, timestamp).
    windows: tuple[tuple[Any, Any], ...] = attrs.field(default=(), eq=False)

    def __init__(
        self,
        item: Any,
        reason: str,
        operator: str,
        timestamp: float,
        windows: Iterable[tuple[Any, Any]] = (),
    ) -> None:
        # Built through the slots directly (drops can be many); the reason is checked as
        # the field's validator would.
        if type(reason) is not str or not reason:
            _reason(self, None, reason)
            reason = str.__str__(reason)
        _set_item(self, item)
        _set_reason(self, reason)
        _set_operator(self, operator)
        _set_timestamp(self, timestamp)
        if windows:  # left unset when empty: read as () (see __getattr__)
            _set_windows(self, _bounds(windows))

    def __getattr__(self, name: str) -> Any:
        # Only reached when a slot is unset: ``windows`` is left unset by the many drops
        # that miss no window (and by the slot-by-slot builders), and reads as ().
        if name == "windows":
            return ()
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class DroppedDraft(_DroppedSlots):
    """A drop record being built, for drop paths that make one record per lost item: the
    mutable twin of `Dropped` (see `EnvelopeDraft`). Its slots are filled by plain attribute
    stores, then it *becomes* a genuine `Dropped`:

    ```python
    record = new_draft(DroppedDraft)
    record.item, record.reason, record.operator, record.timestamp = item, reason, op, now
    record.__class__ = Dropped  # windows may stay unset: it reads as ()
    ```

    ``reason`` must already be a non-empty ``str``. Nothing else may hold a draft.
    """

    __slots__ = ("item", "operator", "reason", "timestamp", "windows")

    item: Any
    reason: str
    operator: str
    timestamp: float


def _bounds(windows: Iterable[tuple[Any, Any]]) -> tuple[tuple[Any, Any], ...]:
    bounds = tuple(map(tuple, windows))
    for pair in bounds:
        if len(pair) != 2:
            raise ValueError(f"Dropped.windows holds (start, end) pairs, not {pair!r}")
    return bounds


class UnobservedDropWarning(UserWarning):
    """An operator lost an item and nobody observes its drops: no ``on_drop=``, no
    ``metrics=`` and no reporting scope (a [`pfrx.Stream`][] or
    [`pfrx.operators.reporting_into`][]). Issued once per subscription, at the first drop."""


@attrs.frozen(slots=True)
class Reject:
    """Returned by a [`pfrx.operators.transform`][] function to drop the item with ``reason``."""

    reason: str = attrs.field(validator=_reason)


def _effects(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


@attrs.frozen(slots=True)
class Ok(Generic[S]):
    """A processor accepted the event: ``state`` is the new state, ``effects`` go downstream."""

    state: S
    effects: tuple[Any, ...] = attrs.field(default=(), converter=_effects)


@attrs.frozen(slots=True)
class Err(Generic[S]):
    """A processor refused the event: it is dropped with ``reason``; ``state`` is kept."""

    reason: str = attrs.field(validator=_reason)
    state: S


@attrs.frozen(slots=True)
class Window:
    """A closed window of envelopes.

    Attributes:
        key: the key for keyed time windows and session windows, ``None`` otherwise.
        start: when the window opened (seconds on the scheduler clock, or event time, or the
            index of its first item for count windows); an aware UTC ``datetime`` when the
            operator's ``timestamp`` returns datetimes.
        end: when it closed (exclusive bound for time windows; one past the last index for
            count windows); a ``datetime`` like ``start``.
        items: the envelopes, in arrival order.
        revision: 0 for a window's first firing; each late firing of the same window (an
            item that arrived within ``allowed_lateness`` after it fired) emits it again,
            with its full contents and ``revision`` one higher.
    """

    key: Any
    start: Any
    end: Any
    items: tuple[Envelope, ...] = attrs.field(converter=tuple)
    revision: int = 0

    def __len__(self) -> int:
        return len(self.items)

    @property
    def events(self) -> tuple[Any, ...]:
        """The events of the window's envelopes, in arrival order."""
        return tuple(map(_event_of, self.items))


class BackpressureOverflow(Exception):
    """Signalled downstream by ``backpressure("error")`` when an item finds the buffer full."""

    def __init__(self, buffer_size: int, item: Any = None) -> None:
        super().__init__(f"backpressure buffer full ({buffer_size} items)")
        self.buffer_size = buffer_size
        self.item = item


class BackpressureTimeout(Exception):
    """Raised to a producer's ``on_next`` by ``backpressure("block", timeout=...)`` when no
    room came within ``timeout`` seconds. The item was not accepted (the producer still holds
    it); nothing accepted before is lost."""

    def __init__(self, timeout: float, item: Any = None) -> None:
        super().__init__(f"backpressure buffer still full after {timeout:g}s")
        self.timeout = timeout
        self.item = item


@attrs.frozen(slots=True)
class SendResult:
    """What [`pfrx.Stream.send`][] says about one event: accepted or not, and why."""

    ok: bool
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.ok


_set_item = slot_setter(Dropped, "item")
_set_reason = slot_setter(Dropped, "reason")
_set_operator = slot_setter(Dropped, "operator")
_set_timestamp = slot_setter(Dropped, "timestamp")
_set_windows = slot_setter(Dropped, "windows")

#: ``Dropped(item, reason, operator, timestamp)``, the name the drop paths have used.
make_dropped: Callable[[Any, str, str, float], Dropped] = Dropped

#: ``(new, set_item, set_reason, set_operator, set_timestamp)``: a `Dropped` built slot by
#: slot, without ``__init__``'s frame, for drop paths whose reason is already a checked
#: non-empty str. Every one of these slots must be filled before the record leaves
#: (``windows``, left unset, reads as ``()``).
dropped_builder: tuple[
    Callable[[type[Dropped]], Dropped],
    Callable[[Any, Any], None],
    Callable[[Any, Any], None],
    Callable[[Any, Any], None],
    Callable[[Any, Any], None],
] = (object.__new__, _set_item, _set_reason, _set_operator, _set_timestamp)


def _watermark_time(_instance: Any, _attribute: Any, value: Any) -> None:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"a watermark datetime must be timezone-aware, not {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"a watermark time must be seconds or an aware datetime, not {value!r}")
    if math.isnan(value):
        raise ValueError("a watermark time must not be NaN")


@attrs.frozen(slots=True)
class Watermark:
    """Event-time progress sent by a source among its items: "no item older than ``time``
    is still to come".

    A window operator working in event time consumes it (it is never emitted downstream):
    its watermark becomes at least ``time``. Sources of a merge name themselves with
    ``source``: the operator then follows the slowest of them (the minimum of their
    watermarks), and a source that sends ``idle=True`` stops holding the others back until
    it sends a watermark again.

    [`window_time`][pfrx.operators.window_time] and
    [`window_session`][pfrx.operators.window_session] in event time take them; the other
    per-item operators (``capability_filter``, ``transform``, ``process``, ``metrics_tap``,
    ``backpressure``) pass them on untouched, in order, never counting them as received,
    emitted or dropped. ``window_count`` counts whatever reaches it: keep watermarks from
    it. In a [`pfrx.Stream`][], send one with [`pfrx.Stream.send_watermark`][]; one that no
    window operator takes ends at the stream's end (never on ``results``).

    Attributes:
        time: seconds in the timestamps' unit, or an aware ``datetime``.
        source: the name of the source in a merge; ``None`` for a single source.
        idle: the source goes idle: the others no longer wait for it.
    """

    time: Any = attrs.field(validator=_watermark_time)
    source: Hashable | None = None
    idle: bool = False
