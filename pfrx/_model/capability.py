"""Capabilities and capability families."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from .resources import WILDCARD, covers_normalized, normalize_resource


def _exact_str(value: Any, name: str) -> str:
    # An exact str: a str subclass could lie in ``==`` and pass for another family or action.
    if type(value) is str:
        return value
    if not isinstance(value, str):
        raise TypeError(f"Capability.{name} must be a str, not {type(value).__name__}")
    return str.__str__(value)


def _family(value: Any) -> str:
    return _exact_str(value, "family")


def _action(value: Any) -> str:
    return _exact_str(value, "action")


def _resource(value: Any) -> str:
    return _exact_str(value, "resource")


def _frozen_actions(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise TypeError("implies must be a collection of action names, not a str")
    actions = []
    for action in value:
        if not isinstance(action, str):
            raise TypeError(f"implied action must be a str, not {type(action).__name__}")
        actions.append(str.__str__(action))
    return frozenset(actions)


@attrs.frozen(slots=True, cache_hash=True)
class Capability:
    """A permission: ``action`` in ``family`` on ``resource`` and everything below it.

    Equality and hashing use ``family``, ``action`` and ``resource`` only; ``implies`` (the
    actions this capability also grants, filled in by its
    [`CapabilityFamily`][pfrx.CapabilityFamily]) travels with it but does not change its identity.

    Example:
        >>> Capability("file", "read", "/docs").grants(Capability("file", "read", "/docs/a"))
        True
    """

    family: str = attrs.field(converter=_family)
    action: str = attrs.field(converter=_action)
    resource: str = attrs.field(default=WILDCARD, converter=_resource)
    implies: frozenset[str] = attrs.field(
        default=frozenset(), converter=_frozen_actions, eq=False, repr=False, kw_only=True
    )
    _normalized: str | None = attrs.field(init=False, eq=False, repr=False)

    @_normalized.default
    def _normalize(self) -> str | None:
        return normalize_resource(self.resource)

    @property
    def normalized_resource(self) -> str | None:
        """The canonical resource, or ``None`` when the resource can never be covered."""
        return self._normalized

    def grants_action(self, action: str) -> bool:
        """Whether holding this capability allows ``action`` (itself or by implication)."""
        return action == self.action or action in self.implies

    def grants(self, required: Capability) -> bool:
        """Whether holding ``self`` satisfies ``required``.

        Same family, an action equal to or (transitively) implying the required one, and a
        resource that covers the required resource by whole path segments.

        Raises:
            TypeError: ``required`` is not a [`Capability`][pfrx.Capability].
        """
        if not isinstance(required, Capability):
            raise TypeError(f"required must be a Capability, not {type(required).__name__}")
        return (
            required.family == self.family
            and (required.action == self.action or required.action in self.implies)
            and covers_normalized(self._normalized, required._normalized)
        )


_MADE_CACHE_LIMIT = 65_536


def _closure(action: str, implies: Mapping[str, tuple[str, ...]]) -> frozenset[str]:
    """Every action reachable from ``action`` (excluding itself unless on a cycle)."""
    seen: set[str] = set()
    stack = list(implies.get(action, ()))
    while stack:
        current = stack.pop()
        if current in seen:
            continue  # cycles end here
        seen.add(current)
        stack.extend(implies.get(current, ()))
    seen.discard(action)
    return frozenset(seen)


def _action_tuple(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError("actions must be a collection of action names, not a str")
    return tuple(value)


def _freeze_implies(value: Mapping[str, Iterable[str]] | None) -> Mapping[str, tuple[str, ...]]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise TypeError("implies must be a mapping of action -> implied actions")
    frozen: dict[str, tuple[str, ...]] = {}
    for action, implied in value.items():
        if isinstance(implied, str):
            implied = (implied,)
        frozen[action] = tuple(implied)
    return MappingProxyType(frozen)


@attrs.frozen(slots=True, eq=False)
class CapabilityFamily:
    """A named set of actions, with the implications between them.

    Each action is available as a factory method: ``FileCap.read("/docs")``.

    Example:
        >>> FileCap = CapabilityFamily(
        ...     "file", actions=("read", "write", "admin"), implies={"admin": ("read", "write")}
        ... )
        >>> FileCap.admin("/").grants(FileCap.write("/srv/x"))
        True
    """

    name: str
    actions: tuple[str, ...] = attrs.field(converter=_action_tuple)
    implies: Mapping[str, tuple[str, ...]] = attrs.field(
        default=None, converter=_freeze_implies, kw_only=False
    )
    _closures: Mapping[str, frozenset[str]] = attrs.field(init=False, repr=False)
    # (action, resource) -> Capability: streams ask for the same capabilities again and again,
    # and a capability is immutable, so one instance can serve every request (bounded).
    _made: dict[tuple[str, str], Capability] = attrs.field(init=False, repr=False, factory=dict)

    @_closures.default
    def _compute_closures(self) -> Mapping[str, frozenset[str]]:
        return MappingProxyType({a: _closure(a, self.implies) for a in self.actions})

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError("CapabilityFamily name must be a non-empty str")
        known = set(self.actions)
        for action in self.actions:
            if not isinstance(action, str) or not action.isidentifier():
                raise ValueError(f"action {action!r} must be an identifier-like str")
            if action.startswith("_") or hasattr(type(self), action):
                raise ValueError(f"action {action!r} clashes with a CapabilityFamily attribute")
        for action, implied in self.implies.items():
            unknown = ({action} | set(implied)) - known
            if unknown:
                raise ValueError(
                    f"family {self.name!r}: implies names unknown action(s) {sorted(unknown)}"
                )

    def capability(self, action: str, resource: str = WILDCARD) -> Capability:
        """The capability for ``action`` on ``resource``, carrying this family's implications.

        Raises:
            ValueError: ``action`` is not one of the family's actions.
        """
        cacheable = type(resource) is str and type(action) is str
        if cacheable:
            made = self._made.get((action, resource))
            if made is not None:
                return made
        closure = self._closures.get(action)
        if closure is None:
            raise ValueError(
                f"family {self.name!r} has no action {action!r}; known: {', '.join(self.actions)}"
            )
        capability = Capability(self.name, action, resource, implies=closure)
        if cacheable:
            if len(self._made) >= _MADE_CACHE_LIMIT:
                self._made.clear()
            self._made[(action, resource)] = capability
        return capability

    def implied_actions(self, action: str) -> frozenset[str]:
        """Every action that ``action`` implies, transitively (not including itself)."""
        self.capability(action)  # validates
        return self._closures[action]

    def __getattr__(self, action: str) -> Callable[..., Capability]:
        # Only called when normal lookup fails: family actions become factory methods.
        if action.startswith("_"):
            raise AttributeError(action)
        closures = object.__getattribute__(self, "_closures")
        if action not in closures:
            raise AttributeError(
                f"family {object.__getattribute__(self, 'name')!r} has no action {action!r}"
            )

        def make(resource: str = WILDCARD) -> Capability:
            return self.capability(action, resource)

        return make

    def __hash__(self) -> int:
        return id(self)
