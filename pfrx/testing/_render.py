"""Marble pictures: recorded notifications drawn as aligned ASCII or as SVG.

A [`Diagram`][pfrx.testing.Diagram] is a stack of lanes on one time axis: sources, the operator, the
result, and a ``dropped`` lane that shows every lost item with its reason. Values are drawn as
symbols (a lookup's key, a one-character string itself, else an invented letter listed in
the legend); items are coloured by key ([`default_key`][pfrx.testing.default_key]: a window's key,
else the symbol) and drops by reason; a [`Window`][pfrx.Window] is drawn at the instant it was
emitted, with a bracket from its first item's arrival to that instant.

ASCII is for terminals and test failures (``str(diagram)``); SVG for notebooks and docs
(``diagram.svg()``, and ``_repr_svg_`` so Jupyter draws a diagram that is just evaluated).
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .._model import Context, Dropped, Envelope, Window
from ._marbles import MARBLE_SYNTAX, Note, Symbols, default_project, lay_out, parse

if TYPE_CHECKING:
    from reactivex import Observable

    from ._kit import Recording

LaneKind = Literal["events", "dropped", "operator"]
MarkKind = Literal["next", "error", "completed", "dropped"]

#: Colours for keys (Tableau 10), then for drop reasons (a warm subset first).
PALETTE = (
    "#4e79a7",
    "#59a14f",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#9c755f",
    "#f28e2b",
    "#ff9da7",
    "#bab0ac",
    "#e15759",
)
REASON_PALETTE = ("#e15759", "#f28e2b", "#b07aa1", "#9c755f", "#edc948", "#ff9da7", "#bab0ac")
ERROR_COLOUR = "#d62728"

# Besides marble syntax, pictures draw windows with brackets.
_RESERVED = MARBLE_SYNTAX | frozenset("[]")


@attrs.frozen(slots=True)
class Mark:
    """One thing drawn on a lane: a notification, or a drop with its reason."""

    time: float
    kind: MarkKind
    value: Any = None
    reason: str | None = None


@attrs.frozen(slots=True)
class Lane:
    """A labelled row of marks; an ``operator`` lane is a box with its label in it."""

    label: str
    marks: tuple[Mark, ...] = ()
    kind: LaneKind = "events"


def notes_lane(label: str, notes: Iterable[Note]) -> Lane:
    """A lane of notifications (``Note``), as a [`Recording`][pfrx.testing.Recording] holds."""
    return Lane(label, tuple(Mark(n.time, n.kind, n.value) for n in notes))


def dropped_lane(dropped: Iterable[Dropped], label: str = "dropped") -> Lane:
    """A lane of drops: each at its timestamp, with its reason."""
    return Lane(
        label, tuple(Mark(d.timestamp, "dropped", d.item, d.reason) for d in dropped), "dropped"
    )


def as_envelopes(notes: Iterable[Note], context: Context) -> list[Note]:
    """``notes`` with each value wrapped in an envelope stamped with the note's time, as a
    marble source delivers them (so a ``key`` function sees sources and results alike)."""
    return [
        Note(n.time, n.kind, Envelope(n.value, context, n.time)) if n.kind == "next" else n
        for n in notes
    ]


def default_key(value: Any) -> Any:
    """What colours an item by default: a window's key when it has one, else ``None`` (the
    item's symbol decides)."""
    if isinstance(value, Window) and value.key is not None:
        return ("window-key", value.key)
    return None


def _identity(value: Any) -> Any:
    """A dictionary key standing for ``value``: itself when hashable, else its text."""
    try:
        hash(value)
    except Exception:
        return (type(value).__name__, "repr", repr(value))
    return (type(value).__name__, value)


class _Book:
    """What every picture drawn in this process agreed on: the symbol invented for a value
    and the colour given to a key. A value keeps its symbol and colour from one picture to
    the next (in a notebook, from cell to cell) unless another item of the same picture
    already shows that symbol or colour. Bounded: past ``LIMIT`` entries, nothing new is
    remembered (and pictures fall back to their own choices).
    """

    LIMIT = 10_000

    def __init__(self) -> None:
        self.symbols: dict[Any, str] = {}
        self.colours: dict[Any, str] = {}  # items, by key
        self.reasons: dict[Any, str] = {}  # drops, by reason

    @staticmethod
    def get(table: dict[Any, str], key: Any) -> str | None:
        try:
            return table.get(key)
        except Exception:  # a value whose == or hash raises is simply not remembered
            return None

    def remember(self, table: dict[Any, str], key: Any, chosen: str) -> None:
        if len(table) < self.LIMIT:
            with contextlib.suppress(Exception):  # an unhashable key is not remembered
                table.setdefault(key, chosen)


