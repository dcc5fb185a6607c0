"""Marble strings: parsing them into timed notifications and drawing notifications as marbles.

Grammar (one character is one tick of virtual time, ``tick`` seconds long, as in RxJS):

- ``-``  a tick with nothing in it
- ``a``  any other character is a value (looked up in ``lookup``, else the character itself)
- ``(ab)`` values at the same instant; the group takes as many ticks as it has characters
- ``|``  completion, ``#`` error
- ``^``  (hot observables only) the subscription instant; what stands before it happened earlier
- spaces are ignored, so diagrams can be aligned
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from .._model import Envelope, Window

Kind = Literal["next", "error", "completed"]


@attrs.frozen(slots=True)
class Note:
    """One notification at one instant: ``kind`` is ``next``, ``error`` or ``completed``."""

    time: float
    kind: Kind
    value: Any = None

    def __str__(self) -> str:
        if self.kind == "next":
            return f"{self.time:g}: on_next({self.value!r})"
        if self.kind == "error":
            return f"{self.time:g}: on_error({self.value!r})"
        return f"{self.time:g}: on_completed()"


class MarbleSyntaxError(ValueError):
    """A marble string that does not follow the grammar."""


def parse(
    marbles: str,
    lookup: Mapping[str, Any] | None = None,
    *,
    error: BaseException | None = None,
    start: float = 0.0,
    tick: float = 1.0,
    hot: bool = False,
) -> list[Note]:
    """The notifications a marble string describes, at ``start + position * tick``.

    For ``hot=True`` a ``^`` marks ``start``; without one, the string starts at ``start``.

    Raises:
        MarbleSyntaxError: unbalanced groups, nested groups, more than one ``^``, or
            anything after the terminal notification.
    """
    text = marbles.replace(" ", "")
    origin = 0
    if "^" in text:
        if not hot:
            raise MarbleSyntaxError(f"'^' only marks subscription in hot marbles: {marbles!r}")
        if text.count("^") > 1:
            raise MarbleSyntaxError(f"more than one '^' in {marbles!r}")
        origin = text.index("^")
    notes: list[Note] = []
    position = 0
    group_start: int | None = None
    terminated = False
    for char in text:
        at = start + (position - origin if group_start is None else group_start - origin) * tick
        if char == "^":
            position += 1
            continue
        if terminated and char != "-" and not (char == ")" and group_start is not None):
            raise MarbleSyntaxError(f"nothing but '-' may follow '|' or '#': {marbles!r}")
        if char == "(":
            if group_start is not None:
                raise MarbleSyntaxError(f"groups do not nest: {marbles!r}")
            group_start = position
        elif char == ")":
            if group_start is None:
                raise MarbleSyntaxError(f"')' without '(' in {marbles!r}")
            group_start = None
        elif char == "-":
            pass
        elif char == "|":
            notes.append(Note(at, "completed"))
            terminated = True
        elif char == "#":
            notes.append(Note(at, "error", error if error is not None else Exception("error")))
            terminated = True
        else:
            value = lookup[char] if lookup is not None and char in lookup else char
            notes.append(Note(at, "next", value))
        position += 1
    if group_start is not None:
        raise MarbleSyntaxError(f"unclosed '(' in {marbles!r}")
    return notes


def default_project(value: Any) -> Any:
    """What a marble compares: an envelope's event, a window's events, else the value."""
    if isinstance(value, Envelope):
        return value.event
    if isinstance(value, Window):
        return value.events
    return value


#: Characters with a meaning in marble text: a one-character string among them is not drawn
#: as itself but gets an invented symbol.
MARBLE_SYNTAX = frozenset("-()|#^ ")
#: The symbols invented for values that have none, in the order they are handed out.
SPARE_SYMBOLS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _same(value: Any) -> Any:
    return value


class Symbols:
    """The symbol each value is drawn with: the one allocator of marble strings
    (`render`, the mismatch drawings) and of marble pictures (``_render.Diagram``).

    The user's symbols are kept: a value ``lookup`` names gets its key, and a one-character
    string (not in ``reserved``) stands for itself. Any other value gets an invented symbol
    (`invent`; ``?`` once `SPARE_SYMBOLS` run out), never one the lookup or ``values``
    already show, so a symbol means one thing in one drawing. Values are compared after
    ``project`` (the lookup also against the value itself). ``assigned`` lists the
    invented symbols as ``(projected value, symbol)``, in the order handed out.
    """

    def __init__(
        self,
        lookup: Mapping[str, Any] | None,
        values: Iterable[Any],
        *,
        project: Callable[[Any], Any] = _same,
        reserved: frozenset[str] = MARBLE_SYNTAX,
    ) -> None:
        self.reverse = [(v, k) for k, v in (lookup or {}).items()]
        self.assigned: list[tuple[Any, str]] = []
        self.used = {k for _, k in self.reverse}
        self.project = project
        self.reserved = reserved
        values = list(values)
        for value in values:
            projected = project(value)
            if self._single(projected):
                self.used.add(projected)
        for value in values:
            self(value)

    def _single(self, value: Any) -> bool:
        return isinstance(value, str) and len(value) == 1 and value not in self.reserved

    def __call__(self, value: Any) -> str:
        projected = self.project(value)
        for known, key in self.reverse:
            try:
                if known in (projected, value):
                    return key
            except Exception:  # a value whose == raises is not that lookup entry
                continue
        if self._single(projected):
            return str(projected)
        for known, key in self.assigned:
            try:
                if known == projected:
                    return key
            except Exception:
                continue
        chosen = self.invent(value, projected)
        self.used.add(chosen)
        self.assigned.append((projected, chosen))
        return chosen

    def invent(self, value: Any, projected: Any) -> str:
        """A fresh symbol for a value that has none (a subclass may remember choices)."""
        return next((s for s in SPARE_SYMBOLS if s not in self.used), "?")


def lay_out(marks: Mapping[int, Sequence[str]]) -> str:
    """One marble line from the marks at each tick (tick -> the symbols at that instant).

    Text position is time: the mark of tick ``t`` is the ``t``-th character, and a group
    ``(ab)`` spans as many ticks as it has characters. A mark at a tick that a group already
    covers is drawn with the next mark (late, but never lost).
    """
    out: list[str] = []
    position = 0
    pending = sorted(marks)
    while pending:
        group: list[str] = []
        while pending and pending[0] <= position:
            group += marks[pending.pop(0)]
        if not group:
            out.append("-")
            position += 1
        elif len(group) == 1:
            out.append(group[0])
            position += 1
        else:
            out.append("(" + "".join(group) + ")")
            position += len(group) + 2
    return "".join(out)


def render(
    notes: Sequence[Note],
    *,
    start: float = 0.0,
    tick: float = 1.0,
    lookup: Mapping[str, Any] | None = None,
) -> tuple[str, list[tuple[str, Any]]]:
    """Draw ``notes`` as a marble string from ``start``, and the legend of invented symbols.

    Values found in ``lookup`` use their key; one-character strings stand for themselves;
    anything else gets a fresh letter, listed in the returned legend.
    """
    symbol = Symbols(lookup, (n.value for n in notes if n.kind == "next"))
    marks: dict[int, list[str]] = {}
    for note in notes:
        mark = (
            symbol(note.value)
            if note.kind == "next"
            else ("|" if note.kind == "completed" else "#")
        )
        marks.setdefault(round((note.time - start) / tick), []).append(mark)
    drawn = lay_out(marks)
    legend: list[tuple[str, Any]] = [(k, v) for v, k in symbol.assigned]
    return drawn, legend
