"""Issue 12: capability_filter's batch entries, stated item by item.

A batched source hands the filter one list at a time. The filter judges each item as its
per-item path would (the requirement asked once per item), reports each denial as it meets
it, then passes on what it kept as one list (never an empty one). These tests feed lists by
hand into a fused pipeline whose next link records the lists it receives, so the order of
the denials and of the list after them is visible, and every expected figure is written here
from the contract's wording.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import reactivex
from loguru import logger
from reactivex import Observable
from reactivex.disposable import Disposable
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.operators._shared import BatchSource, OnBatch, OnNext, Prepared, fuse

FileCap = pfrx.CapabilityFamily("file", actions=("read", "write"))
READ_DOCS = pfrx.Capability("file", "read", "/docs")
INSUFFICIENT = "insufficient_capabilities"
EMPTY = "empty_requirement"


def alice() -> pfrx.Context:
    # Fresh per test: its first question compiles its coverage, later ones read the cache.
    return pfrx.Context("alice", "s1", [FileCap.read("/docs")])


def ev(event: Any, context: Any) -> pfrx.Envelope:
    return pfrx.Envelope(event, context, 0.0)


class Tagged(pfrx.Envelope):
    """An envelope of a subclass: an envelope all the same."""

    __slots__ = ()


class Lookalike:
    """Has an event and a context, but is no envelope: never judged, never passed."""

    def __init__(self, event: Any, context: Any) -> None:
        self.event = event
        self.context = context


class Feed:
    """A batched source whose lists the test hands over one call at a time."""

    def __init__(self) -> None:
        self.on_batch: OnBatch | None = None

    def observable(self) -> Observable[Any]:
        def subscribe(*_: Any) -> Any:
            raise AssertionError("a fused pipeline subscribes to a batched source by lists")

        def subscribe_batches(on_batch: OnBatch, *_: Any) -> Any:
            self.on_batch = on_batch
            return Disposable()

        return BatchSource(subscribe, subscribe_batches)

    def send(self, items: list[Any]) -> None:
        assert self.on_batch is not None
        self.on_batch(items)


def recorder(log: list[Any]) -> Callable[[Observable[Any]], Observable[Any]]:
    """A link after the filter that records each list it is handed, as ("list", items)."""

    def link(_scheduler: Any) -> Prepared:
        def wire(forward: OnNext) -> OnNext:
            return forward

        def wire_batch(forward: OnBatch) -> OnBatch:
            def on_batch(items: list[Any]) -> None:
                log.append(("list", list(items)))
                forward(items)

            return on_batch

        return Prepared(wire, wire_batch=wire_batch)

    return fuse(link)


class Run:
    """One subscription of ``capability_filter(required, ...)`` fed by lists."""

    def __init__(
        self, required: Any, *, on_drop: bool = True, per_item: bool = False, **kwargs: Any
    ) -> None:
        self.log: list[Any] = []
        self.out: list[Any] = []
        self.metrics = pfrx.StreamMetrics(TestScheduler())
        if on_drop:
            kwargs["on_drop"] = lambda d: self.log.append(("drop", d.item, d.reason, d.operator))
        self.feed = Feed()
        self.subject: Subject[Any] | None = Subject() if per_item else None
        source = self.subject if self.subject is not None else self.feed.observable()
        operator = pf.capability_filter(required, metrics=self.metrics, **kwargs)
        source.pipe(operator, recorder(self.log)).subscribe(self.out.append)

    def send(self, items: list[Any]) -> None:
        """One list, or (per_item) its items one ``on_next`` each."""
        if self.subject is None:
            self.feed.send(items)
        else:
            for item in items:
                self.subject.on_next(item)

    def figures(self) -> tuple[int, int, int, int, dict[str, int]]:
        snap = self.metrics.snapshot()
        return snap.received, snap.emitted, snap.dropped, snap.errors, dict(snap.drops_by_reason)


def same(a: list[Any], b: list[Any]) -> bool:
    """The very same objects, in the same order."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


class Asked:
    """A requirement function that counts its calls per event (events are hashable)."""

    def __init__(self) -> None:
        self.calls: dict[Any, int] = {}

    def __call__(self, event: Any) -> Any:
        self.calls[event] = self.calls.get(event, 0) + 1
        if event == "raise":
            raise RuntimeError("boom")
        if event == "garbage":
            return "not a capability"
        if event == "empty":
            return []
        return FileCap.read(event)


@pytest.fixture
def log_off() -> Iterator[None]:
    logger.disable("pfrx")
    yield
    logger.disable("pfrx")


@pytest.fixture
def lines() -> Iterator[list[str]]:
    out: list[str] = []
    logger.enable("pfrx")
    handler = logger.add(
        lambda m: out.append(str(m).rstrip("\n")), level="WARNING", format="{message}"
    )
    try:
        yield out
    finally:
        logger.remove(handler)
        logger.disable("pfrx")


