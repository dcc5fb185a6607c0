"""Issue 12: capability_filter's surviving mutants, each told apart by a statement of behaviour.

Every requirement form (a Capability, a family action with the event or ``resource=`` as the
path, a function of the event) is run one item per ``on_next`` and through a batched source.
The expected figures are written here from the contract's wording, never computed by pfrx.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import reactivex
from loguru import logger
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf

FileCap = pfrx.CapabilityFamily(
    "file", actions=("read", "write", "admin"), implies={"admin": ("read", "write")}
)
READ_DOCS = pfrx.Capability("file", "read", "/docs")
INSUFFICIENT = "insufficient_capabilities"

#: 0: one item per on_next; otherwise lists of that many items.
BATCHES = [0, 1, 3, 100]


def ev(event: Any, context: Any) -> pfrx.Envelope:
    return pfrx.Envelope(event, context, 0.0)


def alice() -> pfrx.Context:
    # A fresh context each time: its first question compiles, the next ones read the cache.
    return pfrx.Context("alice", "s1", [FileCap.read("/docs")])


def bob() -> pfrx.Context:
    # Holds nothing: denied by every form, whatever the event.
    return pfrx.Context("bob", "s2")


def source_of(items: list[Any], batch: int) -> reactivex.Observable[Any]:
    return reactivex.from_iterable(items) if batch == 0 else pfrx.sources.batches(items, batch)


def run(
    operator: Callable[..., Any],
    items: list[Any],
    batch: int,
    *,
    on_drop: bool = True,
) -> tuple[list[Any], list[pfrx.Dropped], pfrx.StreamMetrics]:
    lost: list[pfrx.Dropped] = []
    metrics = pfrx.StreamMetrics(TestScheduler())
    kwargs: dict[str, Any] = {"metrics": metrics}
    if on_drop:
        kwargs["on_drop"] = lost.append
    out = source_of(items, batch).pipe(operator(**kwargs), ops.to_list()).run()
    return out, lost, metrics


# The three forms, each requiring "file.read" on a path; the event is a path str (or a dict
# holding it, for resource=).
FORMS: dict[str, Callable[..., Any]] = {
    "static": lambda **kw: pf.capability_filter(READ_DOCS, **kw),
    "resource": lambda **kw: pf.capability_filter(FileCap.read, **kw),
    "computed": lambda **kw: pf.capability_filter(lambda e: FileCap.read(e), **kw),
}


@pytest.fixture
def logged() -> Iterator[list[str]]:
    lines: list[str] = []
    logger.enable("pfrx")
    handler = logger.add(
        lambda m: lines.append(str(m).rstrip("\n")), level="WARNING", format="{message}"
    )
    try:
        yield lines
    finally:
        logger.remove(handler)
        logger.disable("pfrx")


def settle_log_off() -> None:
    """Turn pfrx's log off, and let loguru settle that for the operator's modules (it does at
    each module's first record): from then on a denial nobody hears is only counted."""
    logger.disable("pfrx")
    metrics = pfrx.StreamMetrics(TestScheduler())
    out = reactivex.of(ev("/etc", bob())).pipe(
        pf.capability_filter(READ_DOCS, metrics=metrics), ops.to_list()
    )
    assert out.run() == []
    assert metrics.snapshot().dropped == 1


# -- errors at construction: the exact texts ----------------------------------------------------


def test_construction_errors_are_worded_exactly() -> None:
    with pytest.raises(TypeError) as caught:
        pf.capability_filter(READ_DOCS, resource=lambda e: e)
    assert str(caught.value) == (
        "resource= needs a family action (e.g. FileCap.read), not a Capability"
    )

    def need(event: Any) -> pfrx.Capability:
        return READ_DOCS

    with pytest.raises(TypeError) as caught:
        pf.capability_filter(need, resource=lambda e: e)
    assert str(caught.value) == (
        "resource= needs a family action (e.g. FileCap.read) as the requirement, not function"
    )
    with pytest.raises(TypeError) as caught:
        pf.capability_filter(42)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "required must be a Capability or a callable event -> Capability | Iterable "
        "(or a family action such as FileCap.read), not int"
    )


