"""Marble tests of pfrx operators on a ``TestScheduler``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

from .._model import Context, Dropped, Envelope
from ..metrics import StreamMetrics
from ..operators._shared import reporting_into
from ._marbles import Note, Symbols, default_project, parse, render
from ._render import Diagram, align, as_envelopes, diagram

_GRAMMAR = frozenset("-()|#^ ")
NOTIFICATION_ROWS = 12  # notifications listed under a mismatch drawing

CREATED = 100.0
SUBSCRIBED = 200.0
DISPOSED = 1000.0

DEFAULT_CONTEXT = Context("marble-user", "marble-session")


class MarbleMismatch(AssertionError):
    """Raised by [`MarbleKit.expect`][pfrx.testing.MarbleKit.expect]: draws expected and actual."""


# Tracebacks and pytest show the name users import it by.
MarbleMismatch.__module__ = "pfrx.testing"


class Recording:
    """What a subscription saw: notifications with their virtual times."""

    def __init__(
        self,
        notes: list[Note],
        dropped: list[Dropped],
        start: float,
        *,
        tick: float = 1.0,
        lookup: Mapping[str, Any] | None = None,
    ) -> None:
        self.notes = notes
        self.dropped = dropped
        self.start = start
        self.tick = tick
        #: The symbols of the kit that recorded it (its marbles' and lookups'), live: drawings
        #: use them, so a value keeps the symbol the test's marbles gave it.
        self.lookup: Mapping[str, Any] = lookup if lookup is not None else {}

    def _symbols(self, lookup: Mapping[str, Any] | None) -> dict[str, Any]:
        """The kit's symbols, with ``lookup`` winning where both name a symbol."""
        return {**self.lookup, **(lookup or {})}

    @property
    def values(self) -> list[Any]:
        """The ``on_next`` values, projected (events of envelopes, events of windows)."""
        return [default_project(n.value) for n in self.notes if n.kind == "next"]

    @property
    def raw_values(self) -> list[Any]:
        """The ``on_next`` values as they were emitted (envelopes, windows...)."""
        return [n.value for n in self.notes if n.kind == "next"]

    @property
    def completed(self) -> bool:
        return any(n.kind == "completed" for n in self.notes)

    @property
    def error(self) -> BaseException | None:
        for note in self.notes:
            if note.kind == "error":
                error: BaseException = note.value
                return error
        return None

    def marbles(self, lookup: Mapping[str, Any] | None = None) -> str:
        """The recording drawn as a marble string from the subscription instant."""
        projected = [
            Note(n.time, n.kind, default_project(n.value) if n.kind == "next" else n.value)
            for n in self.notes
        ]
        drawn, _ = render(projected, start=self.start, tick=self.tick, lookup=self._symbols(lookup))
        return drawn

    def drop_reasons(self) -> list[str]:
        return [d.reason for d in self.dropped]

    def diagram(
        self,
        *,
        lookup: Mapping[str, Any] | None = None,
        label: str = "result",
        key: Callable[[Any], Any] | None = None,
        title: str | None = None,
    ) -> Diagram:
        """The recording as a marble picture: its lane and a ``dropped`` lane with reasons
        (``str()`` is ASCII, ``.svg()`` is SVG).
        [`MarbleKit.diagram`][pfrx.testing.MarbleKit.diagram] adds the sources."""
        return diagram(self, label=label, lookup=self._symbols(lookup), key=key, title=title)

    def _repr_svg_(self) -> str:
        return self.diagram().svg()

    def __repr__(self) -> str:
        return f"Recording({self.marbles()!r}, dropped={len(self.dropped)})"


def _same_error(expected: BaseException | None, actual: Any) -> bool:
    if expected is None:
        return isinstance(actual, BaseException)
    return type(actual) is type(expected) and str(actual) == str(expected)


def _cells(
    notes: Sequence[Note], start: float, tick: float, lookup: Mapping[str, Any] | None
) -> tuple[dict[int, list[str]], list[tuple[str, Any]]]:
    """Marks per column for one row of a mismatch drawing, and its invented symbols."""
    symbol = Symbols(lookup, (n.value for n in notes if n.kind == "next"))
    cells: dict[int, list[str]] = {}
    for note in notes:
        mark = symbol(note.value) if note.kind == "next" else "|#"[note.kind == "error"]
        cells.setdefault(max(0, round((note.time - start) / tick)), []).append(mark)
    legend: list[tuple[str, Any]] = [(k, v) for v, k in symbol.assigned]
    return cells, legend


