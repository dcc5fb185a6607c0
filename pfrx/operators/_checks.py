"""Argument checks run when an operator is built, so a wrong argument fails at once.

Every factory checks every argument it takes, whether or not the argument applies to the
chosen variant (a ``scheduler="x"`` given to a strategy that ignores it is still a mistake):
a wrong *type* raises ``TypeError``, a wrong *value* ``ValueError``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import abc

from ..metrics import StreamMetrics

T = TypeVar("T")


def positive_int(value: object, name: str) -> int:
    """``value`` as a count of at least one.

    Raises:
        TypeError: not an ``int`` (``bool`` included).
        ValueError: less than 1.
    """
    count = an_int(value, name)
    if count < 1:
        raise ValueError(f"{name} must be at least 1, not {count!r}")
    return count


def an_int(value: object, name: str) -> int:
    """``value`` if it is an ``int`` (not a ``bool``), else ``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__} {value!r}")
    return value


def optional_callable(value: T, name: str) -> T:
    """``value`` if it is ``None`` or callable, else ``TypeError``."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable or None, not {type(value).__name__} {value!r}")
    return value


def optional_scheduler(value: T, name: str = "scheduler") -> T:
    """``value`` if it is ``None`` or an RxPY scheduler, else ``TypeError``."""
    if value is not None and not isinstance(value, abc.SchedulerBase):
        raise TypeError(
            f"{name} must be a reactivex scheduler or None, not {type(value).__name__} {value!r}"
        )
    return value


def optional_metrics(value: T, name: str = "metrics") -> T:
    """``value`` if it is ``None`` or a `pfrx.StreamMetrics`, else ``TypeError``."""
    if value is not None and not isinstance(value, StreamMetrics):
        raise TypeError(
            f"{name} must be a pfrx.StreamMetrics or None, not {type(value).__name__} {value!r}"
        )
    return value


def operator_name(value: Any, name: str = "name") -> str:
    """An operator's name: a non-empty ``str`` (it labels drops, metrics and logs)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__} {value!r}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value


def reporting(on_drop: Any, metrics: Any, name: Any) -> None:
    """The arguments every reporting operator shares: ``on_drop``, ``metrics`` and ``name``."""
    optional_callable(on_drop, "on_drop")
    optional_metrics(metrics)
    operator_name(name)


def accepts(fn: Callable[..., Any], count: int, what: str) -> None:
    """``TypeError`` if Python can tell that ``fn`` cannot be called with ``count``
    positional arguments (a one-argument function given where ``(event, context)`` is
    called). A callable whose signature cannot be read (some builtins) is accepted."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*range(count))
    except TypeError as exc:
        raise TypeError(f"{what}; {fn!r} cannot be called that way: {exc}") from None
