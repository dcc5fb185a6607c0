"""The records operators produce: Dropped, Reject, Ok, Err, Window, SendResult, overflow."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

import pfrx
from pfrx import (
    BackpressureOverflow,
    Context,
    Dropped,
    Envelope,
    Err,
    Ok,
    Reject,
    SendResult,
    Window,
)

CTX = Context("alice", "s1")
ENV = Envelope("payload", CTX, 3.0)


@pytest.mark.parametrize(
    "value",
    [
        Dropped(ENV, "overflow", "backpressure", 1.0),
        Reject("bad"),
        Ok("state", ("effect",)),
        Err("bad", "state"),
        Window(None, 0.0, 1.0, (ENV,)),
        SendResult(True),
        CTX,
        ENV,
        pfrx.Capability("f", "a"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_every_model_value_is_a_frozen_slotted_hashable_attrs_class(value: Any) -> None:
    cls = type(value)
    assert attrs.has(cls)
    assert "__slots__" in cls.__dict__
    assert not hasattr(value, "__dict__")
    first = attrs.fields(cls)[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(value, first, None)
    assert hash(value) == hash(attrs.evolve(value))
    assert value == attrs.evolve(value)


def test_dropped() -> None:
    record = pfrx.Dropped(ENV, "insufficient_capabilities", "capability_filter", 7.0)
    assert record.item is ENV
    assert record.reason == "insufficient_capabilities"
    assert record.operator == "capability_filter"
    assert record.timestamp == 7.0
    assert Dropped(item=ENV, reason="late", operator="w", timestamp=0.0).reason == "late"


@pytest.mark.parametrize("bad", ["", None, 3, b"overflow"])
def test_a_reason_is_a_non_empty_string(bad: object) -> None:
    with pytest.raises(TypeError, match="reason must be a non-empty str"):
        Dropped(ENV, bad, "op", 0.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reason must be a non-empty str"):
        Reject(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reason must be a non-empty str"):
        Err(bad, None)  # type: ignore[arg-type]


def test_reject() -> None:
    assert pfrx.Reject("system_directory_protected").reason == "system_directory_protected"


def test_ok_defaults_and_effects_become_a_tuple() -> None:
    ok: Ok[int] = pfrx.Ok(1)
    assert ok.state == 1
    assert ok.effects == ()
    effects = ["a", "b"]
    with_effects = Ok(2, effects)
    effects.append("c")
    assert with_effects.effects == ("a", "b")
    assert Ok(3, effects=(e for e in "xy")).effects == ("x", "y")
    assert Ok({"mutable": "state"}).state == {"mutable": "state"}  # any state is allowed


def test_err() -> None:
    err: Err[dict[str, int]] = pfrx.Err("quota_exceeded", {"count": 3})
    assert err.reason == "quota_exceeded"
    assert err.state == {"count": 3}


def test_window() -> None:
    other = Envelope("second", CTX, 4.0)
    window = pfrx.Window("s1", 3.0, 8.0, [ENV, other])
    assert window.items == (ENV, other)
    assert (window.key, window.start, window.end) == ("s1", 3.0, 8.0)
    assert len(window) == 2
    assert window.events == ("payload", "second")


def test_send_result() -> None:
    assert SendResult(True).reason is None
    refused = SendResult(False, "overflow")
    assert not refused
    assert refused.reason == "overflow"
    assert SendResult(True)


def test_backpressure_overflow() -> None:
    error = BackpressureOverflow(10, item=ENV)
    assert isinstance(error, Exception)
    assert error.buffer_size == 10
    assert error.item is ENV
    assert "10" in str(error)
    assert pfrx.BackpressureOverflow is BackpressureOverflow


def test_envelope_and_dropped_keep_their_public_shape() -> None:
    assert [f.name for f in attrs.fields(Envelope)] == ["event", "context", "timestamp"]
    # The contract's four, then the optional bounds of the windows a late item missed.
    assert [f.name for f in attrs.fields(Dropped)] == [
        "item",
        "reason",
        "operator",
        "timestamp",
        "windows",
    ]
    env = Envelope(event="e", context=CTX, timestamp=1.0)  # keywords, as attrs made them
    assert env == Envelope("e", CTX, 1.0) and hash(env) == hash(Envelope("e", CTX, 1.0))
    assert attrs.evolve(env, event="f") == Envelope("f", CTX, 1.0)
    assert repr(env).startswith("Envelope(event='e', context=Context(")

    class Loud(str):
        pass

    record = Dropped(env, Loud("late"), "w", 2.0)
    assert type(record.reason) is str and record.reason == "late"
    assert record == Dropped(item=env, reason="late", operator="w", timestamp=2.0)


def test_dropped_windows_default_empty_and_not_part_of_equality() -> None:
    plain = Dropped(ENV, "late", "window_time", 3.0)
    assert plain.windows == () and Dropped(ENV, "late", "window_time", 3.0, ()) == plain
    missed = Dropped(ENV, "late", "window_time", 3.0, [(0.0, 2.0), [1.0, 3.0]])
    assert missed.windows == ((0.0, 2.0), (1.0, 3.0))  # pairs, as tuples
    assert missed == Dropped(ENV, "late", "window_time", 3.0, windows=((0.0, 2.0), (1.0, 3.0)))
    # The contract's four fields make the record: outside code comparing a late drop with
    # Dropped(item, "late", operator, timestamp) still finds it equal, with the same hash.
    assert missed == plain and hash(missed) == hash(plain)
    assert len({missed, plain}) == 1
    assert repr(missed).endswith("windows=((0.0, 2.0), (1.0, 3.0)))")
    assert attrs.evolve(plain, windows=((0.0, 2.0),)).windows == ((0.0, 2.0),)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        missed.windows = ()  # type: ignore[misc]
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        plain.nothing  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(ValueError, match=r"\(start, end\) pairs"):
        Dropped(ENV, "late", "w", 0.0, [(1.0, 2.0, 3.0)])


def test_dropped_pickles_with_and_without_windows() -> None:
    import pickle

    for record in (
        Dropped("x", "late", "w", 1.0),
        Dropped("x", "late", "w", 1.0, ((0.0, 1.0),)),
    ):
        assert pickle.loads(pickle.dumps(record)) == record


def test_drop_records_built_as_drafts_are_genuine_frozen_dropped() -> None:
    from reactivex import operators as ops

    from pfrx import operators as pf
    from pfrx.sources import batches

    fam = pfrx.CapabilityFamily("file", actions=("read",))
    kept: list[Dropped] = []
    envs = [pfrx.Envelope(f"/x/{i}", pfrx.Context("u"), float(i)) for i in range(3)]
    op = pf.capability_filter(fam.read, on_drop=kept.append)
    batches(envs, 2).pipe(op, ops.to_list()).run()
    assert [type(d) for d in kept] == [Dropped] * 3
    first = kept[0]
    assert first == Dropped(
        envs[0], "insufficient_capabilities", "capability_filter", first.timestamp
    )
    assert hash(first) == hash(attrs.evolve(first))
    assert kept[0].windows == ()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        kept[0].reason = "x"  # type: ignore[misc]