# -- the operator's name and clock -------------------------------------------------------------


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("form", list(FORMS))
def test_the_default_name_is_capability_filter(form: str, batch: int) -> None:
    items = [ev("/docs/a", alice()), ev("/etc/x", bob())]
    out, lost, metrics = run(FORMS[form], items, batch)
    assert out == [items[0]]
    assert [(d.item, d.reason, d.operator) for d in lost] == [
        (items[1], INSUFFICIENT, "capability_filter")
    ]
    counts = metrics.snapshot().operators[0]
    assert (counts.name, counts.received, counts.emitted, counts.dropped) == (
        "capability_filter",
        2,
        1,
        1,
    )


@pytest.mark.parametrize("form", list(FORMS))
def test_a_drop_is_stamped_on_the_subscribe_schedulers_clock(form: str) -> None:
    # No metrics: the clock can only come from the scheduler the pipeline is subscribed with.
    scheduler = TestScheduler()
    lost: list[pfrx.Dropped] = []
    denied = ev("/etc/x", bob())
    subject: Subject[Any] = Subject()
    subject.pipe(FORMS[form](on_drop=lost.append)).subscribe(scheduler=scheduler)
    scheduler.advance_to(7.5)
    subject.on_next(denied)
    assert [(d.reason, d.timestamp) for d in lost] == [(INSUFFICIENT, 7.5)]


# -- what is not a Context is never asked ------------------------------------------------------


class Impostor:
    """Not a Context, but answers every question a Context is asked with "granted"."""

    user_id, session_id = "mallory", "s9"
    capabilities = (FileCap.admin("/"),)

    def covered(self, *_args: Any) -> bool:
        return True

    def has_capability(self, *_args: Any) -> bool:
        return True

    def compiled_coverage(self, *_args: Any) -> Any:
        return (frozenset({"/docs/a"}), ("",))


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("form", list(FORMS))
def test_a_context_that_is_not_a_context_is_dropped_unasked(form: str, batch: int) -> None:
    items = [ev("/docs/a", Impostor()), ev("/docs/a", alice()), ev("/docs/b", Impostor())]
    out, lost, metrics = run(FORMS[form], items, batch)
    assert out == [items[1]]
    assert [(d.item, d.reason) for d in lost] == [
        (items[0], "invalid_context"),
        (items[2], "invalid_context"),
    ]
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (3, 1, 2, 0)
    assert dict(snap.drops_by_reason) == {"invalid_context": 2}


# -- a Context subclass is asked through its own methods ----------------------------------------


class Vetoing(pfrx.Context):
    """A Context subclass whose ``covered`` vetoes one path it would otherwise grant."""

    __slots__ = ()

    def covered(self, key: Any, resource: str | None) -> bool:
        return super().covered(key, resource) and resource != "/docs/secret"


@pytest.mark.parametrize("batch", BATCHES)
def test_a_context_subclass_answers_the_static_form_itself(batch: int) -> None:
    ctx = Vetoing("carol", "s4", [FileCap.read("/docs")])
    # Its coverage of file.read is compiled (by the base class) before the filter asks.
    assert ctx.has_capability(FileCap.read("/docs/a")) is True
    assert ctx.has_capability(FileCap.read("/docs/secret")) is False
    items = [ev(1, ctx), ev(2, ctx)]
    out, lost, _ = run(
        lambda **kw: pf.capability_filter(FileCap.read("/docs/secret"), **kw), items, batch
    )
    assert out == []
    assert [(d.item, d.reason) for d in lost] == [
        (items[0], INSUFFICIENT),
        (items[1], INSUFFICIENT),
    ]
    out, lost, _ = run(
        lambda **kw: pf.capability_filter(FileCap.read("/docs/a"), **kw), items, batch
    )
    assert (out, lost) == (items, [])


