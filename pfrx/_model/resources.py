"""Resource paths: normalisation and whole-segment coverage (the one place a grant is decided).

Capability checks are security checks, so every function here fails closed: a resource that
cannot be understood as an absolute POSIX path (or the wildcard ``*``) is never covered.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

WILDCARD = "*"
ROOT = "/"

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Bookkeeping a dict entry costs besides its key and value (hash, two pointers, slack).
ENTRY_OVERHEAD = 64


def exact_str(value: object, what: str) -> str:
    """``value`` as an exact ``str``: a ``str`` subclass could lie in ``==``, ``hash``,
    ``split``..., so it is judged by its characters only.

    Raises:
        TypeError: ``value`` is not a ``str``.
    """
    if type(value) is str:
        return value
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return str.__str__(value)


class BoundedCache(Generic[K, V]):
    """A memo that holds at most ``limit`` bytes (keys and values as ``sys.getsizeof`` sees
    them, plus a per-entry overhead), whatever the variety of its input.

    When an entry would not fit, the cache starts over: a hostile stream of distinct keys
    costs recomputation, never memory. ``get`` is the dict's own (C) lookup.
    """

    __slots__ = ("_data", "_used", "get", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._data: dict[K, V] = {}
        self._used = 0
        self.get = self._data.get

    def put(self, key: K, value: V, size: int) -> None:
        """Remember ``value`` for ``key``; ``size`` is what the entry pins beyond shared objects."""
        cost = size + ENTRY_OVERHEAD
        if cost > self.limit:
            return  # never worth a whole cache
        if self._used + cost > self.limit:
            self._data.clear()
            self._used = 0
        self._data[key] = value
        self._used += cost

    def clear(self) -> None:
        self._data.clear()
        self._used = 0

    @property
    def used(self) -> int:
        """Bytes accounted to the entries held now."""
        return self._used

    def __len__(self) -> int:
        return len(self._data)


def _normalize(resource: str) -> str | None:
    if resource == WILDCARD:
        return WILDCARD
    if not resource or resource[0] != "/" or "\x00" in resource:
        return None
    if "//" not in resource and "/." not in resource and (resource[-1] != "/" or resource == "/"):
        return resource  # already normal: most paths are
    parts: list[str] = []
    for segment in resource.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            # Climbing above the root stays at the root, as the kernel does.
            if parts:
                parts.pop()
            continue
        parts.append(segment)
    return "/" + "/".join(parts)


# Distinct resources seen by this process -> their normal form, at most 8 MiB.
NORMALIZE_CACHE_BYTES = 8 << 20
_normalized: BoundedCache[str, str | None] = BoundedCache(NORMALIZE_CACHE_BYTES)
_MISSING: Any = object()
# ``cached_normal_form(resource, default)``: the remembered normal form of an exact ``str``
# resource, else ``default`` (for hot paths: the dict's own lookup). Never pass it a ``str``
# subclass, which could lie in ``==``.
cached_normal_form: Callable[[str, Any], Any] = _normalized.get


def normalize_resource(resource: str) -> str | None:
    """Return the canonical form of ``resource``, or ``None`` when it can never be covered.

    ``//`` collapses, ``.`` disappears, ``..`` removes the previous segment and never climbs
    above ``/``, trailing slashes go. ``*`` stays ``*``. Empty strings, relative paths and
    strings holding a NUL byte give ``None``.

    Raises:
        TypeError: ``resource`` is not a ``str``.
    """
    if type(resource) is not str:
        resource = exact_str(resource, "resource")
    found = _normalized.get(resource, _MISSING)
    if found is not _MISSING:
        return found  # type: ignore[no-any-return]
    normal = _normalize(resource)
    size = sys.getsizeof(resource)
    if normal is not None and normal is not resource:
        size += sys.getsizeof(normal)
    _normalized.put(resource, normal, size)
    return normal


class Coverage:
    """What a set of held (normalised) resources covers, compiled for repeated questions.

    Whole segments only: ``/docs`` covers ``/docs`` and ``/docs/a.txt`` but never
    ``/docs2/a.txt``; ``/`` covers every absolute path; ``*`` covers every path and ``*``
    itself; an invalid resource (``None``) is never covered and covers nothing.

    Compiled to one test, ``required in exact or required.startswith(prefixes)``: a held
    ``/docs`` adds ``/docs`` to ``exact`` and ``/docs/`` to ``prefixes``; a held ``/``
    adds the prefix ``/`` (every absolute path, never ``*``); a held ``*`` the prefix ``""``.
    """

    __slots__ = ("exact", "prefixes")

    def __init__(self, held: Iterable[str | None]) -> None:
        valid = frozenset(resource for resource in held if resource is not None)
        if WILDCARD in valid:
            prefixes: tuple[str, ...] = ("",)
        elif ROOT in valid:
            prefixes = (ROOT,)
        else:
            # "*" is not held here and never starts with "/": not covered, as due.
            prefixes = tuple(sorted(resource + "/" for resource in valid))
        self.exact = valid
        self.prefixes = prefixes

    def covers(self, required: str | None) -> bool:
        """Whether ``required`` (already normalised; ``None`` if invalid) is covered."""
        return required is not None and (
            required in self.exact or required.startswith(self.prefixes)
        )

    @property
    def empty(self) -> bool:
        """True when nothing at all is covered."""
        return not self.exact

    def size(self) -> int:
        """Bytes this coverage pins (for the caches that hold it), shared strings aside."""
        return (
            sys.getsizeof(self.exact)
            + sys.getsizeof(self.prefixes)
            + sum(sys.getsizeof(p) for p in self.prefixes)
            + 64
        )


NOTHING = Coverage(())


def covers_normalized(held: str | None, required: str | None) -> bool:
    """Coverage on already-normalised resources (``None`` means invalid: never covers)."""
    return Coverage((held,)).covers(required)


def covers(held: str, required: str) -> bool:
    """Whether a capability on ``held`` reaches ``required`` (whole segments only).

    ``/docs`` covers ``/docs`` and ``/docs/a.txt`` but never ``/docs2/a.txt``; ``/`` covers
    every absolute path; ``*`` covers every path and ``*`` itself.

    Raises:
        TypeError: either argument is not a ``str``.
    """
    return covers_normalized(normalize_resource(held), normalize_resource(required))


def slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The raw slot setter of ``cls.name``: fills a frozen slotted value once, when built."""
    setter: Callable[[Any, Any], None] = cls.__dict__[name].__set__
    return setter
