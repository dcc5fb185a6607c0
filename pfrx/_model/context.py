"""The context that travels with every event, and the envelope that carries both."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from .capability import ActionKey, Capability, action_granted, action_key
from .resources import NOTHING, BoundedCache, Coverage, slot_setter

# Per context: (family, action) -> what the held capabilities cover for it, at most 256 KiB.
# A stream asks each context the same few (family, action) questions again and again; the
# answer for one resource is then a tuple ``startswith`` and a set lookup, no object made.
COVERAGE_CACHE_BYTES = 256 << 10


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


def _coverage_cache() -> BoundedCache[ActionKey, tuple[frozenset[str], tuple[str, ...]]]:
    return BoundedCache(COVERAGE_CACHE_BYTES)


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

    user_id: str = attrs.field(validator=attrs.validators.instance_of(str))
    session_id: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )
    capabilities: tuple[Capability, ...] = attrs.field(default=(), converter=_capability_tuple)
    metadata: Mapping[str, Any] = attrs.field(default=None, converter=_frozen_mapping, hash=False)
    _coverages: BoundedCache[ActionKey, tuple[frozenset[str], tuple[str, ...]]] = attrs.field(
        init=False, eq=False, hash=False, repr=False, factory=_coverage_cache
    )
    #: ``compiled_coverage(key)``: what the held capabilities cover for one (family, action)
    #: `ActionKey`, as ``(exact, prefixes)``, or ``None`` when not compiled yet (then ask
    #: `covered`, which compiles it). The memo's own dict lookup, held in a slot: for per-event
    #: paths (``capability_filter``) a question costs one slot read and one C call.
    compiled_coverage: Callable[[ActionKey], tuple[frozenset[str], tuple[str, ...]] | None] = (
        attrs.field(init=False, eq=False, hash=False, repr=False)
    )

    @compiled_coverage.default
    def _compiled_coverage(self) -> Callable[[ActionKey], Any]:
        return self._coverages.get

    def coverage(self, family: str, action: str) -> Coverage:
        """What this context's capabilities cover for ``action`` in ``family``."""
        if type(family) is not str or type(action) is not str:
            raise TypeError("family and action must be str")
        held = [
            capability.normalized_resource
            for capability in self.capabilities
            if capability.family == family
            and action_granted(capability.action, capability.implies, action)
        ]
        return Coverage(held) if held else NOTHING

    def _compiled(self, key: ActionKey) -> tuple[frozenset[str], tuple[str, ...]]:
        coverage = self.coverage(key.family, key.action)
        compiled = (coverage.exact, coverage.prefixes)
        # The entry pins its key too (and the key its names): count them.
        size = coverage.size() + sys.getsizeof(key.family) + sys.getsizeof(key.action) + 64
        self._coverages.put(key, compiled, size)
        return compiled

    def covered(self, key: ActionKey, resource: str | None) -> bool:
        """Whether the action ``key`` names is granted on ``resource``, an already
        normalised resource (``None`` when invalid: never granted).

        The hot path of [`pfrx.operators.capability_filter`][]: what the held
        capabilities cover for one (family, action) is compiled once and remembered
        (bounded by bytes), so a question is a set lookup and a tuple ``startswith``.
        """
        exact, prefixes = self._coverages.get(key) or self._compiled(key)
        return resource is not None and (resource in exact or resource.startswith(prefixes))

    def allows(self, family: str, action: str, resource: str | None) -> bool:
        """`covered` for ``action`` in ``family``."""
        return self.covered(action_key(family, action), resource)

    def has_capability(self, required: Capability) -> bool:
        """Whether any held capability grants ``required``.

        What the held capabilities cover is compiled once per (family, action) and
        remembered (bounded by bytes), so a stream of events pays a prefix test per question.

        Raises:
            TypeError: ``required`` is not a [`Capability`][pfrx.Capability].
        """
        if not isinstance(required, Capability):
            raise TypeError(f"required must be a Capability, not {type(required).__name__}")
        if type(required) is not Capability:  # a subclass: judged by its fields, uncached
            coverage = self.coverage(required.family, required.action)
            return coverage.covers(required.normalized_resource)
        return self.covered(required.action_key, required.normalized_resource)

    def has_all(self, required: Iterable[Capability]) -> bool:
        """Whether every capability in ``required`` is granted."""
        has = self.has_capability
        return all(has(capability) for capability in required)

    def with_capabilities(self, *capabilities: Capability) -> Context:
        """A copy of this context holding ``capabilities`` as well."""
        return attrs.evolve(self, capabilities=self.capabilities + capabilities)


class _Referable:
    """The base of `Envelope`, holding its ``__weakref__`` slot: then `EnvelopeDraft`, with
    the same three slots, shares its layout exactly (a ``__weakref__`` in both classes' own
    slots would not count as the same layout for CPython's ``__class__`` assignment)."""

    __slots__ = ("__weakref__",)


@attrs.frozen(slots=True, init=False)
class Envelope(_Referable):
    """What flows through every pfrx pipeline: an event, its context and when it was made.

    ``timestamp`` is in seconds on the clock of the scheduler that created the envelope.
    A frozen, slotted attrs value; it is built through its slots directly (one envelope per
    transformed event, so its construction is on every hot path).
    """

    event: Any
    context: Context
    timestamp: float

    def __init__(self, event: Any, context: Context, timestamp: float) -> None:
        _set_event(self, event)
        _set_context(self, context)
        _set_timestamp(self, timestamp)

    def with_event(self, event: Any) -> Envelope:
        """The same context and timestamp around a new event."""
        return Envelope(event, self.context, self.timestamp)


_set_event = slot_setter(Envelope, "event")
_set_context = slot_setter(Envelope, "context")
_set_timestamp = slot_setter(Envelope, "timestamp")

#: ``Envelope(event, context, timestamp)``, the name hot paths have used.
make_envelope: Callable[[Any, Context, float], Envelope] = Envelope


class EnvelopeDraft(_Referable):
    """An envelope being built, for per-item paths that make one envelope per item.

    A frozen attrs class can only fill its slots through their descriptors' ``__set__``
    (three C calls, each packing its arguments); this mutable twin has exactly the layout of
    `Envelope`, so its slots are filled by plain (specialised) attribute stores, and then the
    object *becomes* an envelope, a genuine `Envelope` from then on:

    ```python
    out = new_draft(EnvelopeDraft)
    out.event, out.context, out.timestamp = event, context, timestamp
    out.__class__ = Envelope  # every slot filled first
    ```

    About a quarter cheaper than the descriptors, measured in ``transform``. Nothing else
    may hold a draft: it is an envelope as soon as it leaves the function that built it.
    """

    __slots__ = ("context", "event", "timestamp")

    event: Any
    context: Context
    timestamp: float


#: ``object.__new__``, the allocation of an `EnvelopeDraft`.
new_draft: Callable[[type[EnvelopeDraft]], EnvelopeDraft] = object.__new__
