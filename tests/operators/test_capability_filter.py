from __future__ import annotations

import pytest
import reactivex
from loguru import logger
from reactivex import operators as ops

import pfrx
from pfrx import operators as pf
from pfrx.testing import marbles

FileCap = pfrx.CapabilityFamily(
    "file",
    actions=("read", "write", "delete", "admin"),
    implies={"admin": ("read", "write", "delete")},
)
PATHS = {"a": "/docs/a.txt", "b": "/etc/passwd", "c": "/docs/sub/c.txt", "d": "/docs2/d.txt"}
READER = pfrx.Context("alice", "s1", [FileCap.read("/docs")])


def read_path(path: str) -> pfrx.Capability:
    return FileCap.read(path)


def test_passes_only_envelopes_whose_context_grants_the_computed_capability() -> None:
    with marbles(READER) as m:
        result = m.run(m.hot("-a-b-c-d-|", PATHS).pipe(pf.capability_filter(read_path)))
        m.expect(result, "-a---c---|", PATHS)
        assert [d.item.event for d in result.dropped] == ["/etc/passwd", "/docs2/d.txt"]
        assert {d.reason for d in result.dropped} == {"insufficient_capabilities"}
        assert {d.operator for d in result.dropped} == {"capability_filter"}
        assert [d.timestamp for d in result.dropped] == [203.0, 207.0]


def test_static_capability_and_implication_through_family() -> None:
    admin = pfrx.Context("root", capabilities=[FileCap.admin("/")])
    nobody = pfrx.Context("nobody")
    with marbles() as m:
        src = reactivex.merge(m.hot("-a---|", context=admin), m.hot("---b-|", context=nobody))
        result = m.run(src.pipe(pf.capability_filter(FileCap.delete("/tmp/x"))))
        m.expect(result, "-a---|")
        assert [d.item.context.user_id for d in result.dropped] == ["nobody"]


def test_every_required_capability_must_be_held() -> None:
    both = pfrx.Context("w", capabilities=[FileCap.read("/docs"), FileCap.write("/docs")])
    with marbles() as m:
        src = reactivex.merge(m.hot("-a---|", context=both), m.hot("---b-|", context=READER))
        needs = pf.capability_filter(lambda _: [FileCap.read("/docs/x"), FileCap.write("/docs/x")])
        result = m.run(src.pipe(needs))
        m.expect(result, "-a---|")
        assert result.drop_reasons() == ["insufficient_capabilities"]


def test_failing_requirement_function_denies_and_counts_an_error() -> None:
    def broken(event: object) -> pfrx.Capability:
        raise KeyError("no path")

    with marbles(READER) as m:
        result = m.run(m.hot("-a-b-|").pipe(pf.capability_filter(broken)))
        m.expect(result, "-----|")
        assert result.drop_reasons() == ["insufficient_capabilities"] * 2
        assert m.metrics.snapshot().errors == 2


def test_requirement_that_is_not_a_capability_denies() -> None:
    with marbles(READER) as m:
        result = m.run(m.hot("-a-|").pipe(pf.capability_filter(lambda e: ["file.read"])))
        m.expect(result, "---|")
        assert result.drop_reasons() == ["insufficient_capabilities"]


def test_non_envelope_items_are_dropped_with_a_reason() -> None:
    lost: list[pfrx.Dropped] = []
    out = reactivex.of(1, 2).pipe(
        pf.capability_filter(FileCap.read("/"), on_drop=lost.append), ops.to_list()
    )
    assert out.run() == []
    assert [(d.item, d.reason) for d in lost] == [(1, "not_an_envelope"), (2, "not_an_envelope")]


def test_errors_and_completion_pass_through() -> None:
    boom = RuntimeError("upstream")
    with marbles(READER) as m:
        result = m.run(m.hot("-a-#", PATHS, error=boom).pipe(pf.capability_filter(read_path)))
        m.expect(result, "-a-#", PATHS, error=boom)


def test_explicit_on_drop_and_metrics_win_over_the_scope() -> None:
    lost: list[pfrx.Dropped] = []
    with marbles(READER) as m:
        mine = pfrx.StreamMetrics(m.scheduler)
        op = pf.capability_filter(read_path, on_drop=lost.append, metrics=mine)
        result = m.run(m.hot("-a-b-|", PATHS).pipe(op))
        assert result.dropped == []
        assert [d.item.event for d in lost] == ["/etc/passwd"]
        snap = mine.snapshot()
        assert (snap.received, snap.emitted, snap.dropped) == (2, 1, 1)
        assert snap.drops_by_reason == {"insufficient_capabilities": 1}