# -- a Capability subclass from the requirement function ----------------------------------------


class TaggedCap(pfrx.Capability):
    """A Capability subclass: judged by its fields."""

    __slots__ = ()


@pytest.mark.parametrize("batch", BATCHES)
def test_a_capability_subclass_required_per_event_is_judged_by_its_fields(batch: int) -> None:
    items = [ev("/docs/a", alice()), ev("/etc/x", alice()), ev("/docs", alice())]
    out, lost, metrics = run(
        lambda **kw: pf.capability_filter(lambda e: TaggedCap("file", "read", e), **kw),
        items,
        batch,
    )
    assert out == [items[0], items[2]]
    assert [(d.item, d.reason) for d in lost] == [(items[1], INSUFFICIENT)]
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (3, 2, 1, 0)


# -- a requirement function that produces no capability: fail closed, say why ------------------


@pytest.mark.parametrize("batch", BATCHES)
def test_what_a_requirement_function_produces_instead_of_capabilities(
    batch: int, logged: list[str]
) -> None:
    produced: dict[str, Any] = {
        "int": 5,
        "empty str": "",
        "empty bytes": b"",
        "str": "/docs/a",
        "list with a str": [FileCap.read("/docs/a"), "/docs/b"],
        "list with None": [None],
        "empty list": [],
        "one capability": FileCap.read("/docs/a"),
        "two capabilities": (FileCap.read("/docs/a"), FileCap.read("/docs/b")),
        "one missing of two": [FileCap.read("/docs/a"), FileCap.write("/docs/a")],
    }
    items = [ev(name, alice()) for name in produced]
    out, lost, metrics = run(
        lambda **kw: pf.capability_filter(lambda e: produced[e], **kw), items, batch
    )
    assert [e.event for e in out] == ["one capability", "two capabilities"]
    assert [(d.item.event, d.reason) for d in lost] == [
        ("int", INSUFFICIENT),
        ("empty str", INSUFFICIENT),
        ("empty bytes", INSUFFICIENT),
        ("str", INSUFFICIENT),
        ("list with a str", INSUFFICIENT),
        ("list with None", INSUFFICIENT),
        ("empty list", "empty_requirement"),
        ("one missing of two", INSUFFICIENT),
    ]
    snap = metrics.snapshot()
    # Six requirements failed (errors); the empty one and the missing write are plain denials.
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (10, 2, 8, 6)
    head = "capability denied: user=alice session=s1 "
    failed = head + "capability=?.? resource=? (requirement failed: requirement produced {})"
    assert logged == [
        failed.format("int, not a Capability"),
        failed.format("str, not a Capability"),
        failed.format("bytes, not a Capability"),
        failed.format("str, not a Capability"),
        failed.format("str, not a Capability"),
        failed.format("NoneType, not a Capability"),
        head + "capability=?.? resource=? (the requirement named no capability)",
        head + "capability=file.write resource=/docs/a",
    ]


def test_with_the_log_off_a_failing_requirements_error_is_never_formatted() -> None:
    formatted: list[str] = []

    class Loud(Exception):
        def __str__(self) -> str:
            formatted.append("str")
            return "loud"

    def need(event: Any) -> Any:
        raise Loud

    settle_log_off()
    for batch in BATCHES:
        out, lost, metrics = run(
            lambda **kw: pf.capability_filter(need, **kw), [ev(1, alice()), ev(2, alice())], batch
        )
        assert out == []
        assert [d.reason for d in lost] == [INSUFFICIENT] * 2
        assert metrics.snapshot().errors == 2
    assert formatted == []


# -- quiet denials (metrics only, log off) are counted exactly --------------------------------