def _side_by_side(
    want: Sequence[Note],
    got: Sequence[Note],
    dropped: Sequence[Dropped],
    first: Note | None,
    start: float,
    tick: float,
    lookup: Mapping[str, Any] | None,
) -> list[str]:
    """Expected above actual (and the actual drops) as aligned ASCII marbles."""
    want_cells, want_legend = _cells(want, start, tick, lookup)
    got_cells, got_legend = _cells(got, start, tick, lookup)
    drop_notes = [Note(d.timestamp, "next", default_project(d.item)) for d in dropped]
    drop_cells, drop_legend = _cells(drop_notes, start, tick, lookup)
    rows = [want_cells, got_cells] + ([drop_cells] if dropped else [])
    texts, offsets = align(rows)
    lines = [
        "expected: " + (texts[0] or "(nothing)"),
        "actual:   " + (texts[1] or "(nothing)"),
    ]
    if dropped:
        reasons = ", ".join(d.reason for d in dropped)
        lines.append(f"dropped:  {texts[2]}   ({reasons})")
    if first is not None:
        column = max(0, round((first.time - start) / tick))
        at = offsets[min(column, len(offsets) - 1)]
        lines.append(" " * (10 + at) + f"^ first difference at {first.time:g}")
    for title, legend in (("expected", want_legend), ("actual", got_legend)):
        if legend:
            lines.append(f"{title} symbols:")
            lines += [f"    {key} = {value!r}" for key, value in legend]
    if dropped and drop_legend:
        lines.append("dropped symbols:")
        lines += [f"    {key} = {value!r}" for key, value in drop_legend]
    return lines


def _deliver(
    observer: abc.ObserverBase[Envelope], note: Note, context: Context
) -> Callable[[abc.SchedulerBase, Any], None]:
    """A scheduled action that sends ``note`` to ``observer``, wrapping values in envelopes
    stamped with the scheduler's clock at delivery."""

    def action(scheduler: abc.SchedulerBase, _: Any = None) -> None:
        if note.kind == "next":
            clock = scheduler.clock if isinstance(scheduler, TestScheduler) else note.time
            observer.on_next(Envelope(note.value, context, float(clock)))
        elif note.kind == "error":
            observer.on_error(note.value)
        else:
            observer.on_completed()

    return action