def test_denials_are_logged_with_who_and_what_but_never_the_payload() -> None:
    secret = {"path": "/etc/shadow", "body": "TOP-SECRET-PAYLOAD"}
    lines: list[str] = []
    logger.enable("pfrx")
    handler = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        envelope = pfrx.Envelope(secret, READER, 0.0)
        reactivex.of(envelope).pipe(
            pf.capability_filter(lambda e: FileCap.read(e["path"]), on_drop=lambda d: None),
            ops.to_list(),
        ).run()
    finally:
        logger.remove(handler)
        logger.disable("pfrx")
    assert len(lines) == 1
    assert "alice" in lines[0] and "file.read" in lines[0] and "/etc/shadow" in lines[0]
    assert "TOP-SECRET-PAYLOAD" not in lines[0]


def test_construction_rejects_a_requirement_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match="Capability or a callable"):
        pf.capability_filter("file.read")  # type: ignore[arg-type]


def test_hostile_paths_never_pass() -> None:
    hostile = ["/docs/../etc/passwd", "docs/a", "", "/docs\x00/a", "/docs2", "//etc", "/./etc"]
    lost: list[pfrx.Dropped] = []
    source = pfrx.envelopes(hostile, READER)
    out = source.pipe(pf.capability_filter(read_path, on_drop=lost.append), ops.to_list()).run()
    assert out == []
    assert len(lost) == len(hostile)


@pytest.mark.parametrize("requirement", [FileCap.read("/docs"), read_path])
def test_a_downstream_failure_is_not_turned_into_a_denial(requirement: object) -> None:
    lost: list[pfrx.Dropped] = []

    def broken_consumer(_: object) -> None:
        raise RuntimeError("consumer bug")

    source = pfrx.envelopes(["/docs/a.txt"], READER)
    with pytest.raises(RuntimeError, match="consumer bug"):
        source.pipe(pf.capability_filter(requirement, on_drop=lost.append)).subscribe(
            broken_consumer
        )
    assert lost == []


# -- hardening: every bad requirement or item is one Dropped, and the stream goes on ---------
def test_an_empty_requirement_fails_closed() -> None:
    lost: list[pfrx.Dropped] = []
    metrics = pfrx.StreamMetrics()
    out = pfrx.envelopes(["/docs/a", "/etc/x"], READER).pipe(
        pf.capability_filter(lambda _: [], on_drop=lost.append, metrics=metrics),
        ops.to_list(),
    )
    assert out.run() == []
    assert [d.reason for d in lost] == ["empty_requirement"] * 2
    assert metrics.snapshot().drops_by_reason == {"empty_requirement": 2}


@pytest.mark.parametrize(
    "garbage", ["/docs/a", b"/docs/a", 5, None, [5], [FileCap.read("/docs/a"), "x"], object()]
)
def test_a_requirement_returning_garbage_is_one_drop_with_a_reason(garbage: object) -> None:
    calls: list[object] = []

    def requirement(event: object) -> object:
        calls.append(event)
        return garbage

    lost: list[pfrx.Dropped] = []
    metrics = pfrx.StreamMetrics()
    op = pf.capability_filter(requirement, on_drop=lost.append, metrics=metrics)  # type: ignore[arg-type]
    out = pfrx.envelopes(["/docs/a", "/docs/b"], READER).pipe(op, ops.to_list()).run()
    assert out == []
    assert [d.reason for d in lost] == ["insufficient_capabilities"] * 2
    assert calls == ["/docs/a", "/docs/b"]  # once per item
    assert metrics.snapshot().errors == 2