# -- the function form (the README's) ----------------------------------------------------------


def test_a_mixed_batch_of_the_function_form_denies_and_passes_item_by_item(log_off: None) -> None:
    asked = Asked()
    run = Run(asked)
    ctx = alice()
    first = ev("/etc/first", ctx)  # denied, at the first position
    a = ev("/docs/a", ctx)
    mark1 = pfrx.Watermark(1.0)
    junk = "junk"
    tagged = Tagged("/docs/t", ctx, 0.0)
    look = Lookalike("/docs/look", ctx)
    invalid = ev("/docs/x", "not a context")
    failing = ev("raise", ctx)
    garbage = ev("garbage", ctx)
    empty = ev("empty", ctx)
    b = ev("/docs/b", ctx)
    mark2 = pfrx.Watermark(2.0)
    last = ev("/tmp/last", ctx)  # denied, at the last position
    batch = [first, a, mark1, junk, tagged, look, invalid, failing, garbage, empty, b, mark2, last]
    run.send(batch)
    denied = [
        (first, INSUFFICIENT),
        (junk, "not_an_envelope"),
        (look, "not_an_envelope"),
        (invalid, "invalid_context"),
        (failing, INSUFFICIENT),
        (garbage, INSUFFICIENT),
        (empty, EMPTY),
        (last, INSUFFICIENT),
    ]
    # Each denial as it is met, then the one list of what passed (watermarks in place).
    assert len(run.log) == len(denied) + 1
    for (kind, item, reason, operator), (expected, why) in zip(run.log, denied, strict=False):
        assert (kind, reason, operator) == ("drop", why, "capability_filter")
        assert item is expected
    assert run.log[-1][0] == "list"
    assert same(run.log[-1][1], [a, mark1, tagged, b, mark2])
    assert same(run.out, [a, mark1, tagged, b, mark2])
    # The requirement: once per envelope with a context, never for the others.
    assert asked.calls == {
        "/etc/first": 1,
        "/docs/a": 1,
        "/docs/t": 1,
        "raise": 1,
        "garbage": 1,
        "empty": 1,
        "/docs/b": 1,
        "/tmp/last": 1,
    }
    # 11 items received (watermarks are not items), 3 passed, 8 dropped, 2 failures counted.
    assert run.figures() == (
        11,
        3,
        8,
        2,
        {INSUFFICIENT: 4, "not_an_envelope": 2, "invalid_context": 1, EMPTY: 1},
    )


def test_a_batch_with_nothing_granted_forwards_nothing(log_off: None) -> None:
    asked = Asked()
    run = Run(asked)
    ctx = alice()
    items = [ev("/etc/0", ctx), ev("/etc/1", ctx)]
    run.send(items)
    run.send([])  # an empty list: nothing judged, nothing forwarded
    assert [entry[0] for entry in run.log] == ["drop", "drop"]
    assert [entry[1] for entry in run.log] == items
    assert run.out == []
    assert asked.calls == {"/etc/0": 1, "/etc/1": 1}
    assert run.figures() == (2, 0, 2, 0, {INSUFFICIENT: 2})


def test_an_empty_batch_changes_nothing(log_off: None) -> None:
    asked = Asked()
    run = Run(asked)
    run.send([])
    assert (run.log, run.out, asked.calls) == ([], [], {})
    assert run.figures() == (0, 0, 0, 0, {})


def test_watermarks_in_a_batch_pass_in_place_and_uncounted(log_off: None) -> None:
    run = Run(Asked())
    ctx = alice()
    marks = [pfrx.Watermark(float(n)) for n in range(3)]
    a, b = ev("/docs/a", ctx), ev("/docs/b", ctx)
    run.send([marks[0], marks[1], a])  # two watermarks before one item
    assert run.figures() == (1, 1, 0, 0, {})
    run.send([marks[2]])  # a list of watermarks only: passed on, nothing counted
    assert run.figures() == (1, 1, 0, 0, {})
    run.send([b, marks[0], marks[1], marks[2]])
    assert run.figures() == (2, 2, 0, 0, {})
    assert [entry[0] for entry in run.log] == ["list"] * 3
    assert same(run.out, [marks[0], marks[1], a, marks[2], b, *marks])


def test_an_envelope_subclass_is_judged_and_a_lookalike_is_not(log_off: None) -> None:
    asked = Asked()
    run = Run(asked)
    ctx = alice()
    granted, refused = Tagged("/docs/a", ctx, 0.0), Tagged("/etc/a", ctx, 0.0)
    look = Lookalike("/docs/b", ctx)
    run.send([granted, look, refused])
    assert same(run.out, [granted])
    assert [(entry[1], entry[2]) for entry in run.log[:2]] == [
        (look, "not_an_envelope"),
        (refused, INSUFFICIENT),
    ]
    assert asked.calls == {"/docs/a": 1, "/etc/a": 1}


