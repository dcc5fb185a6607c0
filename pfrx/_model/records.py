"""Records that operators produce: drops, processing outcomes, windows and errors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, TypeVar

import attrs

from .context import Envelope
from .resources import slot_setter

S = TypeVar("S")


def _reason(_instance: Any, _attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise TypeError(f"reason must be a non-empty str, not {value!r}")


@attrs.frozen(slots=True)
class Dropped:
    """An item that entered an operator and will never leave it.

    Every operator that can lose an item reports it exactly once, to its ``on_drop``.

    Attributes:
        item: what was lost (usually the [`Envelope`][pfrx.Envelope]).
        reason: why, e.g. ``"insufficient_capabilities"``, ``"overflow"``, ``"late"``.
        operator: the name of the operator that dropped it.
        timestamp: when, in seconds on the operator's scheduler clock.
    """

    item: Any
    reason: str = attrs.field(validator=_reason)
    operator: str
    timestamp: float


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
        key: the session key for session windows, ``None`` otherwise.
        start: when the window opened (seconds on the scheduler clock, or event time, or the
            index of its first item for count windows).
        end: when it closed (exclusive bound for time windows; one past the last index for
            count windows).
        items: the envelopes, in arrival order.
    """

    key: Any
    start: float
    end: float
    items: tuple[Envelope, ...] = attrs.field(converter=tuple)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def events(self) -> tuple[Any, ...]:
        """The events of the window's envelopes, in arrival order."""
        return tuple(envelope.event for envelope in self.items)


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


_new_object = object.__new__
_set_item = slot_setter(Dropped, "item")
_set_reason = slot_setter(Dropped, "reason")
_set_operator = slot_setter(Dropped, "operator")
_set_timestamp = slot_setter(Dropped, "timestamp")


def make_dropped(item: Any, reason: str, operator: str, timestamp: float) -> Dropped:
    """``Dropped(...)`` for the drop path of operators: the same frozen value, validated the
    same way, built through the slots directly."""
    if type(reason) is not str or not reason:
        return Dropped(item, reason, operator, timestamp)  # validates and raises
    record = _new_object(Dropped)
    _set_item(record, item)
    _set_reason(record, reason)
    _set_operator(record, operator)
    _set_timestamp(record, timestamp)
    return record
