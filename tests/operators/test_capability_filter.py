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