def test_denials_after_the_log_turned_quiet_are_counted_one_each(log_off: None) -> None:
    # No on_drop and the log off: once loguru has settled that nobody hears a denial, the
    # subscription only counts them. Counted one each, across batches, by reason.
    run = Run(Asked(), on_drop=False)
    ctx = alice()
    run.send([ev("/etc/settle", ctx)])  # the first denial finds the log off
    assert run.figures() == (1, 0, 1, 0, {INSUFFICIENT: 1})
    run.send([ev("/etc/0", ctx), ev("/etc/1", ctx), ev("/docs/a", ctx), ev("/etc/2", ctx)])
    assert run.figures() == (5, 1, 4, 0, {INSUFFICIENT: 4})
    run.send([ev("/etc/3", ctx), ev("/etc/4", ctx)])
    assert run.figures() == (7, 1, 6, 0, {INSUFFICIENT: 6})
    # An empty requirement keeps its own reason, whether or not the log is quiet.
    run.send([ev("empty", ctx), ev("/etc/5", ctx), ev("empty", ctx)])
    assert run.figures() == (10, 1, 9, 0, {INSUFFICIENT: 7, EMPTY: 2})
    assert len(run.out) == 1


def test_each_denial_in_a_batch_is_logged_with_what_was_missing(lines: list[str]) -> None:
    run = Run(Asked())
    ctx = alice()
    run.send([ev("/etc/a", ctx), ev("empty", ctx), ev("raise", ctx), ev("/docs/a", ctx)])
    assert [line for line in lines if line.startswith("capability denied")] == [
        "capability denied: user=alice session=s1 capability=file.read resource=/etc/a",
        "capability denied: user=alice session=s1 capability=?.? resource=?"
        " (the requirement named no capability)",
        "capability denied: user=alice session=s1 capability=?.? resource=?"
        " (requirement failed: boom)",
    ]
    assert run.figures() == (4, 1, 3, 1, {INSUFFICIENT: 2, EMPTY: 1})


# -- the three forms agree on a Context subclass ------------------------------------------------


class Generous(pfrx.Context):
    """A Context subclass whose has_capability grants everything; ``covered`` is the seam
    every form asks for one capability, so it is not consulted."""

    def has_capability(self, required: pfrx.Capability) -> bool:
        return True


FORMS: dict[str, Callable[[], Any]] = {
    "static": lambda: READ_DOCS,
    "resource": lambda: FileCap.read,
    "computed": lambda: lambda e: FileCap.read(e),
}


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("batched", [False, True])
def test_a_context_subclass_is_answered_alike_by_every_form(
    log_off: None, form: str, batched: bool
) -> None:
    # Every form needs file.read on /docs here; only the context differs.
    holder = ev("/docs", Generous("carol", "s3", [FileCap.read("/docs")]))
    other = ev("/docs", Generous("erin", "s5", [FileCap.read("/srv")]))
    if batched:
        run = Run(FORMS[form]())
        run.send([other, holder])
        assert same(run.out, [holder])
        assert [(entry[1], entry[2]) for entry in run.log[:1]] == [(other, INSUFFICIENT)]
    else:
        lost: list[pfrx.Dropped] = []
        out: list[Any] = []
        operator = pf.capability_filter(FORMS[form](), on_drop=lost.append)
        reactivex.from_iterable([other, holder]).pipe(operator).subscribe(out.append)
        assert same(out, [holder])
        assert [(d.item, d.reason) for d in lost] == [(other, INSUFFICIENT)]


# -- what a read made from inside the requirement during a batch sees ---------------------------


@pytest.mark.parametrize("form", ["resource", "computed"])
def test_a_batchs_quiet_denials_are_counted_when_the_batch_ends(log_off: None, form: str) -> None:
    # The requirement is user code, run inside the batch loop: a metrics read it makes sees
    # the counts up to the previous batch; the batch's passes and quiet denials land together
    # when its loop ends.
    seen: list[tuple[int, int, int]] = []
    run_box: list[Run] = []

    def path(event: Any) -> str:
        if event == "/docs/probe":
            snap = run_box[0].metrics.snapshot()
            seen.append((snap.received, snap.emitted, snap.dropped))
        return str(event)

    if form == "resource":
        run = Run(FileCap.read, on_drop=False, resource=path)
    else:
        run = Run(lambda e: FileCap.read(path(e)), on_drop=False)
    run_box.append(run)
    ctx = alice()
    run.send([ev("/etc/settle", ctx)])  # the log found off: quiet from now on
    run.send([ev("/etc/0", ctx), ev("/docs/a", ctx), ev("/etc/1", ctx), ev("/docs/probe", ctx)])
    assert seen == [(1, 0, 1)]
    assert run.figures() == (5, 2, 3, 0, {INSUFFICIENT: 3})