@pytest.mark.parametrize("form", ["lambda", "capability", "list", "action", "resource"])
def test_the_requirement_is_computed_exactly_once_per_item(form: str) -> None:
    calls: list[str] = []

    def path_of(event: str) -> str:
        calls.append(event)
        return event

    operators = {
        "lambda": lambda: pf.capability_filter(
            lambda e: FileCap.read(path_of(e)), on_drop=lost.append
        ),
        "capability": lambda: pf.capability_filter(
            lambda e: FileCap.read(path_of(e)), on_drop=lost.append
        ),
        "list": lambda: pf.capability_filter(
            lambda e: [FileCap.read(path_of(e)), FileCap.read("/docs")], on_drop=lost.append
        ),
        "action": lambda: pf.capability_filter(FileCap.read, resource=path_of, on_drop=lost.append),
        "resource": lambda: pf.capability_filter(
            FileCap.read, resource=lambda e: path_of(e), on_drop=lost.append
        ),
    }
    lost: list[pfrx.Dropped] = []
    events = ["/docs/a", "/etc/passwd", "/docs/b", "/docs2/x"]
    logger.enable("pfrx")  # the denial's log line must not compute the requirement again
    handler = logger.add(lambda _: None, level="WARNING")
    try:
        out = pfrx.envelopes(events, READER).pipe(operators[form](), ops.to_list()).run()
    finally:
        logger.remove(handler)
        logger.disable("pfrx")
    assert [e.event for e in out] == ["/docs/a", "/docs/b"]
    assert [d.item.event for d in lost] == ["/etc/passwd", "/docs2/x"]
    assert calls == events


def test_an_envelope_whose_context_is_not_a_context_is_one_drop() -> None:
    lost: list[pfrx.Dropped] = []
    forged = pfrx.Envelope("/docs/a", "root", 0.0)  # type: ignore[arg-type]
    mimic = pfrx.Envelope("/docs/a", object(), 0.0)  # type: ignore[arg-type]
    good = pfrx.Envelope("/docs/b", READER, 0.0)
    for requirement in (read_path, FileCap.read("/docs"), FileCap.read):
        lost.clear()
        out = reactivex.of(forged, mimic, good).pipe(
            pf.capability_filter(requirement, on_drop=lost.append), ops.to_list()
        )
        assert out.run() == [good]
        assert [(d.item, d.reason) for d in lost] == [
            (forged, "invalid_context"),
            (mimic, "invalid_context"),
        ]


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() of this exception fails")


def test_an_exception_whose_str_raises_is_one_drop_even_when_logging() -> None:
    def requirement(event: str) -> pfrx.Capability:
        if event == "/bad":
            raise _Unprintable()
        return FileCap.read(event)

    lost: list[pfrx.Dropped] = []
    lines: list[str] = []
    logger.enable("pfrx")
    handler = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        out = pfrx.envelopes(["/bad", "/docs/a"], READER).pipe(
            pf.capability_filter(requirement, on_drop=lost.append), ops.to_list()
        )
        assert [e.event for e in out.run()] == ["/docs/a"]
    finally:
        logger.remove(handler)
        logger.disable("pfrx")
    assert [d.reason for d in lost] == ["insufficient_capabilities"]
    assert any("_Unprintable" in line for line in lines)


# -- the fast forms --------------------------------------------------------------------------
HOSTILE = [
    "/docs/a.txt",
    "/docs/../etc/passwd",
    "docs/a",
    "",
    "/docs\x00/a",
    "/docs2",
    "//docs/x",
    "/./docs/y",
    "/docs/",
    "/docs/.hidden",
    "*",
]


def test_the_resource_form_decides_as_the_lambda_form() -> None:
    events = [{"path": p} for p in HOSTILE]

    def outcome(operator: object) -> tuple[list[object], list[object]]:
        lost: list[pfrx.Dropped] = []
        out = pfrx.envelopes(events, READER).pipe(operator(lost.append), ops.to_list()).run()  # type: ignore[operator]
        return [e.event["path"] for e in out], [d.item.event["path"] for d in lost]

    by_lambda = outcome(
        lambda sink: pf.capability_filter(lambda e: FileCap.read(e["path"]), on_drop=sink)
    )
    by_resource = outcome(
        lambda sink: pf.capability_filter(FileCap.read, resource=lambda e: e["path"], on_drop=sink)
    )
    assert by_lambda == by_resource
    assert by_resource[0] == ["/docs/a.txt", "//docs/x", "/./docs/y", "/docs/", "/docs/.hidden"]


def test_a_family_action_alone_reads_the_event_as_the_resource() -> None:
    lost: list[pfrx.Dropped] = []
    out = pfrx.envelopes(HOSTILE, READER).pipe(
        pf.capability_filter(FileCap.read, on_drop=lost.append), ops.to_list()
    )
    assert [e.event for e in out.run()] == [
        "/docs/a.txt",
        "//docs/x",
        "/./docs/y",
        "/docs/",
        "/docs/.hidden",
    ]
    assert len(lost) == 6