BOOK = _Book()


class _Symbols(Symbols):
    """The shared allocator (`Symbols`) for pictures: values are projected as marbles
    compare them, ``[`` and ``]`` draw windows, and an invented symbol is the one the value
    had in earlier pictures (the book) when this picture does not already use it.
    """

    def __init__(self, lookup: Mapping[str, Any] | None, values: Iterable[Any]) -> None:
        self.windows: dict[str, Window] = {}
        super().__init__(lookup, values, project=default_project, reserved=_RESERVED)

    def invent(self, value: Any, projected: Any) -> str:
        identity = _identity(projected)
        remembered = BOOK.get(BOOK.symbols, identity)
        if remembered is not None and remembered not in self.used:
            chosen = remembered
        else:
            chosen = super().invent(value, projected)
            BOOK.remember(BOOK.symbols, identity, chosen)
        if isinstance(value, Window):
            self.windows[chosen] = value
        return chosen

    def legend(self) -> list[tuple[str, str]]:
        out = []
        for projected, key in self.assigned:
            if key in self.windows:
                text = "(" + ", ".join(self(e) for e in self.windows[key].items) + ")"
            else:
                text = repr(projected)
            out.append((key, text))
        return out


def _terminal(kind: MarkKind) -> str:
    return "|" if kind == "completed" else "#"


