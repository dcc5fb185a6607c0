"""Resource paths: normalisation and whole-segment coverage.

Capability checks are security checks, so every function here fails closed: a resource that
cannot be understood as an absolute POSIX path (or the wildcard ``*``) is never covered.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

WILDCARD = "*"
ROOT = "/"


def _require_str(value: object, what: str) -> str:
    """``value`` as an exact ``str``: a ``str`` subclass could lie in ``==``, ``split``...

    Raises:
        TypeError: ``value`` is not a ``str``.
    """
    if type(value) is str:
        return value
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return str.__str__(value)


@lru_cache(maxsize=65_536)
def _normalize_cached(resource: str) -> str | None:
    if resource == WILDCARD:
        return WILDCARD
    if not resource or "\x00" in resource or not resource.startswith("/"):
        return None
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


def normalize_resource(resource: str) -> str | None:
    """Return the canonical form of ``resource``, or ``None`` when it can never be covered.

    ``//`` collapses, ``.`` disappears, ``..`` removes the previous segment and never climbs
    above ``/``, trailing slashes go. ``*`` stays ``*``. Empty strings, relative paths and
    strings holding a NUL byte give ``None``.

    Raises:
        TypeError: ``resource`` is not a ``str``.
    """
    return _normalize_cached(_require_str(resource, "resource"))


def covers_normalized(held: str | None, required: str | None) -> bool:
    """Coverage on already-normalised resources (``None`` means invalid: never covers)."""
    if held is None or required is None:
        return False
    if held == WILDCARD:
        return True
    if required == WILDCARD:
        return False
    if held == ROOT:
        return True
    return required == held or required.startswith(held + "/")


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
