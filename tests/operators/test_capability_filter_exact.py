"""Issue 12: capability_filter stated exactly, per item and per batch, for each requirement form.

Every form is run one item per ``on_next`` and through a batched source (lists of 1, 2, 3 and
all items): what passes, every drop with its reason, the metrics and the log lines must be
the same, and equal to the figures written here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import reactivex
from loguru import logger
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf

FileCap = pfrx.CapabilityFamily(
    "file", actions=("read", "write", "admin"), implies={"admin": ("read", "write")}
)


class SubContext(pfrx.Context):
    """A Context subclass: never answered from the compiled cache."""

    __slots__ = ()


class Sneaky(str):
    """A str subclass resource: judged by its characters."""


def reader() -> pfrx.Context:
    # A fresh context each run: its first question compiles, the next ones read the cache.
    return pfrx.Context("alice", "s1", [FileCap.read("/docs")])


def sub_reader() -> SubContext:
    return SubContext("sam", "s2", [FileCap.admin("/docs")])


def run(
    operator: Callable[..., Any], items: list[Any], batch: int, *, on_drop: bool = True
) -> tuple[list[Any], list[tuple[Any, str, str]], tuple[Any, ...]]:
    lost: list[pfrx.Dropped] = []
    metrics = pfrx.StreamMetrics(TestScheduler())
    kwargs: dict[str, Any] = {"metrics": metrics}
    if on_drop:
        kwargs["on_drop"] = lost.append
    source = reactivex.from_iterable(items) if batch == 0 else pfrx.sources.batches(items, batch)
    out = source.pipe(operator(**kwargs), ops.to_list()).run()
    snap = metrics.snapshot()
    stage = snap.stages[0]
    figures = (
        snap.received,
        snap.emitted,
        snap.dropped,
        snap.errors,
        dict(snap.drops_by_reason),
        (stage.name, stage.received, stage.emitted, stage.dropped, stage.errors),
    )
    return out, [(d.item, d.reason, d.operator) for d in lost], figures


def ev(event: Any, context: Any) -> pfrx.Envelope:
    return pfrx.Envelope(event, context, 0.0)


BATCHES = [0, 1, 2, 3, 100]


def log_lines() -> Iterator[list[str]]:
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


@pytest.fixture
def logged() -> Iterator[list[str]]:
    yield from log_lines()


# -- the resource form (FileCap.read, the event or resource= gives the path) -------------------


def resource_items() -> tuple[list[Any], list[Any], list[tuple[Any, str]], int]:
    alice, sam = reader(), sub_reader()
    outsider = pfrx.Context("bob", "s3")
    granted = [
        ev("/docs/a", alice),
        ev("/docs", alice),
        ev(Sneaky("/docs/x"), alice),
        ev("/docs/b", sam),
        ev("/docs/./c", alice),
    ]
    items = [
        granted[0],
        ev("/docs2/a", alice),
        "not an envelope",
        granted[1],
        ev("/docs/a", "not a context"),
        granted[2],
        ev(5, alice),  # not a str: a TypeError, fail closed and count an error
        ev("relative/docs", alice),
        granted[3],
        ev("/etc", sam),
        ev("/docs/../etc", alice),
        ev("/docs/a", outsider),
        granted[4],
        ev(None, sam),
    ]
    drops = [
        (items[1], "insufficient_capabilities"),
        (items[2], "not_an_envelope"),
        (items[4], "invalid_context"),
        (items[6], "insufficient_capabilities"),
        (items[7], "insufficient_capabilities"),
        (items[9], "insufficient_capabilities"),
        (items[10], "insufficient_capabilities"),
        (items[11], "insufficient_capabilities"),
        (items[13], "insufficient_capabilities"),
    ]
    return items, granted, drops, 2  # two errors: the int and the None resource


@pytest.mark.parametrize("batch", BATCHES)
def test_the_resource_form_decides_each_item_exactly(batch: int) -> None:
    items, granted, drops, errors = resource_items()
    out, lost, figures = run(
        lambda **kw: pf.capability_filter(FileCap.read, name="guard", **kw), items, batch
    )
    assert out == granted
    assert lost == [(item, reason, "guard") for item, reason in drops]
    by_reason = {"insufficient_capabilities": 7, "not_an_envelope": 1, "invalid_context": 1}
    assert figures == (14, 5, 9, errors, by_reason, ("guard", 14, 5, 9, errors))


@pytest.mark.parametrize("batch", BATCHES)
def test_the_resource_form_counts_the_same_without_anyone_to_tell(batch: int) -> None:
    items, granted, _drops, errors = resource_items()
    out, lost, figures = run(
        lambda **kw: pf.capability_filter(FileCap.read, **kw), items, batch, on_drop=False
    )
    assert out == granted
    assert lost == []
    by_reason = {"insufficient_capabilities": 7, "not_an_envelope": 1, "invalid_context": 1}
    assert figures == (14, 5, 9, errors, by_reason, ("capability_filter", 14, 5, 9, errors))


@pytest.mark.parametrize("batch", BATCHES)
def test_resource_function_reads_the_path_from_the_event(batch: int) -> None:
    alice = reader()
    items = [ev({"p": "/docs/1"}, alice), ev({"p": "/x"}, alice), ev({"p": "/docs/2"}, alice)]
    out, lost, figures = run(
        lambda **kw: pf.capability_filter(FileCap.read, resource=lambda e: e["p"], **kw),
        items,
        batch,
    )
    assert out == [items[0], items[2]]
    assert [(item, reason) for item, reason, _ in lost] == [(items[1], "insufficient_capabilities")]
    assert figures[:3] == (3, 2, 1)


@pytest.mark.parametrize("batch", BATCHES)
def test_resource_form_denials_name_who_what_and_where(batch: int, logged: list[str]) -> None:
    items, _granted, _drops, _errors = resource_items()
    run(lambda **kw: pf.capability_filter(FileCap.read, **kw), items, batch)
    denied = [line for line in logged if "requirement failed" not in line]
    assert denied == [
        "capability denied: user=alice session=s1 capability=file.read resource=/docs2/a",
        "capability denied: user=alice session=s1 capability=file.read resource=relative/docs",
        "capability denied: user=sam session=s2 capability=file.read resource=/etc",
        "capability denied: user=alice session=s1 capability=file.read resource=/docs/../etc",
        "capability denied: user=bob session=s3 capability=file.read resource=/docs/a",
    ]
    failed = [line for line in logged if "requirement failed" in line]
    assert failed == [
        "capability denied: user=alice session=s1 capability=?.? resource=?"
        " (requirement failed: resource must be a str, not int)",
        "capability denied: user=sam session=s2 capability=?.? resource=?"
        " (requirement failed: resource must be a str, not NoneType)",
    ]


# -- the static form (one Capability for every event) -----------------------------------------


def static_items() -> tuple[list[Any], list[Any], list[tuple[Any, str]]]:
    alice, sam = reader(), sub_reader()
    root = pfrx.Context("root", capabilities=[FileCap.admin("/")])
    granted = [ev("a", alice), ev("b", sam), ev("c", root), ev("d", alice)]
    items = [
        granted[0],
        ev("x", pfrx.Context("bob")),
        granted[1],
        ev("y", SubContext("sub", capabilities=[FileCap.read("/etc")])),
        "nope",
        granted[2],
        ev("z", 3.5),
        granted[3],
        ev("w", pfrx.Context("carol", capabilities=[FileCap.write("/docs")])),
    ]
    drops = [
        (items[1], "insufficient_capabilities"),
        (items[3], "insufficient_capabilities"),
        (items[4], "not_an_envelope"),
        (items[6], "invalid_context"),
        (items[8], "insufficient_capabilities"),
    ]
    return items, granted, drops


@pytest.mark.parametrize("on_drop", [True, False])
@pytest.mark.parametrize("batch", BATCHES)
def test_the_static_form_decides_each_item_exactly(batch: int, on_drop: bool) -> None:
    items, granted, drops = static_items()
    out, lost, figures = run(
        lambda **kw: pf.capability_filter(FileCap.read("/docs/a"), **kw),
        items,
        batch,
        on_drop=on_drop,
    )
    assert out == granted
    if on_drop:
        assert lost == [(item, reason, "capability_filter") for item, reason in drops]
    by_reason = {"insufficient_capabilities": 3, "not_an_envelope": 1, "invalid_context": 1}
    assert figures == (9, 4, 5, 0, by_reason, ("capability_filter", 9, 4, 5, 0))


@pytest.mark.parametrize("batch", BATCHES)
def test_a_static_requirement_on_an_invalid_resource_never_passes(batch: int) -> None:
    root = pfrx.Context("root", capabilities=[FileCap.admin("/")])
    items = [ev("a", root), ev("b", root), ev("c", SubContext("s", capabilities=[FileCap.admin()]))]
    out, lost, figures = run(
        lambda **kw: pf.capability_filter(FileCap.read("relative"), **kw), items, batch
    )
    assert out == []
    assert [reason for _, reason, _ in lost] == ["insufficient_capabilities"] * 3
    assert figures[:3] == (3, 0, 3)


@pytest.mark.parametrize("batch", BATCHES)
def test_static_denials_name_the_required_capability(batch: int, logged: list[str]) -> None:
    items, _granted, _drops = static_items()
    run(lambda **kw: pf.capability_filter(FileCap.read("/docs/a"), **kw), items, batch)
    assert logged == [
        "capability denied: user=bob session=None capability=file.read resource=/docs/a",
        "capability denied: user=sub session=None capability=file.read resource=/docs/a",
        "capability denied: user=carol session=None capability=file.read resource=/docs/a",
    ]


# -- the computed form (a function event -> capability or capabilities) -----------------------


@pytest.mark.parametrize("batch", BATCHES)
def test_the_computed_form_decides_each_item_exactly(batch: int, logged: list[str]) -> None:
    alice, sam = reader(), sub_reader()

    def need(event: Any) -> Any:
        if event == "empty":
            return []
        if event == "both":
            return [FileCap.read("/docs/1"), FileCap.write("/docs/1")]
        if event == "boom":
            raise RuntimeError("no path")
        return FileCap.read(event)

    items = [
        ev("/docs/a", alice),
        ev("/etc", alice),
        ev("empty", alice),
        ev("both", alice),
        ev("both", sam),
        ev("boom", alice),
        ev("/docs/b", sam),
        ev("/docs/c", alice),
        ev("relative", alice),
    ]
    out, lost, figures = run(lambda **kw: pf.capability_filter(need, **kw), items, batch)
    assert out == [items[0], items[4], items[6], items[7]]
    assert [(item, reason) for item, reason, _ in lost] == [
        (items[1], "insufficient_capabilities"),
        (items[2], "empty_requirement"),
        (items[3], "insufficient_capabilities"),
        (items[5], "insufficient_capabilities"),
        (items[8], "insufficient_capabilities"),
    ]
    by_reason = {"insufficient_capabilities": 4, "empty_requirement": 1}
    assert figures == (9, 4, 5, 1, by_reason, ("capability_filter", 9, 4, 5, 1))
    assert logged == [
        "capability denied: user=alice session=s1 capability=file.read resource=/etc",
        "capability denied: user=alice session=s1 capability=?.? resource=?"
        " (the requirement named no capability)",
        "capability denied: user=alice session=s1 capability=file.write resource=/docs/1",
        "capability denied: user=alice session=s1 capability=?.? resource=?"
        " (requirement failed: no path)",
        "capability denied: user=alice session=s1 capability=file.read resource=relative",
    ]


# -- counts reach the metrics every 256 passed items, exactly -----------------------------------


@pytest.mark.parametrize(
    ("operator", "batch", "expected"),
    [
        # One item at a time: the 256th passed item is flushed before it goes on.
        (lambda **kw: pf.capability_filter(FileCap.read, **kw), 0, [0] * 255 + [256] * 45),
        (lambda **kw: pf.capability_filter(FileCap.read("/docs"), **kw), 0, [0] * 255 + [256] * 45),
        # A list at a time: flushed after the list that crosses 256 (here at 300).
        (lambda **kw: pf.capability_filter(FileCap.read, **kw), 100, [0] * 200 + [300] * 100),
        (
            lambda **kw: pf.capability_filter(FileCap.read("/docs"), **kw),
            100,
            [0] * 200 + [300] * 100,
        ),
        (lambda **kw: pf.capability_filter(FileCap.read, **kw), 150, [0] * 150 + [300] * 150),
        (lambda **kw: pf.capability_filter(FileCap.read, **kw), 256, [256] * 256 + [256] * 44),
    ],
)
def test_passed_items_are_pushed_into_the_metrics_every_256(
    operator: Callable[..., Any], batch: int, expected: list[int]
) -> None:
    alice = reader()
    metrics = pfrx.StreamMetrics(TestScheduler())
    items = [ev("/docs/a", alice) for _ in range(300)]
    seen: list[int] = []
    source = reactivex.from_iterable(items) if batch == 0 else pfrx.sources.batches(items, batch)
    source.pipe(operator(metrics=metrics)).subscribe(lambda _: seen.append(metrics.received))
    assert seen == expected
    assert metrics.snapshot().received == 300