class Diagram:
    """Lanes of marks on one time axis, drawn as ASCII (``str``) or SVG (``svg()``).

    Args:
        lanes: top to bottom.
        start: the instant of the first column (marks before it are not drawn).
        tick: seconds per column.
        lookup: symbol -> value, used to name values (as in marble strings).
        key: ``value -> key`` colouring items (default [`default_key`][pfrx.testing.default_key]);
            items with the same key share a colour, ``None`` means "by symbol".
        title: drawn above the SVG.
    """

    def __init__(
        self,
        lanes: Sequence[Lane],
        *,
        start: float = 0.0,
        tick: float = 1.0,
        lookup: Mapping[str, Any] | None = None,
        key: Callable[[Any], Any] | None = None,
        title: str | None = None,
    ) -> None:
        if tick <= 0:
            raise ValueError(f"tick must be positive, not {tick!r}")
        self.lanes = tuple(lanes)
        self.start = float(start)
        self.tick = float(tick)
        self.lookup = dict(lookup or {})
        self.key = key or default_key
        self.title = title
        self.recording: Recording | None = None
        self._colours: dict[Any, str] = {}
        self._reasons: dict[Any, str] = {}
        self._symbols = _Symbols(
            self.lookup,
            (m.value for lane in self.lanes for m in lane.marks if m.kind in ("next", "dropped")),
        )

    # -- common -------------------------------------------------------------------------
    def column(self, time: float) -> int:
        """The column (tick index) of ``time``."""
        return max(0, round((time - self.start) / self.tick))

    def symbol(self, value: Any) -> str:
        """The symbol a value is drawn with."""
        return self._symbols(value)

    def legend(self) -> list[tuple[str, str]]:
        """Invented symbols and what they stand for (windows as the symbols of their items)."""
        return self._symbols.legend()

    def _visible(self, lane: Lane) -> list[Mark]:
        return [m for m in lane.marks if m.time >= self.start - self.tick / 2]

    def windows(self, lane: Lane) -> list[tuple[float, float, Window]]:
        """The windows emitted on ``lane``: (first item's arrival, emission time, window)."""
        out = []
        for mark in self._visible(lane):
            if mark.kind == "next" and isinstance(mark.value, Window):
                stamps = [e.timestamp for e in mark.value.items if isinstance(e, Envelope)]
                first = min(stamps) if stamps else mark.time
                out.append((min(first, mark.time), mark.time, mark.value))
        return out

    # -- ASCII --------------------------------------------------------------------------
    def ascii(self) -> str:
        """The diagram as aligned text lanes, then drop reasons and the legend."""
        return "\n".join(self._ascii_lines())

    def __str__(self) -> str:
        return self.ascii()

    def __repr__(self) -> str:
        return f"Diagram(lanes={[lane.label for lane in self.lanes]!r})"

    def _cells(self, lane: Lane) -> dict[int, list[str]]:
        cells: dict[int, list[str]] = {}
        for mark in self._visible(lane):
            text = (
                self.symbol(mark.value)
                if mark.kind in ("next", "dropped")
                else _terminal(mark.kind)
            )
            cells.setdefault(self.column(mark.time), []).append(text)
        return cells

    def _ascii_lines(self) -> list[str]:
        event_lanes = [lane for lane in self.lanes if lane.kind != "operator"]
        cells = [self._cells(lane) for lane in event_lanes]
        last = -1
        for lane in event_lanes:
            for begin, end, _ in self.windows(lane):
                last = max(last, self.column(end), self.column(begin))
        texts, offsets = align(cells, columns=last + 2)
        drawn = dict(zip((id(lane) for lane in event_lanes), texts, strict=True))
        pad = max((len(lane.label) for lane in event_lanes), default=0)
        pad = max(pad, len("windows")) + 2

        lines: list[str] = []
        for lane in self.lanes:
            if lane.kind == "operator":
                lines.append(" " * pad + lane.label)
                continue
            suffix = ""
            if lane.kind == "dropped":
                reasons = [f"{self.symbol(m.value)}: {m.reason}" for m in self._visible(lane)]
                suffix = ("   " + ", ".join(reasons)) if reasons else ""
            lines.append((lane.label.ljust(pad) + drawn[id(lane)] + suffix).rstrip())
            lines += self._ascii_brackets(lane, offsets, pad)
        legend = self.legend()
        if legend:
            lines.append("")
            lines += [f"{key} = {text}" for key, text in legend]
        return lines

    def _ascii_brackets(self, lane: Lane, offsets: list[int], pad: int) -> list[str]:
        rows: list[list[str]] = []
        for begin, end, window in self.windows(lane):
            left = offsets[self.column(begin)]
            right = max(offsets[self.column(end)], left + 2)
            drawn = "[" + self.symbol(window)
            drawn = (drawn + "-" * (right - left)).ljust(right - left, "-")[: right - left] + "]"
            drawn = drawn if len(drawn) >= 3 else drawn.ljust(3, "]")
            for row in rows:
                if all(c == " " for c in row[left : left + len(drawn) + 1]):
                    break
            else:
                row = []
                rows.append(row)
            if len(row) < left + len(drawn) + 1:
                row.extend(" " * (left + len(drawn) + 1 - len(row)))
            row[left : left + len(drawn)] = drawn
        label = "windows"
        out = []
        for row in rows:
            out.append((label.ljust(pad) + "".join(row)).rstrip())
            label = ""
        return out

    # -- SVG ----------------------------------------------------------------------------
    def svg(self) -> str:
        """The diagram as a standalone SVG document (a string)."""
        return _Svg(self).draw()

    def _repr_svg_(self) -> str:
        return self.svg()

    def colour(self, value: Any) -> str:
        """The fill colour of an item: by its key, else by the item itself (its projected
        value), the same in every picture unless another item here already has it."""
        try:
            key = self.key(value)
        except Exception:  # a key function that fails on one item does not stop the drawing
            key = None
        if key is None:
            key = ("value", _identity(default_project(value)))
        return _pick(self._colours, key, PALETTE, BOOK.colours)

    def reason_colour(self, reason: str | None) -> str:
        """The fill colour of a drop: by its reason."""
        return _pick(self._reasons, ("reason", reason), REASON_PALETTE, BOOK.reasons)


def _pick(table: dict[Any, str], key: Any, palette: Sequence[str], book: dict[Any, str]) -> str:
    """The colour of ``key`` in one picture (``table``): the one it had in earlier pictures
    when no other key here has it, else the next colour of ``palette`` free here."""
    key = _identity(key) if not isinstance(key, tuple) else key
    try:
        hash(key)
    except Exception:
        key = repr(key)
    if key in table:
        return table[key]
    taken = set(table.values())
    remembered = BOOK.get(book, key)
    if remembered is not None and remembered in palette and remembered not in taken:
        chosen = remembered
    else:
        start = len(book) % len(palette)
        rotated = [*palette[start:], *palette[:start]]
        chosen = next((c for c in rotated if c not in taken), rotated[0])
        BOOK.remember(book, key, chosen)
    table[key] = chosen
    return chosen