# -- a log turned on while a batch is judged ----------------------------------------------------


class Enabling(pfrx.Context):
    """A Context subclass whose coverage question turns pfrx's log on (then answers)."""

    def covered(self, key: Any, resource: str | None) -> bool:
        logger.enable("pfrx")
        return super().covered(key, resource)


def enabling_path(event: Any) -> str:
    """The path of an event, turning pfrx's log on when it is "/etc/enable"."""
    if event == "/etc/enable":
        logger.enable("pfrx")
    return str(event)


LOG_FORMS: dict[str, Callable[[bool], Run]] = {
    "static": lambda per_item: Run(READ_DOCS, on_drop=False, per_item=per_item),
    "resource": lambda per_item: Run(
        FileCap.read, on_drop=False, per_item=per_item, resource=enabling_path
    ),
    "computed": lambda per_item: Run(
        lambda e: FileCap.read(enabling_path(e)), on_drop=False, per_item=per_item
    ),
}


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("form", sorted(LOG_FORMS))
def test_a_log_turned_on_mid_batch_is_heard_from_the_next_denial_as_one_by_one(
    log_off: None, form: str, batched: bool
) -> None:
    # The log is off and the subscription has found that nobody hears a denial; then a
    # question the filter asks (the context's coverage, resource=, the requirement) turns the
    # log on. From that denial on every denial is logged, in a batch as one by one: a batch
    # must not keep counting quietly what sending one by one would have logged.
    out: list[str] = []
    handler = logger.add(
        lambda m: out.append(str(m).rstrip("\n")), level="WARNING", format="{message}"
    )
    try:
        run = LOG_FORMS[form](not batched)
        plain = pfrx.Context("bob", "s2")
        run.send([ev("/etc/settle", plain)])  # the log found off: quiet from now on
        assert out == []
        trigger = ev("/etc/0", Enabling("dave", "s4")) if form == "static" else None
        trigger = trigger or ev("/etc/enable", plain)
        items = [trigger, ev("/etc/1", plain), ev("/etc/2", plain)]
        run.send(items)
        if form == "static":  # the missing capability: what the requirement names
            who = ["user=dave session=s4", "user=bob session=s2", "user=bob session=s2"]
            expected = [f"capability denied: {w} capability=file.read resource=/docs" for w in who]
        else:
            expected = [
                f"capability denied: user=bob session=s2 capability=file.read resource={path}"
                for path in ("/etc/enable", "/etc/1", "/etc/2")
            ]
        assert out == expected
        assert run.figures() == (4, 0, 4, 0, {INSUFFICIENT: 4})
    finally:
        logger.remove(handler)
        logger.disable("pfrx")


# -- an on_drop that fails does not stop the batch -----------------------------------------------


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_failing_on_drop_costs_one_error_and_the_batch_goes_on(log_off: None, form: str) -> None:
    told: list[Any] = []

    def on_drop(record: pfrx.Dropped) -> None:
        told.append(record.item)
        if len(told) == 1:
            raise RuntimeError("handler down")

    out: list[Any] = []
    metrics = pfrx.StreamMetrics(TestScheduler())
    feed = Feed()
    operator = pf.capability_filter(FORMS[form](), on_drop=on_drop, metrics=metrics)
    feed.observable().pipe(operator).subscribe(out.append)
    nobody = pfrx.Context("bob", "s2")
    first, second = ev("/docs", nobody), ev("/docs", nobody)
    granted = ev("/docs", alice())
    feed.send([first, granted, second])
    assert same(told, [first, second])
    assert same(out, [granted])
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (3, 1, 2, 1)


# -- the exact resource held, per item and per batch ---------------------------------------------


@pytest.mark.parametrize("form", ["resource", "computed"])
@pytest.mark.parametrize("per_item", [True, False])
def test_the_very_resource_held_is_granted_once_compiled_too(
    log_off: None, form: str, per_item: bool
) -> None:
    # The first question compiles the context's coverage of file.read; the later ones are
    # answered from it: "/docs" itself (an exact grant), below it, beside it, above it.
    required = FileCap.read if form == "resource" else (lambda e: FileCap.read(e))
    run = Run(required, per_item=per_item)
    ctx = alice()
    items = [ev(path, ctx) for path in ("/docs", "/docs", "/docs/a", "/docsx", "/", "/docs")]
    run.send(items)
    assert same(run.out, [items[0], items[1], items[2], items[5]])
    assert [(entry[1], entry[2]) for entry in run.log if entry[0] == "drop"] == [
        (items[3], INSUFFICIENT),
        (items[4], INSUFFICIENT),
    ]
    assert run.figures() == (6, 4, 2, 0, {INSUFFICIENT: 2})
