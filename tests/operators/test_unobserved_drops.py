"""Drops nobody observes speak up: one UnobservedDropWarning per subscription, at the first."""

from __future__ import annotations

import warnings

import pytest
import reactivex
from reactivex import operators as ops

import pfrx
from pfrx import operators as pf
from pfrx.operators import reporting_into

FileCap = pfrx.CapabilityFamily("file", actions=("read",))
READER = pfrx.Context("alice", capabilities=[FileCap.read("/docs")])
EVENTS = ["/etc/a", "/docs/a", "/etc/b"]


def test_the_warning_is_a_public_user_warning() -> None:
    assert issubclass(pfrx.UnobservedDropWarning, UserWarning)


def test_unobserved_drops_warn_once_per_subscription_naming_operator_reason_and_remedy() -> None:
    pipeline = pfrx.envelopes(EVENTS, READER).pipe(
        pf.capability_filter(FileCap.read), ops.to_list()
    )
    with pytest.warns(pfrx.UnobservedDropWarning) as caught:
        assert [e.event for e in pipeline.run()] == ["/docs/a"]
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "capability_filter" in text
    assert "insufficient_capabilities" in text
    assert "on_drop=" in text and "metrics=" in text
    with pytest.warns(pfrx.UnobservedDropWarning) as again:
        pipeline.run()  # a new subscription warns again
    assert len(again) == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: pf.transform(lambda e, c: e.no_such_method()),
        lambda: pf.transform(lambda e, c: pfrx.Reject("no")),
    ],
    ids=["raises", "reject"],
)
def test_other_operators_warn_too(make: object) -> None:
    with pytest.warns(pfrx.UnobservedDropWarning, match="transform"):
        pfrx.envelopes(["a"], READER).pipe(make(), ops.to_list()).run()  # type: ignore[operator]


def test_plain_values_without_envelopes_warn() -> None:
    with pytest.warns(pfrx.UnobservedDropWarning, match="not_an_envelope"):
        assert (
            reactivex.of(1, 2).pipe(pf.capability_filter(FileCap.read), ops.to_list()).run() == []
        )


def test_observed_drops_do_not_warn() -> None:
    lost: list[pfrx.Dropped] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", pfrx.UnobservedDropWarning)
        pfrx.envelopes(EVENTS, READER).pipe(
            pf.capability_filter(FileCap.read, on_drop=lost.append), ops.to_list()
        ).run()
        metrics = pfrx.StreamMetrics()
        pfrx.envelopes(EVENTS, READER).pipe(
            pf.capability_filter(FileCap.read, metrics=metrics), ops.to_list()
        ).run()
        with reporting_into():  # a scope, even an empty one, is an observer
            pfrx.envelopes(EVENTS, READER).pipe(
                pf.capability_filter(FileCap.read), ops.to_list()
            ).run()
        with pfrx.Stream(pf.capability_filter(FileCap.read)) as stream:
            stream.send("/etc/x", READER)
    assert len(lost) == 2
    assert metrics.snapshot().dropped == 2


def test_no_dropped_record_is_built_when_nobody_receives_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pfrx.operators import _shared

    def refuse(*_args: object) -> pfrx.Dropped:
        raise AssertionError("a Dropped was built for nobody")

    monkeypatch.setattr(_shared, "make_dropped", refuse)
    metrics = pfrx.StreamMetrics()
    pfrx.envelopes(EVENTS, READER).pipe(
        pf.capability_filter(FileCap.read, metrics=metrics), ops.to_list()
    ).run()
    assert metrics.snapshot().drops_by_reason == {"insufficient_capabilities": 2}
