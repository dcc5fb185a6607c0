"""The per-operator metrics' old "stage" names still work for one release, and say so."""

from __future__ import annotations

import warnings

import pytest
from reactivex.testing import TestScheduler

import pfrx
from pfrx import metrics as pfrx_metrics
from pfrx import operators as pf


def test_stage_snapshot_is_the_operator_snapshot_under_its_old_name() -> None:
    assert pfrx.StageSnapshot is pfrx.OperatorSnapshot
    assert pfrx_metrics.StageSnapshot is pfrx_metrics.OperatorSnapshot
    assert pfrx_metrics.StageCounters is pfrx_metrics.OperatorCounters
    assert pfrx_metrics.MAX_STAGES == pfrx_metrics.MAX_OPERATORS == 1_000


def test_stream_metrics_stage_warns_and_returns_operator_counters() -> None:
    m = pfrx.StreamMetrics(TestScheduler())
    with pytest.warns(DeprecationWarning, match=r"StreamMetrics\.operator\(\)"):
        counters = m.stage("old")
    counters.received += 2
    counters.dropped += 1
    assert m.snapshot().operators == (pfrx.OperatorSnapshot("old", 2, 0, 1, 0),)


def test_snapshot_stages_warns_and_is_the_operators_tuple() -> None:
    m = pfrx.StreamMetrics(TestScheduler())
    pfrx.envelopes(["a", "b"], pfrx.Context("u")).pipe(
        pf.transform(lambda e, c: e, metrics=m)
    ).run()
    snap = m.snapshot()
    assert snap.operators == (pfrx.OperatorSnapshot("transform", 2, 2, 0, 0),)
    with pytest.warns(DeprecationWarning, match=r"MetricsSnapshot\.operators"):
        old = snap.stages
    assert old is snap.operators


def test_the_new_names_do_not_warn() -> None:
    m = pfrx.StreamMetrics(TestScheduler())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.operator("x")
        snap = m.snapshot()
        assert [op.name for op in snap.operators] == ["x"]
        assert snap.to_dict()["operators"] == [
            {"name": "x", "received": 0, "emitted": 0, "dropped": 0, "errors": 0}
        ]