def test_a_resource_that_is_not_a_str_is_one_drop() -> None:
    lost: list[pfrx.Dropped] = []
    metrics = pfrx.StreamMetrics()
    op = pf.capability_filter(
        FileCap.read, resource=lambda e: e, on_drop=lost.append, metrics=metrics
    )
    out = pfrx.envelopes([b"/docs/a", None, 3, "/docs/a"], READER).pipe(op, ops.to_list()).run()
    assert [e.event for e in out] == ["/docs/a"]
    assert [d.reason for d in lost] == ["insufficient_capabilities"] * 3
    assert metrics.snapshot().errors == 3


def test_resource_needs_a_family_action() -> None:
    with pytest.raises(TypeError, match="family action"):
        pf.capability_filter(FileCap.read("/docs"), resource=lambda e: e)
    with pytest.raises(TypeError, match="family action"):
        pf.capability_filter(lambda e: FileCap.read(e), resource=lambda e: e)
    with pytest.raises(TypeError, match="resource must be a callable"):
        pf.capability_filter(FileCap.read, resource="/docs")  # type: ignore[arg-type]

    # a look-alike function is not a family action
    def fake(resource: str = "*") -> pfrx.Capability:
        return FileCap.admin("/")

    fake.family = FileCap  # type: ignore[attr-defined]
    fake.action = "read"  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="family action"):
        pf.capability_filter(fake, resource=lambda e: e)


# -- batches ---------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 2, 3, 64])
def test_batches_give_the_same_results_drops_and_metrics(size: int) -> None:
    events = HOSTILE * 5
    contexts = [
        READER,
        pfrx.Context("nobody"),
        pfrx.Context("root", capabilities=[FileCap.admin("/")]),
    ]

    def run(batch: int) -> tuple[list[object], list[tuple[object, str]], tuple[int, int, int]]:
        lost: list[pfrx.Dropped] = []
        metrics = pfrx.StreamMetrics()
        source = reactivex.concat(*(pfrx.envelopes(events, c, batch=batch) for c in contexts))
        if batch > 1:  # one batched source straight into the fused stages
            items = [pfrx.Envelope(e, c, 0.0) for c in contexts for e in events]
            source = pfrx.sources.batches(items, batch)
        out = source.pipe(
            pf.capability_filter(FileCap.read, metrics=metrics, on_drop=lost.append),
            pf.transform(lambda e, ctx: (ctx.user_id, e)),
            pf.window_count(4),
            ops.map(lambda w: w.events),
            ops.to_list(),
        ).run()
        snap = metrics.snapshot()
        return (
            out,
            [(d.item.event, d.reason) for d in lost],
            (snap.received, snap.emitted, snap.dropped),
        )

    assert run(size) == run(1)


def test_a_batched_source_still_emits_one_envelope_per_on_next_to_others() -> None:
    seen: list[object] = []
    pfrx.envelopes(["a", "b", "c"], READER, batch=2).subscribe(seen.append)
    assert [e.event for e in seen] == ["a", "b", "c"]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="batch must be at least 1"):
        pfrx.envelopes([], READER, batch=0)
    with pytest.raises(TypeError, match="batch must be an int"):
        pfrx.envelopes([], READER, batch=2.0)  # type: ignore[arg-type]


def test_batched_stages_run_once_per_batch_on_a_test_scheduler() -> None:
    from reactivex.testing import TestScheduler

    from pfrx.operators._shared import OnBatch, OnNext, Prepared, fuse

    batches_seen: list[list[str]] = []

    def recording(_scheduler: object) -> Prepared:
        def wire(forward: OnNext) -> OnNext:
            return forward

        def wire_batch(forward: OnBatch) -> OnBatch:
            def on_batch(items: list[object]) -> None:
                batches_seen.append([e.event for e in items])  # type: ignore[attr-defined]
                forward(items)

            return on_batch

        return Prepared(wire, wire_batch=wire_batch)

    scheduler = TestScheduler()
    lost: list[pfrx.Dropped] = []
    events = ["/docs/a", "/etc/x", "/docs/b", "/docs/c", "/etc/y"]
    observer = scheduler.create_observer()
    pfrx.envelopes(events, READER, scheduler, batch=2).pipe(
        pf.capability_filter(FileCap.read, on_drop=lost.append), fuse(recording)
    ).subscribe(observer)
    scheduler.start()
    values = [m.value.value.event for m in observer.messages if m.value.kind == "N"]
    assert values == ["/docs/a", "/docs/b", "/docs/c"]
    assert [d.item.event for d in lost] == ["/etc/x", "/etc/y"]
    # the filter passed on one list per batch, never an empty one
    assert batches_seen == [["/docs/a"], ["/docs/b", "/docs/c"]]
    assert {m.time for m in observer.messages} == {0}  # scheduled once, at the start