def align(
    rows: Sequence[Mapping[int, Sequence[str]]], *, columns: int = 0
) -> tuple[list[str], list[int]]:
    """Draw rows of marks (tick -> the symbols at that instant) as marble strings.

    As in the marble grammar, text position is time: the mark of tick ``t`` is the
    ``t``-th character, and a group ``(ab)`` spans as many ticks as it has characters, so
    rows are aligned by construction. A mark at a tick that a group of its own row already
    covers is drawn with the next mark (late, never lost). Returns the row texts and the
    text offset of each tick (``columns`` ticks at least).
    """
    texts = [lay_out(cells) for cells in rows]
    last = max((max(cells) for cells in rows if cells), default=-1)
    return texts, list(range(max(last, columns) + 2))


class _Svg:
    LABEL = 96
    LANE = 46
    OPERATOR = 40
    BRACKET = 22
    MARGIN = 14

    def __init__(self, diagram: Diagram) -> None:
        self.d = diagram
        columns = [diagram.column(m.time) for lane in diagram.lanes for m in lane.marks]
        for lane in diagram.lanes:
            columns += [diagram.column(b) for b, _, _ in diagram.windows(lane)]
        self.columns = max(columns, default=0) + 3
        self.px = max(9.0, min(30.0, 760.0 / self.columns))
        self.radius = max(4.0, min(11.0, self.px * 0.42))
        self.out: list[str] = []
        self.label_end = float("-inf")  # right edge of the last reason written on this lane

    def x(self, time: float) -> float:
        return self.LABEL + (self.d.column(time) + 0.5) * self.px

    def text(self, x: float, y: float, content: str, **attrs_: str | float) -> None:
        extra = " ".join(f'{k.replace("_", "-")}="{v}"' for k, v in attrs_.items())
        self.out.append(f'<text x="{x:.1f}" y="{y:.1f}" {extra}>{html.escape(content)}</text>')

    def draw(self) -> str:
        d = self.d
        y = float(self.MARGIN)
        width = self.LABEL + self.columns * self.px + self.MARGIN
        if d.title:
            self.text(self.MARGIN, y + 12, d.title, font_size=14, font_weight="bold")
            y += 26
        for lane in d.lanes:
            if lane.kind == "operator":
                y = self.operator(lane, y, width)
            else:
                y = self.events(lane, y, width)
        y = self.legends(y)
        body = "\n".join(self.out)
        height = y + self.MARGIN
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}"'
            f' viewBox="0 0 {width:.0f} {height:.0f}" font-family="Menlo, Consolas, monospace"'
            f' font-size="12">\n'
            f'<rect width="100%" height="100%" fill="white"/>\n{body}\n</svg>'
        )

    def operator(self, lane: Lane, y: float, width: float) -> float:
        left, right = self.LABEL - 4, width - self.MARGIN
        self.out.append(
            f'<rect x="{left:.1f}" y="{y + 4:.1f}" width="{right - left:.1f}" height="28" rx="4"'
            ' fill="#f4f4f4" stroke="#888"/>'
        )
        self.text((left + right) / 2, y + 22, lane.label, text_anchor="middle")
        return y + self.OPERATOR

    def events(self, lane: Lane, y: float, width: float) -> float:
        d = self.d
        r = self.radius
        visible = d._visible(lane)
        stacks: dict[int, int] = {}
        for mark in visible:
            if mark.kind in ("next", "dropped"):
                column = d.column(mark.time)
                stacks[column] = stacks.get(column, 0) + 1
        rise = 2 * r + 2
        y += (max(stacks.values(), default=1) - 1) * rise
        mid = y + self.LANE / 2 - 4
        dropped = lane.kind == "dropped"
        self.text(self.MARGIN, mid + 4, lane.label, fill="#555")
        dash = ' stroke-dasharray="4 3"' if dropped else ""
        end = width - self.MARGIN
        self.out.append(
            f'<line x1="{self.LABEL - 4}" y1="{mid:.1f}" x2="{end - 6:.1f}" y2="{mid:.1f}"'
            f' stroke="#333" stroke-width="1.5"{dash}/>'
        )
        self.out.append(
            f'<path d="M {end - 8:.1f} {mid - 5:.1f} L {end:.1f} {mid:.1f} L {end - 8:.1f}'
            f' {mid + 5:.1f} z" fill="#333"/>'
        )
        seen: dict[int, int] = {}
        self.label_end = float("-inf")
        for mark in visible:
            column = d.column(mark.time)
            x = self.x(mark.time)
            if mark.kind in ("completed", "error") and column in stacks:
                x += r + 5  # after the values of the same instant
            nth = seen.get(column, 0)
            if mark.kind in ("next", "dropped"):
                seen[column] = nth + 1
            cy = mid - nth * rise
            if mark.kind == "completed":
                self.out.append(
                    f'<line x1="{x:.1f}" y1="{mid - 11:.1f}" x2="{x:.1f}" y2="{mid + 11:.1f}"'
                    ' stroke="#333" stroke-width="2.5"><title>completed</title></line>'
                )
            elif mark.kind == "error":
                self.out.append(
                    f'<path d="M {x - 7:.1f} {mid - 7:.1f} L {x + 7:.1f} {mid + 7:.1f}'
                    f' M {x + 7:.1f} {mid - 7:.1f} L {x - 7:.1f} {mid + 7:.1f}"'
                    f' stroke="{ERROR_COLOUR}" stroke-width="3">'
                    f"<title>error: {html.escape(repr(mark.value))}</title></path>"
                )
            else:
                self.item(mark, x, cy, dropped)
        y += self.LANE
        if dropped:
            y += 8
        return self.brackets(lane, y)

    def item(self, mark: Mark, x: float, y: float, dropped: bool) -> None:
        d = self.d
        r = self.radius
        symbol = d.symbol(mark.value)
        projected = default_project(mark.value)
        tip = f"{mark.time:g}: {projected!r}" + (f" dropped: {mark.reason}" if dropped else "")
        if dropped:
            fill = d.reason_colour(mark.reason)
            shape = (
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{fill}" stroke="#333"'
                ' stroke-dasharray="2 2"/>'
            )
        elif isinstance(mark.value, Window):
            fill = d.colour(mark.value)
            shape = (
                f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}"'
                f' rx="3" fill="{fill}" stroke="#333"/>'
            )
        else:
            fill = d.colour(mark.value)
            shape = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{fill}" stroke="#333"/>'
        self.out.append(f"<g><title>{html.escape(tip)}</title>{shape}")
        size = max(7.0, r * 1.1)
        self.text(x, y + size * 0.36, symbol, text_anchor="middle", font_size=f"{size:.1f}")
        self.out.append("</g>")
        if dropped and mark.reason:
            label = mark.reason if len(mark.reason) <= 18 else mark.reason[:17] + "…"
            half = len(label) * 2.8  # about half the width of 9 px monospace text
            # A reason that would overwrite its neighbour's is left to the legend (same colour).
            if x - half > self.label_end + 3:
                self.text(x, y + r + 11, label, text_anchor="middle", font_size=9, fill="#a33")
                self.label_end = x + half

    def brackets(self, lane: Lane, y: float) -> float:
        rows: list[float] = []
        for begin, end, window in self.d.windows(lane):
            left = self.x(begin) - self.radius
            right = self.x(end) + self.radius
            for index, row_end in enumerate(rows):
                if left > row_end + 3:
                    rows[index] = right
                    break
            else:
                index = len(rows)
                rows.append(right)
            top = y + index * self.BRACKET - 6
            colour = self.d.colour(window)
            self.out.append(
                f'<path d="M {left:.1f} {top:.1f} v 8 H {right:.1f} v -8" fill="none"'
                f' stroke="{colour}" stroke-width="2.5"><title>window'
                f" {html.escape(self.d.symbol(window))}: {len(window)} items, start"
                f" {window.start:g}, end {window.end:g}</title></path>"
            )
            self.text(
                (left + right) / 2,
                top + 19,
                self.d.symbol(window),
                text_anchor="middle",
                font_size=10,
                fill=colour,
            )
        return y + len(rows) * self.BRACKET

    def legends(self, y: float) -> float:
        d = self.d
        y += 4
        for (_, reason), colour in d._reasons.items():
            self.out.append(
                f'<circle cx="{self.MARGIN + 5}" cy="{y + 5:.1f}" r="5" fill="{colour}"'
                ' stroke="#333" stroke-dasharray="2 2"/>'
            )
            self.text(self.MARGIN + 16, y + 9, f"dropped: {reason}", font_size=11)
            y += 16
        for key, text in d.legend():
            self.text(self.MARGIN, y + 10, f"{key} = {text}", font_size=11, fill="#333")
            y += 16
        return y