class MarbleKit:
    """Builds envelope observables from marbles, runs operators and checks the result.

    Use [`marbles`][pfrx.testing.marbles], which makes one per test. Times are virtual seconds: a
    marble character is ``tick`` seconds; subscription happens at 200, disposal at 1000.
    """

    def __init__(
        self,
        context: Context = DEFAULT_CONTEXT,
        tick: float = 1.0,
        *,
        scheduler: TestScheduler | None = None,
    ) -> None:
        if scheduler is not None and not isinstance(scheduler, TestScheduler):
            raise TypeError(f"scheduler must be a TestScheduler, not {type(scheduler).__name__}")
        self.scheduler = scheduler if scheduler is not None else TestScheduler()
        self.context = context
        self.tick = tick
        self.metrics = StreamMetrics(self.scheduler)
        self.dropped: list[Dropped] = []
        self._ran = False
        #: The kit's sources as drawn by `diagram`: (marbles, notes from subscription).
        self.sources: list[tuple[str, list[Note]]] = []
        self._lookup: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"MarbleKit(clock={self.scheduler.clock!r}, tick={self.tick!r})"

    # -- sources -------------------------------------------------------------------------
    def cold(
        self,
        marbles: str,
        lookup: Mapping[str, Any] | None = None,
        *,
        context: Context | None = None,
        error: BaseException | None = None,
    ) -> Observable[Envelope]:
        """A cold observable of envelopes: the timeline starts at each subscription."""
        notes = parse(marbles, lookup, error=error, tick=self.tick)
        ctx = context or self.context
        self._remember(marbles, lookup, as_envelopes([_shifted(n, SUBSCRIBED) for n in notes], ctx))
        scheduler = self.scheduler

        def subscribe(
            observer: abc.ObserverBase[Envelope], _: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            handles = []
            for note in notes:
                handles.append(
                    scheduler.schedule_relative(note.time, _deliver(observer, note, ctx))
                )

            def dispose() -> None:
                for handle in handles:
                    handle.dispose()

            return Disposable(dispose)

        return Observable(subscribe)

    def hot(
        self,
        marbles: str,
        lookup: Mapping[str, Any] | None = None,
        *,
        context: Context | None = None,
        error: BaseException | None = None,
    ) -> Observable[Envelope]:
        """A hot observable of envelopes; ``^`` marks the subscription instant (200)."""
        notes = parse(marbles, lookup, error=error, start=SUBSCRIBED, tick=self.tick, hot=True)
        ctx = context or self.context
        self._remember(marbles, lookup, as_envelopes(notes, ctx))
        subject: Subject[Envelope] = Subject()
        for note in notes:
            if note.time >= 0:
                self.scheduler.schedule_absolute(note.time, _deliver(subject, note, ctx))
        return subject

    def _remember(self, marbles: str, lookup: Mapping[str, Any] | None, notes: list[Note]) -> None:
        self.sources.append((marbles, notes))
        self._learn(marbles, lookup)

    def _learn(self, marbles: str, lookup: Mapping[str, Any] | None) -> None:
        """Remember what each symbol of ``marbles`` stands for (its lookup value, else the
        character itself), unless an earlier marble string of this kit gave it a meaning:
        pictures and mismatch messages then draw values with the test's own symbols and
        never reuse one of them for another value."""
        for char in marbles:
            if char not in _GRAMMAR and char not in self._lookup:
                self._lookup[char] = lookup[char] if lookup is not None and char in lookup else char
        for char, value in (lookup or {}).items():
            self._lookup.setdefault(char, value)

    # -- drawing -------------------------------------------------------------------------
    def diagram(
        self,
        recording: Recording,
        operator: str | None = None,
        *,
        lookup: Mapping[str, Any] | None = None,
        label: str = "result",
        key: Callable[[Any], Any] | None = None,
        title: str | None = None,
    ) -> Diagram:
        """Draw this kit's sources, an ``operator`` box, the recording and its drops.

        Cold sources are drawn as seen by a subscription at 200; symbols come from the
        sources' lookups and ``lookup``. ``str()`` of the result is ASCII, ``.svg()`` SVG.
        """
        names = (
            ["source"]
            if len(self.sources) == 1
            else [f"source {i + 1}" for i in range(len(self.sources))]
        )
        merged = {**self._lookup, **(lookup or {})}
        return diagram(
            recording,
            sources=[(name, notes) for name, (_, notes) in zip(names, self.sources, strict=True)],
            operator=operator,
            label=label,
            lookup=merged,
            key=key,
            title=title,
        )

    # -- running -------------------------------------------------------------------------
    def run(
        self,
        observable: Observable[Any] | Callable[[], Observable[Any]],
        *,
        disposed: float = DISPOSED,
    ) -> Recording:
        """Subscribe at 200, run the scheduler, dispose at ``disposed``; return what was seen.

        Operators built without ``on_drop=`` / ``metrics=`` report into this kit's
        ``dropped`` list and ``metrics``.

        Raises:
            RuntimeError: this kit has run already (its virtual clock is past the
                subscription instant); use a fresh [`marbles`][pfrx.testing.marbles] for each run.
        """
        if self._ran:
            raise RuntimeError("a MarbleKit runs once: use a fresh marbles() for another run")
        self._ran = True
        factory = (
            observable
            if callable(observable) and not isinstance(observable, Observable)
            else (lambda: observable)
        )
        notes: list[Note] = []
        scheduler = self.scheduler
        dropped_before = len(self.dropped)
        subscription: list[abc.DisposableBase] = []

        def on_next(value: Any) -> None:
            notes.append(Note(float(scheduler.clock), "next", value))

        def on_error(error: Exception) -> None:
            notes.append(Note(float(scheduler.clock), "error", error))

        def on_completed() -> None:
            notes.append(Note(float(scheduler.clock), "completed"))

        def subscribe(_: abc.SchedulerBase, __: Any = None) -> None:
            source = factory()
            subscription.append(
                source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)
            )

        def dispose(_: abc.SchedulerBase, __: Any = None) -> None:
            for handle in subscription:
                handle.dispose()

        scheduler.schedule_absolute(SUBSCRIBED, subscribe)
        scheduler.schedule_absolute(disposed, dispose)
        with reporting_into(self.metrics, self.dropped.append):
            scheduler.start()
        return Recording(
            notes, self.dropped[dropped_before:], SUBSCRIBED, tick=self.tick, lookup=self._lookup
        )

    # -- checking ------------------------------------------------------------------------
    def expected(
        self,
        marbles: str,
        lookup: Mapping[str, Any] | None = None,
        *,
        error: BaseException | None = None,
    ) -> list[Note]:
        """The notes an expected marble string stands for, from the subscription instant."""
        return parse(marbles, lookup, error=error, start=SUBSCRIBED, tick=self.tick)

    def expect(
        self,
        recording: Recording,
        marbles: str,
        lookup: Mapping[str, Any] | None = None,
        *,
        error: BaseException | None = None,
        project: Callable[[Any], Any] = default_project,
    ) -> None:
        """Assert that ``recording`` matches ``marbles``.

        Values are compared after ``project`` (default: an envelope's event, a window's
        events). An expected ``#`` matches an error of the same type and message as
        ``error``, or any error when ``error`` is not given.

        Raises:
            MarbleMismatch: with expected and actual drawn as aligned ASCII marbles (one
                instant is one column in both, the actual drops below them), a caret at the
                first difference, then the notifications side by side.
        """
        __tracebackhide__ = True  # pytest shows the test's line and this message, not pfrx's code
        want = self.expected(marbles, lookup, error=error)
        self._learn(marbles, lookup)
        got = [
            Note(n.time, n.kind, project(n.value) if n.kind == "next" else n.value)
            for n in recording.notes
        ]
        if self._matches(want, got, error):
            return
        first = next(
            (
                w if w.time <= g.time else g
                for w, g in zip(want, got, strict=False)
                if not self._same(w, g, error)
            ),
            None,
        )
        if first is None and len(want) != len(got):
            first = (want if len(want) > len(got) else got)[min(len(want), len(got))]
        symbols = {**self._lookup, **(lookup or {})}
        lines = [
            "marbles differ",
            *_side_by_side(want, got, recording.dropped, first, SUBSCRIBED, self.tick, symbols),
            "",
            "notifications (expected | actual):",
        ]
        total = max(len(want), len(got))
        same = [
            index < min(len(want), len(got)) and self._same(want[index], got[index], error)
            for index in range(total)
        ]
        # From one row before the first difference, at most NOTIFICATION_ROWS rows.
        begin = max(0, same.index(False) - 1) if False in same else 0
        end = min(total, begin + NOTIFICATION_ROWS)
        if begin:
            lines.append(f"   ... {begin} equal above")
        for index in range(begin, end):
            left = str(want[index]) if index < len(want) else "-"
            right = str(got[index]) if index < len(got) else "-"
            lines.append(f"{'  ' if same[index] else '!!'} {left:<40} | {right}")
        if end < total:
            lines.append(f"   ... {total - end} more")
        raise MarbleMismatch("\n".join(lines))

    @staticmethod
    def _same(want: Note, got: Note, error: BaseException | None) -> bool:
        if want.time != got.time or want.kind != got.kind:
            return False
        if want.kind == "error":
            return _same_error(error, got.value)
        return bool(want.value == got.value)

    def _matches(self, want: list[Note], got: list[Note], error: BaseException | None) -> bool:
        return len(want) == len(got) and all(
            self._same(w, g, error) for w, g in zip(want, got, strict=True)
        )


def _shifted(note: Note, by: float) -> Note:
    """``note`` moved ``by`` seconds later."""
    return Note(note.time + by, note.kind, note.value)


@contextmanager
def marbles(context: Context = DEFAULT_CONTEXT, *, tick: float = 1.0) -> Iterator[MarbleKit]:
    """A fresh [`MarbleKit`][pfrx.testing.MarbleKit] (and ``TestScheduler``) for one test.

    Example:
        >>> from pfrx import operators as pf
        >>> with marbles() as m:
        ...     result = m.run(m.cold("-a-b-|").pipe(pf.transform(lambda e, c: e.upper())))
        ...     m.expect(result, "-A-B-|")
    """
    yield MarbleKit(context, tick)