@pytest.mark.parametrize("batch", BATCHES)
def test_quiet_denials_of_the_function_form_are_counted_one_each(batch: int) -> None:
    settle_log_off()
    needs = {1: FileCap.write("/docs"), 2: FileCap.read("/etc"), 3: FileCap.read("/docs/a")}
    needs |= {4: FileCap.admin("/"), 5: [], 6: FileCap.read("/x"), 7: []}
    items = [ev(n, alice()) for n in needs]
    out, _, metrics = run(
        lambda **kw: pf.capability_filter(lambda e: needs[e], **kw), items, batch, on_drop=False
    )
    assert out == [items[2]]
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (7, 1, 6, 0)
    assert dict(snap.drops_by_reason) == {INSUFFICIENT: 4, "empty_requirement": 2}


def form_items(form: str) -> tuple[list[Any], list[Any]]:
    """A first drop that is not for capabilities, then denials and passes."""
    granted = [ev("/docs/a", alice()), ev("/docs/b", alice())]
    items = [
        "not an envelope",
        ev("/etc/1", bob()),
        granted[0],
        ev("/etc/2", bob()),
        ev("/etc/3", bob()),
        granted[1],
        ev("/etc/4", bob()),
    ]
    return items, granted


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("form", list(FORMS))
def test_quiet_denials_after_another_drop_are_counted_exactly(form: str, batch: int) -> None:
    settle_log_off()
    items, granted = form_items(form)
    out, _, metrics = run(FORMS[form], items, batch, on_drop=False)
    assert out == granted
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.dropped, snap.errors) == (7, 2, 5, 0)
    assert dict(snap.drops_by_reason) == {"not_an_envelope": 1, INSUFFICIENT: 4}
    counts = snap.operators[0]
    assert (counts.received, counts.emitted, counts.dropped) == (7, 2, 5)


# -- watermarks pass through uncounted, however many share a batch ------------------------------


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("form", list(FORMS))
def test_watermarks_pass_uncounted_in_every_batch(form: str, batch: int) -> None:
    marks = [pfrx.Watermark(1.0), pfrx.Watermark(2.0), pfrx.Watermark(3.0)]
    items = [marks[0], marks[1], ev("/docs/a", alice()), marks[2], ev("/etc/x", bob())]
    out, lost, metrics = run(FORMS[form], items, batch)
    assert out == items[:4]
    assert [(d.item, d.reason) for d in lost] == [(items[4], INSUFFICIENT)]
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.dropped) == (2, 1, 1)
    counts = snap.operators[0]
    assert (counts.received, counts.emitted, counts.dropped) == (2, 1, 1)


# -- when the counts reach the metrics ----------------------------------------------------------


@pytest.mark.parametrize("form", list(FORMS))
def test_passed_items_are_pushed_into_the_metrics_every_256(form: str) -> None:
    # The module's documented cadence: counted locally, pushed when the 256th, 512th, ...
    # item passes (and whenever the metrics are read). The rate buckets (1 s wide, 10 of
    # them) show when: what was pushed at t=2 is out of the window read at t=12.
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler)
    subject: Subject[Any] = Subject()
    subject.pipe(FORMS[form](metrics=metrics)).subscribe(scheduler=scheduler)
    granted = ev("/docs/a", alice())
    for at, count in ((1.0, 256), (2.0, 10), (3.0, 246)):  # items 1-256, 257-266, 267-512
        scheduler.advance_to(at)
        for _ in range(count):
            subject.on_next(granted)
    scheduler.advance_to(12.0)
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted) == (512, 512)
    # Items 257-512 were pushed together at t=3, when the 512th passed.
    assert snap.recent_received == 256


def test_a_disposed_subscription_leaves_nothing_in_the_metrics() -> None:
    class Need:
        def __call__(self, event: Any) -> pfrx.Capability:
            return FileCap.read(event)

    need = Need()
    alive = weakref.ref(need)
    metrics = pfrx.StreamMetrics(TestScheduler())
    subject: Subject[Any] = Subject()
    operator = pf.capability_filter(need, metrics=metrics)
    subscription = subject.pipe(operator).subscribe()
    subject.on_next(ev("/docs/a", alice()))
    subject.on_next(ev("/etc", bob()))
    subscription.dispose()
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.dropped) == (2, 1, 1)
    del need, operator, subscription, subject
    gc.collect()
    assert alive() is None  # the metrics no longer hold the subscription (nor its requirement)
    assert metrics.snapshot().received == 2


