"""Capabilities and capability families."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from .resources import WILDCARD, BoundedCache, Coverage, exact_str, normalize_resource


def _family(value: Any) -> str:
    return exact_str(value, "Capability.family")


def _action(value: Any) -> str:
    return exact_str(value, "Capability.action")


def _resource(value: Any) -> str:
    return exact_str(value, "Capability.resource")


def _frozen_actions(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise TypeError("implies must be a collection of action names, not a str")
    return frozenset(exact_str(action, "implied action") for action in value)


class ActionKey:
    """One (family name, action) pair as an object hashed by identity: what the per-context
    coverage caches are keyed on, so a question costs no tuple and no hash in Python."""

    __slots__ = ("action", "family")

    def __init__(self, family: str, action: str) -> None:
        self.family = family
        self.action = action

    def __repr__(self) -> str:
        return f"ActionKey({self.family!r}, {self.action!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Unpickled (or copied) capabilities share the process's key for their pair.
        return (action_key, (self.family, self.action))


# (family, action) -> its ActionKey, at most 1 MiB. Evicting a key is harmless: a new key
# for the same pair is answered the same way (caches keyed on the old one just miss).
ACTION_KEY_CACHE_BYTES = 1 << 20
_action_keys: BoundedCache[tuple[str, str], ActionKey] = BoundedCache(ACTION_KEY_CACHE_BYTES)


def action_key(family: str, action: str) -> ActionKey:
    """The shared `ActionKey` of ``(family, action)``."""
    pair = (family, action)
    key = _action_keys.get(pair)
    if key is None:
        key = ActionKey(family, action)
        _action_keys.put(pair, key, sys.getsizeof(family) + sys.getsizeof(action) + 120)
    return key


def action_granted(held_action: str, held_implies: frozenset[str], required_action: str) -> bool:
    """Whether holding ``held_action`` (which also grants ``held_implies``) allows
    ``required_action``. The resource half of a grant is `Coverage`."""
    return required_action == held_action or required_action in held_implies


@attrs.frozen(slots=True, cache_hash=True, repr=False)
class Capability:
    """A permission: ``action`` in ``family`` on ``resource`` and everything below it.

    ``implies`` holds the actions this capability also grants (filled in by its
    `CapabilityFamily`; a bare capability implies nothing). It is part of equality,
    hashing and ``repr``: two capabilities that grant differently never compare equal.

    Example:
        >>> Capability("file", "read", "/docs").grants(Capability("file", "read", "/docs/a"))
        True
    """

    family: str = attrs.field(converter=_family)
    action: str = attrs.field(converter=_action)
    resource: str = attrs.field(default=WILDCARD, converter=_resource)
    implies: frozenset[str] = attrs.field(
        default=frozenset(), converter=_frozen_actions, kw_only=True
    )
    #: The canonical resource, or ``None`` when the resource can never be covered.
    normalized_resource: str | None = attrs.field(init=False, eq=False)
    #: ``(family, action)`` as one shared key (see `ActionKey`).
    action_key: ActionKey = attrs.field(init=False, eq=False, repr=False)

    @normalized_resource.default
    def _normalize(self) -> str | None:
        return normalize_resource(self.resource)

    @action_key.default
    def _key(self) -> ActionKey:
        return action_key(self.family, self.action)

    def __repr__(self) -> str:
        text = (
            f"Capability(family={self.family!r}, action={self.action!r}, resource={self.resource!r}"
        )
        if self.implies:
            text += f", implies={{{', '.join(repr(a) for a in sorted(self.implies))}}}"
        return text + ")"

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
            and action_granted(self.action, self.implies, required.action)
            and Coverage((self.normalized_resource,)).covers(required.normalized_resource)
        )


# Per action of a family: resource -> the one Capability made for it, at most 4 MiB.
MADE_CACHE_BYTES = 4 << 20
_CAPABILITY_SIZE = sys.getsizeof(Capability("f", "a"))


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


def _name(_instance: Any, _attribute: Any, value: Any) -> None:
    if type(value) is not str or not value:
        raise TypeError(f"CapabilityFamily name must be a non-empty str, not {value!r}")


def _action_factory(family: CapabilityFamily, action: str, closure: frozenset[str]) -> Any:
    made: BoundedCache[str, Capability] = BoundedCache(MADE_CACHE_BYTES)
    get = made.get
    name = family.name

    def make(resource: str = WILDCARD) -> Capability:
        # Only exact strs meet the cache: a str subclass could lie in ``==`` and ``hash``.
        if type(resource) is str:
            found = get(resource)
            if found is not None:
                return found
            capability = Capability(name, action, resource, implies=closure)
            size = _CAPABILITY_SIZE + sys.getsizeof(resource)
            if capability.normalized_resource not in (None, resource):
                size += sys.getsizeof(capability.normalized_resource)
            made.put(resource, capability, size)
            return capability
        return Capability(name, action, resource, implies=closure)

    make.__name__ = make.__qualname__ = action
    make.__doc__ = f"The capability to {action} ``resource`` in family {name!r}."
    make.family = family  # type: ignore[attr-defined]
    make.action = action  # type: ignore[attr-defined]
    make.cache = made  # type: ignore[attr-defined]
    return make


@attrs.frozen(slots=True, eq=False)
class CapabilityFamily:
    """A named set of actions, with the implications between them.

    Each action is a factory method: ``FileCap.read("/docs")``. It remembers the
    capabilities it made (bounded by bytes), so asking again for the same resource costs one
    dictionary lookup.

    Example:
        >>> FileCap = CapabilityFamily(
        ...     "file", actions=("read", "write", "admin"), implies={"admin": ("read", "write")}
        ... )
        >>> FileCap.admin("/").grants(FileCap.write("/srv/x"))
        True
    """

    name: str = attrs.field(validator=_name)
    actions: tuple[str, ...] = attrs.field(converter=_action_tuple)
    implies: Mapping[str, tuple[str, ...]] = attrs.field(
        default=None, converter=_freeze_implies, kw_only=False
    )
    _closures: Mapping[str, frozenset[str]] = attrs.field(init=False, repr=False)

    @_closures.default
    def _compute_closures(self) -> Mapping[str, frozenset[str]]:
        return MappingProxyType({a: _closure(a, self.implies) for a in self.actions})

    def __attrs_post_init__(self) -> None:
        if not self.actions:
            raise ValueError(f"family {self.name!r} needs at least one action")
        seen: set[str] = set()
        for action in self.actions:
            if type(action) is not str or not action.isidentifier():
                raise ValueError(f"action {action!r} must be an identifier-like str")
            if action.startswith("_") or hasattr(CapabilityFamily, action):
                raise ValueError(f"action {action!r} clashes with a CapabilityFamily attribute")
            if action in seen:
                raise ValueError(f"family {self.name!r}: action {action!r} is listed twice")
            seen.add(action)
        for action, implied in self.implies.items():
            unknown = ({action} | set(implied)) - seen
            if unknown:
                raise ValueError(
                    f"family {self.name!r}: implies names unknown action(s) {sorted(unknown)}"
                )
        # Each action becomes a real method: a class of this family's own holds them, so
        # ``FileCap.read(path)`` is one attribute lookup and one call, no ``__getattr__``.
        namespace: dict[str, Any] = {"__slots__": (), "__module__": __name__}
        for action in self.actions:
            namespace[action] = staticmethod(_action_factory(self, action, self._closures[action]))
        own = type("CapabilityFamily", (CapabilityFamily,), namespace)
        own.__qualname__ = "CapabilityFamily"
        object.__setattr__(self, "__class__", own)

    def capability(self, action: str, resource: str = WILDCARD) -> Capability:
        """The capability for ``action`` on ``resource``, carrying this family's implications.

        Raises:
            ValueError: ``action`` is not one of the family's actions.
        """
        if type(action) is str and action in self._closures:
            make: Callable[[str], Capability] = getattr(self, action)
            return make(resource)
        raise ValueError(
            f"family {self.name!r} has no action {action!r}; known: {', '.join(self.actions)}"
        )

    def action(self, action: str) -> Callable[[str], Capability]:
        """The factory of ``action``'s capabilities (what ``family.<action>`` is).

        Raises:
            ValueError: ``action`` is not one of the family's actions.
        """
        if type(action) is str and action in self._closures:
            make: Callable[[str], Capability] = getattr(self, action)
            return make
        raise ValueError(
            f"family {self.name!r} has no action {action!r}; known: {', '.join(self.actions)}"
        )

    def implied_actions(self, action: str) -> frozenset[str]:
        """Every action that ``action`` implies, transitively (not including itself)."""
        self.action(action)  # validates
        return self._closures[action]

    def __getattr__(self, action: str) -> Any:
        # Only reached when normal lookup fails: every known action is a real method.
        if action.startswith("_"):
            raise AttributeError(action)
        raise AttributeError(
            f"family {object.__getattribute__(self, 'name')!r} has no action {action!r}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (CapabilityFamily, (self.name, self.actions, dict(self.implies)))

    def __hash__(self) -> int:
        return id(self)


def family_action(value: object) -> tuple[CapabilityFamily, str] | None:
    """``(family, action)`` when ``value`` is a family's action factory (``FileCap.read``),
    else ``None``. Only the factory the family itself holds qualifies."""
    family = getattr(value, "family", None)
    action = getattr(value, "action", None)
    if (
        isinstance(family, CapabilityFamily)
        and type(action) is str
        and getattr(family, action, None) is value
    ):
        return family, action
    return None
