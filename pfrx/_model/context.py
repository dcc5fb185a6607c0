"""The context that travels with every event, and the envelope that carries both."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from .capability import Capability
from .resources import covers_normalized, slot_setter

# A context is asked the same question for every event of a session; remembering the answers
# is what makes the hot path cheap. The bound keeps hostile streams of unique paths from
# growing memory without limit.
_DECISION_CACHE_LIMIT = 4096


def _capability_tuple(value: Iterable[Capability]) -> tuple[Capability, ...]:
    if isinstance(value, Capability):
        return (value,)
    capabilities = tuple(value)
    for capability in capabilities:
        if not isinstance(capability, Capability):
            raise TypeError(
                f"capabilities must be Capability instances, not {type(capability).__name__}"
            )
    return capabilities


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise TypeError(f"metadata must be a mapping, not {type(value).__name__}")
    return MappingProxyType(dict(value))


def _optional_str(name: str) -> Any:
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if value is not None and not isinstance(value, str):
            raise TypeError(f"Context.{name} must be a str or None, not {type(value).__name__}")

    return check


def _required_str(_instance: Any, _attribute: Any, value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"Context.user_id must be a str, not {type(value).__name__}")


@attrs.frozen(slots=True, cache_hash=True)
class Context:
    """Who is acting: the user, the session and the capabilities they hold.

    ``metadata`` is copied into a read-only mapping. It takes part in equality but not in
    the hash, so a context stays hashable whatever its metadata holds.

    Example:
        >>> from pfrx import Capability
        >>> ctx = Context("alice", capabilities=[Capability("file", "read", "/docs")])
        >>> ctx.has_capability(Capability("file", "read", "/docs/a.txt"))
        True
    """

    user_id: str = attrs.field(validator=_required_str)
    session_id: str | None = attrs.field(default=None, validator=_optional_str("session_id"))
    capabilities: tuple[Capability, ...] = attrs.field(default=(), converter=_capability_tuple)
    metadata: Mapping[str, Any] = attrs.field(default=None, converter=_frozen_mapping, hash=False)
    # family -> ((action, implied actions, normalised resource), ...): built once. It takes
    # part in equality (not in the hash): capabilities compare without their implications,
    # and two contexts that grant different things must not compare equal.
    _index: Mapping[str, tuple[tuple[str, frozenset[str], str | None], ...]] = attrs.field(
        init=False, eq=True, hash=False, repr=False
    )
    _decisions: dict[Capability, bool] = attrs.field(init=False, eq=False, repr=False, factory=dict)

    @_index.default
    def _build_index(self) -> Mapping[str, tuple[tuple[str, frozenset[str], str | None], ...]]:
        index: dict[str, list[tuple[str, frozenset[str], str | None]]] = {}
        for cap in self.capabilities:
            index.setdefault(cap.family, []).append(
                (cap.action, cap.implies, cap.normalized_resource)
            )
        return MappingProxyType({family: tuple(entries) for family, entries in index.items()})

    def has_capability(self, required: Capability) -> bool:
        """Whether any held capability grants ``required``.

        Decisions are memoised per context (bounded), so a stream of events from one session
        pays for each distinct question once.

        Raises:
            TypeError: ``required`` is not a [`Capability`][pfrx.Capability].
        """
        if type(required) is not Capability:
            # Only exact capabilities meet the cache: anything else could lie in ``==`` and
            # ``hash`` to borrow an earlier answer.
            if not isinstance(required, Capability):
                raise TypeError(f"required must be a Capability, not {type(required).__name__}")
            return self._decide(required)
        decision = self._decisions.get(required)
        if decision is not None:
            return decision
        decision = self._decide(required)
        if len(self._decisions) >= _DECISION_CACHE_LIMIT:
            self._decisions.clear()
        self._decisions[required] = decision
        return decision

    def _decide(self, required: Capability) -> bool:
        entries = self._index.get(required.family)
        if not entries:
            return False
        action = required.action
        resource = required.normalized_resource
        for held_action, implied, held_resource in entries:
            if (action == held_action or action in implied) and covers_normalized(
                held_resource, resource
            ):
                return True
        return False

    def has_all(self, required: Iterable[Capability]) -> bool:
        """Whether every capability in ``required`` is granted."""
        has = self.has_capability
        return all(has(capability) for capability in required)

    def with_capabilities(self, *capabilities: Capability) -> Context:
        """A copy of this context holding ``capabilities`` as well."""
        return attrs.evolve(self, capabilities=self.capabilities + capabilities)


@attrs.frozen(slots=True)
class Envelope:
    """What flows through every pfrx pipeline: an event, its context and when it was made.

    ``timestamp`` is in seconds on the clock of the scheduler that created the envelope.
    """

    event: Any
    context: Context
    timestamp: float

    def with_event(self, event: Any) -> Envelope:
        """The same context and timestamp around a new event."""
        return Envelope(event, self.context, self.timestamp)


_new_object = object.__new__
_set_event = slot_setter(Envelope, "event")
_set_context = slot_setter(Envelope, "context")
_set_timestamp = slot_setter(Envelope, "timestamp")


def make_envelope(event: Any, context: Context, timestamp: float) -> Envelope:
    """``Envelope(event, context, timestamp)`` for hot paths: the same frozen value, built
    through the slots directly (a third cheaper than the generated ``__init__``, which
    goes through the frozen class's ``__setattr__`` guard for each field)."""
    envelope = _new_object(Envelope)
    _set_event(envelope, event)
    _set_context(envelope, context)
    _set_timestamp(envelope, timestamp)
    return envelope