def test_hostile_unique_paths_do_not_pin_memory() -> None:
    import gc
    import tracemalloc

    from pfrx._model import capability as capability_module
    from pfrx._model import context as context_module
    from pfrx._model import resources

    family = pfrx.CapabilityFamily("file", actions=("read",))
    ctx = pfrx.Context("alice", capabilities=[family.read("/docs")])

    def hostile() -> None:
        paths = (f"/docs/{i}/" + "p" * 16_000 for i in range(3000))  # 48 MB in all
        lost: list[pfrx.Dropped] = []
        pfrx.envelopes(paths, ctx).pipe(
            pf.capability_filter(lambda e: family.read(e), on_drop=lost.append),
            ops.count(),
        ).run()

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        hostile()
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    bound = (
        capability_module.MADE_CACHE_BYTES
        + resources.NORMALIZE_CACHE_BYTES
        + context_module.COVERAGE_CACHE_BYTES
    )
    assert retained < bound + (1 << 20)


@pytest.mark.parametrize("count", [1, 63, 64, 65, 128, 200, 255, 256, 257, 600])
@pytest.mark.parametrize("batch", [1, 7])
def test_metrics_are_exact_across_the_local_flushes(count: int, batch: int) -> None:
    # Counts are kept locally and pushed every 256 passed items: the last item of a flush passing
    # or being denied must still be counted once.
    events = [("/docs/a" if i % 3 else "/etc/x") for i in range(count)]
    metrics = pfrx.StreamMetrics()
    out = (
        pfrx.envelopes(events, READER, batch=batch)
        .pipe(pf.capability_filter(FileCap.read, metrics=metrics), ops.to_list())
        .run()
    )
    denied = events.count("/etc/x")
    snap = metrics.snapshot()
    assert (snap.received, snap.emitted, snap.dropped) == (count, len(out), denied)
    assert len(out) == count - denied
    counts = next(s for s in snap.operators if s.name == "capability_filter")
    assert (counts.received, counts.emitted, counts.dropped) == (count, len(out), denied)


def test_every_argument_is_checked_when_built() -> None:
    with pytest.raises(TypeError, match="on_drop"):
        pf.capability_filter(FileCap.read, on_drop=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="metrics"):
        pf.capability_filter(FileCap.read, metrics=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name"):
        pf.capability_filter(FileCap.read, name=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("form", ["computed", "resource", "resource batches", "metrics only"])
def test_a_subscription_follows_logger_enable_between_denials(form: str) -> None:
    # Whether the denial log is on is remembered per loguru settings: an enable or disable
    # in the middle of a subscription is noticed at the next denial (next batch).
    from collections.abc import Iterator

    from pfrx.sources import batches

    def denials() -> Iterator[pfrx.Envelope]:
        for enabled in (False, False, True, True, False, False):
            if enabled:
                logger.enable("pfrx")
            else:
                logger.disable("pfrx")
            yield pfrx.Envelope("/etc/passwd", READER, 0.0)

    lost: list[pfrx.Dropped] = []
    if form == "metrics only":
        check = pf.capability_filter(read_path, metrics=pfrx.StreamMetrics())
    elif form == "computed":
        check = pf.capability_filter(read_path, on_drop=lost.append)
    else:
        check = pf.capability_filter(FileCap.read, on_drop=lost.append)
    source = (
        batches(denials(), 1) if form == "resource batches" else reactivex.from_iterable(denials())
    )
    lines: list[str] = []
    handler = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        out = source.pipe(check, ops.to_list()).run()
    finally:
        logger.remove(handler)
        logger.disable("pfrx")
    assert out == []
    assert len(lines) == 2
    assert all("/etc/passwd" in line for line in lines)