# -- builders ---------------------------------------------------------------------------------


def diagram(
    recording: Recording,
    *,
    sources: Sequence[tuple[str, Sequence[Note]]] = (),
    operator: str | None = None,
    label: str = "result",
    lookup: Mapping[str, Any] | None = None,
    key: Callable[[Any], Any] | None = None,
    title: str | None = None,
) -> Diagram:
    """Draw a recording, under its sources and operator when given, above its drops.

    Args:
        recording: what [`MarbleKit.run`][pfrx.testing.MarbleKit.run] returned.
        sources: (label, notes) lanes drawn first, e.g. the parsed source marbles.
        operator: text of the operator box between the sources and the result.
        label: the result lane's label.
        lookup: symbol -> value, to name values as the marble strings did.
        key: ``value -> key`` colouring items (see [`Diagram`][pfrx.testing.Diagram]).
        title: drawn above the SVG.
    """
    lanes = [notes_lane(name, notes) for name, notes in sources]
    if operator is not None:
        lanes.append(Lane(operator, (), "operator"))
    lanes.append(notes_lane(label, recording.notes))
    if recording.dropped:
        lanes.append(dropped_lane(recording.dropped))
    drawn = Diagram(
        lanes, start=recording.start, tick=recording.tick, lookup=lookup, key=key, title=title
    )
    drawn.recording = recording
    return drawn