@pytest.mark.parametrize("end", ["completed", "error"])
@pytest.mark.parametrize("form", list(FORMS))
def test_the_counts_are_pushed_when_the_input_ends(form: str, end: str) -> None:
    # Read as the end passes the next operator: what the filter counted is already there.
    metrics = pfrx.StreamMetrics(TestScheduler())
    seen: list[tuple[int, int, int]] = []

    def read(*_: Any) -> None:
        seen.append((metrics.received, metrics.emitted, metrics.dropped))

    subject: Subject[Any] = Subject()
    subject.pipe(FORMS[form](metrics=metrics)).subscribe(on_error=read, on_completed=read)
    subject.on_next(ev("/docs/a", alice()))
    subject.on_next(ev("/etc", bob()))
    subject.on_next(ev("/docs/b", alice()))
    if end == "completed":
        subject.on_completed()
    else:
        subject.on_error(RuntimeError("upstream"))
    assert seen == [(3, 2, 1)]


def test_the_function_form_logs_every_denial_once_the_log_is_on_even_mid_batch() -> None:
    # The README's form: the log is asked about per item, so a logger.enable made while a
    # batch is being judged is heard from the next item on. The first batch of two finds
    # the log off (quietly counted); the second one turns it on with its first item.
    settle_log_off()
    lines: list[str] = []
    sink: list[int] = []

    def need(event: Any) -> pfrx.Capability:
        if event == "/etc/2" and not sink:
            logger.enable("pfrx")
            sink.append(logger.add(lambda m: lines.append(str(m).rstrip("\n")), format="{message}"))
        return FileCap.read(event)

    items = [ev(p, bob()) for p in ("/etc/0", "/etc/1", "/etc/2", "/etc/3")]
    try:
        out, _, metrics = run(
            lambda **kw: pf.capability_filter(need, **kw), items, 2, on_drop=False
        )
    finally:
        for handler in sink:
            logger.remove(handler)
        logger.disable("pfrx")
    assert out == []
    assert metrics.snapshot().dropped == 4
    assert [line for line in lines if line.startswith("capability denied")] == [
        f"capability denied: user=bob session=s2 capability=file.read resource=/etc/{n}"
        for n in (2, 3)
    ]


# -- a subscription turns quiet only when neither of the modules it logs from would log --------


def drop_lines(enable: str | None, disable: str | None) -> tuple[list[str], pfrx.MetricsSnapshot]:
    lines: list[str] = []
    logger.disable("pfrx")  # fresh loguru settings: nothing settled yet
    if enable is not None:
        logger.enable(enable)
    if disable is not None:
        logger.disable(disable)
    handler = logger.add(lambda m: lines.append(str(m).rstrip("\n")), level=0, format="{message}")
    try:
        items = [ev(f"/etc/{n}", bob()) for n in range(4)]
        out, _, metrics = run(FORMS["computed"], items, 0, on_drop=False)
    finally:
        logger.remove(handler)
        logger.disable("pfrx")
    assert out == []
    return lines, metrics.snapshot()


def test_with_only_the_generic_drop_log_on_every_denial_is_logged() -> None:
    lines, snap = drop_lines("pfrx", "pfrx.operators._capability_filter")
    assert lines == ["capability_filter dropped an item: insufficient_capabilities"] * 4
    assert dict(snap.drops_by_reason) == {INSUFFICIENT: 4}


def test_with_only_the_denial_log_on_every_denial_is_logged() -> None:
    lines, snap = drop_lines("pfrx.operators._capability_filter", None)
    assert lines == [
        f"capability denied: user=bob session=s2 capability=file.read resource=/etc/{n}"
        for n in range(4)
    ]
    assert dict(snap.drops_by_reason) == {INSUFFICIENT: 4}