def draw(
    source: str,
    *operators: Callable[[Observable[Any]], Observable[Any]],
    lookup: Mapping[str, Any] | None = None,
    label: str | None = None,
    hot: bool = False,
    context: Context | None = None,
    error: BaseException | None = None,
    tick: float = 1.0,
    key: Callable[[Any], Any] | None = None,
    title: str | None = None,
) -> Diagram:
    """Run ``operators`` on a marble ``source`` in virtual time and draw the triple:
    source, operator, result and dropped lanes.

    The run is a fresh [`marbles`][pfrx.testing.marbles] kit (subscribed at 200); the result's
    [`Recording`][pfrx.testing.Recording] is ``diagram.recording``.

    Args:
        source: the source marbles (cold, or hot with ``hot=True``).
        operators: applied in order, as in ``pipe``.
        lookup: symbol -> event for the source (and for naming results).
        label: the operator box's text (default: the operators' names).
        hot: the source is hot (``^`` marks the subscription).
        context: the context of the source's envelopes.
        error: the exception a ``#`` in the source stands for.
        tick: seconds per marble character.
        key: ``value -> key`` colouring items.
        title: drawn above the SVG.

    Example:
        >>> from pfrx import operators as pf
        >>> picture = draw("-a-b-|", pf.transform(lambda e, c: e.upper()))
        >>> print(picture)
        source     -a-b-|
                   transform
        result     -A-B-|
    """
    from ._kit import DEFAULT_CONTEXT, SUBSCRIBED, MarbleKit

    kit = MarbleKit(context or DEFAULT_CONTEXT, tick)
    observable = (kit.hot if hot else kit.cold)(source, lookup, error=error)
    recording = kit.run(observable.pipe(*operators))
    notes = as_envelopes(
        parse(source, lookup, error=error, start=SUBSCRIBED, tick=tick, hot=hot),
        context or DEFAULT_CONTEXT,
    )
    name = label if label is not None else " → ".join(_name(op) for op in operators) or "(none)"
    return diagram(
        recording,
        sources=[("source", notes)],
        operator=name,
        lookup=lookup,
        key=key,
        title=title,
    )


def _name(operator: Any, depth: int = 0) -> str:
    """A readable name for an operator function made by a pfrx or RxPY factory: the factory
    that made it (looked for through one closure level for pfrx's fused links)."""
    qualname = getattr(operator, "__qualname__", "") or type(operator).__name__
    head = qualname.split(".<locals>")[0].split(".")[-1]
    if head in ("fuse", "curry_flip", "") and depth == 0:
        for cell in getattr(operator, "__closure__", None) or ():
            inner = cell.cell_contents
            if isinstance(inner, str) and inner.isidentifier():
                return inner.rstrip("_")
            if callable(inner) and not isinstance(inner, type):
                return _name(inner, depth + 1)
    if not hasattr(operator, "__qualname__"):
        head = "".join("_" + c.lower() if c.isupper() else c for c in head).lstrip("_")
    return head.rstrip("_") or "operator"
