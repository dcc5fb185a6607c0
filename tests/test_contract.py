"""An outside acceptance test of /work/shared/CONTRACT.md, clause by clause.

Written as an outsider would: only the public names the contract spells (``import pfrx``,
``from pfrx import operators as pf``) and plain RxPY (``TestScheduler``, subjects,
``subscribe``), not the project's own testing kit.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs
import pytest
import reactivex
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.scheduler import EventLoopScheduler
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler

import pfrx
from pfrx import operators as pf

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error

FileCap = pfrx.CapabilityFamily(
    "file",
    actions=("read", "write", "delete", "admin"),
    implies={"admin": ("read", "write", "delete")},
)
ALICE = pfrx.Context("alice", "s1", [FileCap.read("/docs")])


def env(event: Any, context: pfrx.Context = ALICE, timestamp: float = 0.0) -> pfrx.Envelope:
    return pfrx.Envelope(event, context, timestamp)


class Collector:
    """A plain observer that remembers what it saw and on which thread."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.error: Exception | None = None
        self.completed = False
        self.threads: set[int] = set()
        self.done = threading.Event()

    def on_next(self, value: Any) -> None:
        self.threads.add(threading.get_ident())
        self.items.append(value)

    def on_error(self, error: Exception) -> None:
        self.error = error
        self.done.set()

    def on_completed(self) -> None:
        self.completed = True
        self.done.set()

    def subscribe_to(
        self, source: reactivex.Observable[Any], scheduler: Any = None
    ) -> reactivex.abc.DisposableBase:
        return source.subscribe(self.on_next, self.on_error, self.on_completed, scheduler=scheduler)

    @property
    def events(self) -> list[Any]:
        return [item.event for item in self.items]


def run_list(source: reactivex.Observable[Any]) -> list[Any]:
    result: list[Any] = source.pipe(ops.to_list()).run()
    return result


# == Package ==================================================================================
def test_package_imports_and_gives_the_operators() -> None:
    from pfrx import operators

    for name in (
        "capability_filter",
        "transform",
        "process",
        "backpressure",
        "window_count",
        "window_time",
        "window_session",
        "metrics_tap",
    ):
        assert callable(getattr(operators, name))


def test_package_metadata_declares_python_and_runtime_dependencies() -> None:
    meta = importlib.metadata.metadata("pfrx")
    assert ">=3.11" in (meta["Requires-Python"] or "").replace(" ", "")
    requires = [r.replace(" ", "") for r in importlib.metadata.requires("pfrx") or []]
    runtime = [r for r in requires if "extra==" not in r]
    assert any(r.startswith("reactivex") and ">=6.1" in r and "<7" in r for r in runtime)
    assert any(r.startswith("attrs") for r in runtime)
    assert any(r.startswith("loguru") for r in runtime)


def test_each_operator_returns_a_callable_on_observables() -> None:
    built = [
        pf.capability_filter(FileCap.read("/docs")),
        pf.transform(lambda e, c: e),
        pf.process(_Counter()),
        pf.backpressure(),
        pf.window_count(2),
        pf.window_time(1.0),
        pf.window_session(1.0),
        pf.metrics_tap(pfrx.StreamMetrics()),
    ]
    for operator in built:
        assert callable(operator)
        assert isinstance(operator(reactivex.empty()), reactivex.Observable)


_LOG_PROBE = """
import reactivex
from loguru import logger
lines = []
logger.add(lines.append, level="TRACE", format="{name}|{message}")
import pfrx
from pfrx import operators as pf
cap = pfrx.Capability("file", "write", "/x")
def deny():
    envelope = pfrx.Envelope(1, pfrx.Context("u"), 0.0)
    reactivex.of(envelope).pipe(pf.capability_filter(cap)).subscribe()
    reactivex.of(envelope).pipe(pf.transform(lambda e, c: pfrx.Reject("no"))).subscribe()
deny()
print(sum(1 for line in lines if line.startswith("pfrx")))
logger.enable("pfrx")
deny()
print(sum(1 for line in lines if line.startswith("pfrx")))
"""


def test_pfrx_logging_is_disabled_at_import_and_enable_turns_it_on() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _LOG_PROBE], capture_output=True, text=True, check=True
    )
    before, after = (int(n) for n in done.stdout.split())
    assert before == 0
    assert after > 0


def test_importing_pfrx_adds_no_loguru_handler() -> None:
    code = (
        "from loguru import logger\n"
        "lines = []\n"
        "logger.remove()\n"
        "import pfrx\n"
        "logger.enable('pfrx')\n"
        "logger.info('probe')\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # No handler was added by pfrx: the probe line went nowhere.
    assert done.stdout.strip() == "ok"
    assert "probe" not in done.stderr


# == Model: Capability ========================================================================
def test_capability_fields_and_default_resource() -> None:
    cap = pfrx.Capability("file", "read")
    assert (cap.family, cap.action, cap.resource) == ("file", "read", "*")
    assert pfrx.Capability("file", "read", "/docs").resource == "/docs"
    assert pfrx.Capability(family="file", action="read", resource="/a") == pfrx.Capability(
        "file", "read", "/a"
    )


def test_capability_is_frozen_and_hashable() -> None:
    cap = pfrx.Capability("file", "read", "/docs")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cap.action = "write"  # type: ignore[misc]
    assert hash(cap) == hash(pfrx.Capability("file", "read", "/docs"))
    assert len({cap, pfrx.Capability("file", "read", "/docs")}) == 1
    assert attrs.has(pfrx.Capability)


def test_family_factory_returns_a_plain_equal_capability() -> None:
    made = FileCap.read("/docs")
    assert made == pfrx.Capability("file", "read", "/docs")
    assert (made.family, made.action, made.resource) == ("file", "read", "/docs")
    assert hash(made) == hash(pfrx.Capability("file", "read", "/docs"))


def test_family_is_frozen_and_hashable() -> None:
    assert attrs.has(pfrx.CapabilityFamily)
    hash(FileCap)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        FileCap.name = "other"  # type: ignore[misc]


def test_family_implies_defaults_to_none() -> None:
    family = pfrx.CapabilityFamily("db", actions=("select", "insert"))
    assert family.select("/t").grants(family.select("/t"))
    assert not family.insert("/t").grants(family.select("/t"))


def test_family_unknown_action_raises() -> None:
    with pytest.raises(Exception):  # noqa: B017 - the contract only says "raises"
        FileCap.execute("/docs")


def test_grants_same_action_and_implied_actions() -> None:
    assert FileCap.read("/docs").grants(FileCap.read("/docs"))
    for action in ("read", "write", "delete", "admin"):
        assert FileCap.admin("/docs").grants(pfrx.Capability("file", action, "/docs"))
    assert not FileCap.read("/docs").grants(FileCap.write("/docs"))
    assert not FileCap.write("/docs").grants(FileCap.admin("/docs"))


def test_grants_requires_the_same_family() -> None:
    other = pfrx.CapabilityFamily("db", actions=("read", "admin"), implies={"admin": ("read",)})
    assert not other.read("/docs").grants(FileCap.read("/docs"))
    assert not other.admin("/docs").grants(FileCap.read("/docs"))
    assert not FileCap.admin("/docs").grants(other.read("/docs"))


def test_implication_is_transitive() -> None:
    chain = pfrx.CapabilityFamily(
        "repo",
        actions=("read", "write", "owner"),
        implies={"owner": ("write",), "write": ("read",)},
    )
    assert chain.owner("/r").grants(chain.read("/r"))
    assert chain.write("/r").grants(chain.read("/r"))
    assert not chain.read("/r").grants(chain.write("/r"))


def test_a_bare_capability_implies_only_its_own_action() -> None:
    bare_admin = pfrx.Capability("file", "admin", "/docs")
    assert bare_admin.grants(pfrx.Capability("file", "admin", "/docs"))
    assert not bare_admin.grants(pfrx.Capability("file", "read", "/docs"))
    assert not bare_admin.grants(FileCap.read("/docs"))
    # ... while the family-made one carries the family's implications.
    assert FileCap.admin("/docs").grants(pfrx.Capability("file", "read", "/docs"))


def test_two_families_with_the_same_name_are_independent() -> None:
    strict = pfrx.CapabilityFamily("shared", actions=("read", "admin"))
    loose = pfrx.CapabilityFamily("shared", actions=("read", "admin"), implies={"admin": ("read",)})
    assert loose.admin("/x").grants(loose.read("/x"))
    assert not strict.admin("/x").grants(strict.read("/x"))
    # Building another family afterwards changes neither.
    pfrx.CapabilityFamily("shared", actions=("read", "admin"), implies={"read": ("admin",)})
    assert loose.admin("/x").grants(loose.read("/x"))
    assert not strict.admin("/x").grants(strict.read("/x"))
    assert not strict.read("/x").grants(strict.admin("/x"))


# == Model: resource coverage =================================================================
def _covers(held: str, required: str) -> bool:
    return pfrx.Capability("file", "read", held).grants(pfrx.Capability("file", "read", required))


@pytest.mark.parametrize(
    ("held", "required"),
    [
        ("/docs", "/docs"),
        ("/docs", "/docs/a.txt"),
        ("/docs", "/docs/sub/deep/b.txt"),
        ("/docs", "/docs//a.txt"),
        ("/docs", "/docs/./a.txt"),
        ("/docs", "/other/../docs/a.txt"),
        ("/docs", "/../docs/a.txt"),
        ("/docs", "/../../docs"),
        ("/docs/", "/docs/a.txt"),
        ("//docs", "/docs/a.txt"),
        ("/docs/sub/..", "/docs/a.txt"),
        ("/", "/"),
        ("/", "/etc/passwd"),
        ("/", "/docs2/a.txt"),
        ("*", "/etc/passwd"),
        ("*", "/"),
        ("*", "*"),
    ],
)
def test_resource_is_covered(held: str, required: str) -> None:
    assert _covers(held, required)


@pytest.mark.parametrize(
    ("held", "required"),
    [
        ("/docs", "/docs2/a.txt"),
        ("/docs", "/docs2"),
        ("/docs", "/doc"),
        ("/docs", "/"),
        ("/docs/a.txt", "/docs"),
        ("/docs", "/docs/../etc/passwd"),
        ("/docs", "/docs/../docs2/a"),
        ("/docs/a", "/docs/ab"),
    ],
)
def test_resource_is_not_covered(held: str, required: str) -> None:
    assert not _covers(held, required)


@pytest.mark.parametrize("required", ["docs/a.txt", "a", "./docs", "../docs", "", "/docs/\x00a"])
@pytest.mark.parametrize("held", ["*", "/", "/docs", "docs/a.txt", "", "/docs/\x00a"])
def test_relative_empty_or_nul_resources_are_never_covered(held: str, required: str) -> None:
    assert not _covers(held, required)


# == Model: Context, Envelope, Dropped =========================================================
def test_context_fields_and_defaults() -> None:
    ctx = pfrx.Context("bob")
    assert ctx.user_id == "bob"
    assert ctx.session_id is None
    assert tuple(ctx.capabilities) == ()
    assert len(ctx.metadata or {}) == 0
    full = pfrx.Context(
        user_id="bob", session_id="s9", capabilities=[FileCap.read("/a")], metadata={"k": 1}
    )
    assert full.session_id == "s9"
    assert tuple(full.capabilities) == (FileCap.read("/a"),)
    assert full.metadata["k"] == 1


def test_has_capability_when_any_held_capability_grants() -> None:
    ctx = pfrx.Context("bob", capabilities=(FileCap.read("/a"), FileCap.admin("/b")))
    assert ctx.has_capability(FileCap.read("/a/x"))
    assert ctx.has_capability(FileCap.write("/b/y"))
    assert not ctx.has_capability(FileCap.write("/a/x"))
    assert not pfrx.Context("nobody").has_capability(FileCap.read("/a"))


def test_context_metadata_is_immutable_and_copied() -> None:
    source = {"role": "editor", "tags": ["x"]}
    ctx = pfrx.Context("bob", metadata=source)
    source["role"] = "admin"
    assert ctx.metadata["role"] == "editor"
    with pytest.raises(TypeError):
        ctx.metadata["role"] = "admin"  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        ctx.metadata = {}  # type: ignore[misc]


def test_context_stays_hashable_with_any_mapping_and_list_capabilities() -> None:
    from types import MappingProxyType

    one = pfrx.Context("bob", "s", [FileCap.read("/a")], {"k": 1})
    two = pfrx.Context("bob", "s", [FileCap.read("/a")], MappingProxyType({"k": 1}))
    hash(one)
    hash(two)
    assert hash(pfrx.Context("bob", metadata={"k": [1, 2], "n": {"d": 1}})) is not None
    assert one == pfrx.Context("bob", "s", (FileCap.read("/a"),), {"k": 1})
    assert hash(one) == hash(pfrx.Context("bob", "s", (FileCap.read("/a"),), {"k": 1}))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        one.user_id = "eve"  # type: ignore[misc]


def test_envelope_fields_frozen_hashable() -> None:
    envelope = pfrx.Envelope("e", ALICE, 1.5)
    assert (envelope.event, envelope.context, envelope.timestamp) == ("e", ALICE, 1.5)
    assert pfrx.Envelope(event="e", context=ALICE, timestamp=1.5) == envelope
    hash(envelope)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        envelope.event = "f"  # type: ignore[misc]


def test_envelopes_helper_wraps_plain_events() -> None:
    got = run_list(pfrx.envelopes(["a", "b", "c"], ALICE))
    assert all(isinstance(e, pfrx.Envelope) for e in got)
    assert [e.event for e in got] == ["a", "b", "c"]
    assert all(e.context == ALICE for e in got)
    assert all(isinstance(e.timestamp, float) for e in got)


def test_envelopes_helper_uses_the_scheduler_clock() -> None:
    scheduler = TestScheduler()
    got = Collector()
    scheduler.schedule_absolute(
        50.0, lambda *_: got.subscribe_to(pfrx.envelopes([1, 2], ALICE, scheduler=scheduler))
    )
    scheduler.start()
    assert got.events == [1, 2]
    assert got.completed
    assert all(e.timestamp == pytest.approx(50.0, abs=1.0) for e in got.items)


def test_dropped_fields_frozen_hashable() -> None:
    record = pfrx.Dropped("x", reason="r", operator="op", timestamp=2.0)
    assert (record.item, record.reason, record.operator, record.timestamp) == ("x", "r", "op", 2.0)
    assert record == pfrx.Dropped(item="x", reason="r", operator="op", timestamp=2.0)
    hash(record)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.reason = "s"  # type: ignore[misc]


# == capability_filter ========================================================================
def test_capability_filter_with_a_capability() -> None:
    bob = pfrx.Context("bob", capabilities=[FileCap.write("/docs")])
    items = [env("a"), env("b", bob), env("c")]
    dropped: list[pfrx.Dropped] = []
    got = run_list(
        reactivex.from_iterable(items).pipe(
            pf.capability_filter(FileCap.read("/docs/x"), on_drop=dropped.append)
        )
    )
    assert got == [items[0], items[2]]
    assert len(dropped) == 1
    record = dropped[0]
    assert isinstance(record, pfrx.Dropped)
    assert record.item == items[1]
    assert record.reason == "insufficient_capabilities"
    assert record.operator == "capability_filter"
    assert isinstance(record.timestamp, float)


def test_capability_filter_with_a_callable_returning_one_capability() -> None:
    dropped: list[pfrx.Dropped] = []
    items = [env("/docs/a"), env("/etc/passwd"), env("/docs/../docs/b")]
    got = run_list(
        reactivex.from_iterable(items).pipe(
            pf.capability_filter(lambda path: FileCap.read(path), on_drop=dropped.append)
        )
    )
    assert [e.event for e in got] == ["/docs/a", "/docs/../docs/b"]
    assert [(d.item.event, d.reason) for d in dropped] == [
        ("/etc/passwd", "insufficient_capabilities")
    ]


def test_capability_filter_with_a_callable_returning_an_iterable_needs_every_one() -> None:
    ctx = pfrx.Context("bob", capabilities=[FileCap.read("/a"), FileCap.write("/b")])
    dropped: list[pfrx.Dropped] = []

    def required(event: Any) -> Any:
        if event == "both":
            return [FileCap.read("/a/1"), FileCap.write("/b/1")]
        if event == "gen":
            return (c for c in (FileCap.read("/a/2"), FileCap.write("/b/2")))
        return (FileCap.read("/a/1"), FileCap.write("/c/1"))  # the second is not held

    items = [env("both", ctx), env("partial", ctx), env("gen", ctx)]
    got = run_list(
        reactivex.from_iterable(items).pipe(pf.capability_filter(required, on_drop=dropped.append))
    )
    assert [e.event for e in got] == ["both", "gen"]
    assert [(d.item.event, d.reason, d.operator) for d in dropped] == [
        ("partial", "insufficient_capabilities", "capability_filter")
    ]


def test_capability_filter_callable_receives_the_event() -> None:
    seen: list[Any] = []

    def required(event: Any) -> pfrx.Capability:
        seen.append(event)
        return FileCap.read("/docs")

    run_list(reactivex.of(env(1), env(2)).pipe(pf.capability_filter(required)))
    assert seen == [1, 2]


# == transform ================================================================================
def test_transform_receives_event_and_context_and_returns_the_new_event() -> None:
    calls: list[tuple[Any, pfrx.Context]] = []

    def fn(event: Any, context: pfrx.Context) -> Any:
        calls.append((event, context))
        return event * 10

    got = run_list(reactivex.of(env(1), env(2)).pipe(pf.transform(fn)))
    assert calls == [(1, ALICE), (2, ALICE)]
    assert [e.event for e in got] == [10, 20]
    assert all(isinstance(e, pfrx.Envelope) and e.context == ALICE for e in got)


def test_transform_reject_drops_with_its_reason() -> None:
    dropped: list[pfrx.Dropped] = []
    items = [env(1), env(-1), env(2)]
    got = run_list(
        reactivex.from_iterable(items).pipe(
            pf.transform(
                lambda e, c: pfrx.Reject("negative") if e < 0 else e, on_drop=dropped.append
            )
        )
    )
    assert [e.event for e in got] == [1, 2]
    assert len(dropped) == 1
    assert dropped[0].item == items[1]
    assert dropped[0].reason == "negative"


def test_transform_exception_drops_with_its_text_and_the_stream_survives() -> None:
    dropped: list[pfrx.Dropped] = []

    def fn(event: Any, context: pfrx.Context) -> Any:
        if event == "bad":
            raise ValueError("cannot handle bad")
        return event.upper()

    got = Collector()
    got.subscribe_to(
        reactivex.of(env("a"), env("bad"), env("b"), env(3), env("c")).pipe(
            pf.transform(fn, on_drop=dropped.append)
        )
    )
    assert got.events == ["A", "B", "C"]
    assert got.completed and got.error is None
    assert dropped[0].reason == "cannot handle bad"
    assert dropped[0].item.event == "bad"
    assert len(dropped) == 2  # 3.upper() raised AttributeError: dropped too, once
    assert dropped[1].item.event == 3
    assert dropped[1].reason == str(_attribute_error_text())


def _attribute_error_text() -> str:
    try:
        (3).upper()  # type: ignore[attr-defined]
    except AttributeError as error:
        return str(error)
    raise AssertionError("unreachable")


# == process ==================================================================================
class _Counter:
    """Counts events; rejects 'bad' (moving to state -100); raises on 'boom'."""

    def initial_state(self) -> int:
        return 0

    def process_event(self, event: Any, context: pfrx.Context, state: int) -> Any:
        if event == "boom":
            raise RuntimeError("exploded")
        if event == "bad":
            return pfrx.Err("bad event", state + 100)
        if event == "quiet":
            return pfrx.Ok(state + 1)
        return pfrx.Ok(state + 1, effects=(f"{event}:{state + 1}",))


def test_process_ok_effects_become_envelopes_with_the_same_context() -> None:
    bob = pfrx.Context("bob", "s2")
    got = run_list(reactivex.of(env("a"), env("b", bob)).pipe(pf.process(_Counter())))
    assert [e.event for e in got] == ["a:1", "b:2"]
    assert [e.context for e in got] == [ALICE, bob]
    assert all(isinstance(e, pfrx.Envelope) for e in got)


def test_process_several_effects_each_an_envelope() -> None:
    class Splitter:
        def initial_state(self) -> None:
            return None

        def process_event(self, event: Any, context: pfrx.Context, state: None) -> Any:
            return pfrx.Ok(state, effects=tuple(event))

    got = run_list(reactivex.of(env("xyz")).pipe(pf.process(Splitter())))
    assert [e.event for e in got] == ["x", "y", "z"]
    assert all(e.context == ALICE for e in got)


def test_process_ok_without_effects_is_absorbed_not_dropped() -> None:
    dropped: list[pfrx.Dropped] = []
    got = run_list(
        reactivex.of(env("quiet"), env("quiet"), env("a")).pipe(
            pf.process(_Counter(), on_drop=dropped.append)
        )
    )
    assert [e.event for e in got] == ["a:3"]
    assert dropped == []


def test_process_err_drops_with_reason_and_its_state_becomes_the_state() -> None:
    dropped: list[pfrx.Dropped] = []
    items = [env("a"), env("bad"), env("b")]
    got = run_list(
        reactivex.from_iterable(items).pipe(pf.process(_Counter(), on_drop=dropped.append))
    )
    assert [e.event for e in got] == ["a:1", "b:102"]
    assert [(d.item, d.reason) for d in dropped] == [(items[1], "bad event")]


def test_process_exception_drops_and_keeps_the_old_state() -> None:
    dropped: list[pfrx.Dropped] = []
    items = [env("a"), env("boom"), env("b")]
    got = Collector()
    got.subscribe_to(
        reactivex.from_iterable(items).pipe(pf.process(_Counter(), on_drop=dropped.append))
    )
    assert got.events == ["a:1", "b:2"]
    assert got.completed and got.error is None
    assert len(dropped) == 1
    assert dropped[0].item == items[1]
    assert "exploded" in dropped[0].reason


def test_process_ok_and_err_fields() -> None:
    ok = pfrx.Ok(1)
    assert ok.state == 1
    assert tuple(ok.effects) == ()
    assert tuple(pfrx.Ok(2, effects=("e",)).effects) == ("e",)
    err = pfrx.Err("why", 3)
    assert (err.reason, err.state) == ("why", 3)
    assert pfrx.Reject("no").reason == "no"


# == backpressure =============================================================================
def test_backpressure_signature_defaults() -> None:
    params = inspect.signature(pf.backpressure).parameters
    assert params["strategy"].default == "drop_oldest"
    assert params["buffer_size"].default == 10_000
    assert params["batch_size"].default == 100
    assert params["scheduler"].default is None
    assert params["on_drop"].default is None
    for name in ("buffer_size", "batch_size", "scheduler", "on_drop"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY


def test_backpressure_unknown_strategy_raises_value_error_at_construction() -> None:
    with pytest.raises(ValueError):
        pf.backpressure("drop_everything")


def _buffered(
    strategy: str, n: int, **kwargs: Any
) -> tuple[Collector, list[pfrx.Dropped], TestScheduler]:
    """Push n items into a Subject synchronously; the drain waits on a TestScheduler."""
    scheduler = TestScheduler()
    dropped: list[pfrx.Dropped] = []
    subject: Subject[int] = Subject()
    got = Collector()
    got.subscribe_to(
        subject.pipe(
            pf.backpressure(strategy, scheduler=scheduler, on_drop=dropped.append, **kwargs)
        )
    )
    for i in range(n):
        subject.on_next(i)
    assert got.items == [] or strategy == "block"
    subject.on_completed()
    scheduler.start()
    return got, dropped, scheduler


def test_backpressure_default_strategy_is_drop_oldest() -> None:
    scheduler = TestScheduler()
    subject: Subject[int] = Subject()
    got = Collector()
    dropped: list[pfrx.Dropped] = []
    got.subscribe_to(
        subject.pipe(pf.backpressure(buffer_size=2, scheduler=scheduler, on_drop=dropped.append))
    )
    for i in range(4):
        subject.on_next(i)
    scheduler.start()
    assert got.items == [2, 3]
    assert [d.item for d in dropped] == [0, 1]


def test_backpressure_drop_oldest_evicts_the_oldest_with_reason_overflow() -> None:
    got, dropped, _ = _buffered("drop_oldest", 5, buffer_size=2)
    assert got.items == [3, 4]
    assert got.completed
    assert [(d.item, d.reason) for d in dropped] == [
        (0, "overflow"),
        (1, "overflow"),
        (2, "overflow"),
    ]


def test_backpressure_drop_newest_drops_the_incoming_item_with_reason_overflow() -> None:
    got, dropped, _ = _buffered("drop_newest", 5, buffer_size=2)
    assert got.items == [0, 1]
    assert got.completed
    assert [(d.item, d.reason) for d in dropped] == [
        (2, "overflow"),
        (3, "overflow"),
        (4, "overflow"),
    ]


def test_backpressure_latest_keeps_one_pending_item_and_ignores_buffer_size() -> None:
    got, dropped, _ = _buffered("latest", 5, buffer_size=100)
    assert got.items == [4]
    assert got.completed
    assert [(d.item, d.reason) for d in dropped] == [(i, "overwritten") for i in range(4)]


def test_backpressure_block_on_the_drain_thread_drains_inline_and_loses_nothing() -> None:
    got, dropped, _ = _buffered("block", 20, buffer_size=2)
    assert got.items == list(range(20))
    assert got.completed
    assert dropped == []


def test_backpressure_block_producer_on_the_drains_own_event_loop_thread() -> None:
    loop = EventLoopScheduler()
    try:
        subject: Subject[int] = Subject()
        got = Collector()
        dropped: list[pfrx.Dropped] = []
        got.subscribe_to(
            subject.pipe(
                pf.backpressure("block", buffer_size=2, scheduler=loop, on_drop=dropped.append)
            )
        )

        def produce(*_: Any) -> None:
            for i in range(50):
                subject.on_next(i)
            subject.on_completed()

        loop.schedule(produce)
        assert got.done.wait(10), "a producer on the drain's own thread deadlocked"
        assert got.items == list(range(50))
        assert got.completed
        assert dropped == []
    finally:
        loop.dispose()


def test_backpressure_block_makes_a_producer_thread_wait_and_loses_nothing() -> None:
    subject: Subject[int] = Subject()
    got = Collector()
    dropped: list[pfrx.Dropped] = []

    def slow(value: int) -> None:
        time.sleep(0.002)
        got.on_next(value)

    subject.pipe(pf.backpressure("block", buffer_size=3, on_drop=dropped.append)).subscribe(
        slow, got.on_error, got.on_completed
    )
    for i in range(60):
        subject.on_next(i)
    subject.on_completed()
    assert got.done.wait(10)
    assert got.items == list(range(60))
    assert dropped == []


def test_backpressure_block_counts_each_wait_as_a_backpressure_event() -> None:
    release = threading.Event()
    stream = pfrx.Stream(pf.backpressure("block", buffer_size=1))
    got: list[Any] = []

    def consumer(envelope: pfrx.Envelope) -> None:
        release.wait(10)
        got.append(envelope.event)

    stream.results.subscribe(consumer)
    producer = threading.Thread(target=lambda: [stream.send(i, ALICE) for i in range(4)])
    producer.start()
    time.sleep(0.2)
    assert producer.is_alive()  # waiting for room: consumer holds one, buffer holds one
    release.set()
    producer.join(10)
    stream.close()
    assert stream.join(10)
    assert got == [0, 1, 2, 3]
    assert stream.metrics().backpressure_events >= 1
    assert stream.metrics().dropped == 0


def test_backpressure_error_delivers_buffered_then_signals_overflow_and_disposes_upstream() -> None:
    scheduler = TestScheduler()
    upstream: list[reactivex.abc.ObserverBase[int]] = []
    disposed: list[bool] = []

    def subscribe(observer: Any, _: Any = None) -> Disposable:
        upstream.append(observer)
        return Disposable(lambda: disposed.append(True))

    dropped: list[pfrx.Dropped] = []
    got = Collector()
    got.subscribe_to(
        reactivex.create(subscribe).pipe(
            pf.backpressure("error", buffer_size=2, scheduler=scheduler, on_drop=dropped.append)
        )
    )
    for i in range(3):
        upstream[0].on_next(i)
    scheduler.start()
    assert got.items == [0, 1]
    assert isinstance(got.error, pfrx.BackpressureOverflow)
    assert [(d.item, d.reason) for d in dropped] == [(2, "overflow")]
    assert disposed == [True]
    assert issubclass(pfrx.BackpressureOverflow, Exception)


def test_backpressure_error_on_a_real_thread_drain() -> None:
    release = threading.Event()
    subject: Subject[int] = Subject()
    got = Collector()
    dropped: list[pfrx.Dropped] = []

    def consumer(value: int) -> None:
        release.wait(10)
        got.on_next(value)

    subject.pipe(pf.backpressure("error", buffer_size=2, on_drop=dropped.append)).subscribe(
        consumer, got.on_error, got.on_completed
    )
    subject.on_next(0)  # picked up by the drain (or still buffered)
    time.sleep(0.1)
    for i in range(1, 6):
        subject.on_next(i)
    release.set()
    assert got.done.wait(10)
    assert isinstance(got.error, pfrx.BackpressureOverflow)
    assert got.items == sorted(got.items)
    assert len(dropped) == 1 and dropped[0].reason == "overflow"
    assert not subject.observers  # upstream disposed
    delivered = set(got.items)
    assert dropped[0].item not in delivered
    assert delivered <= {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("strategy", "expected_events"),
    [("drop_oldest", 3), ("drop_newest", 3), ("latest", 4)],
)
def test_backpressure_each_item_finding_the_buffer_full_counts_one_event(
    strategy: str, expected_events: int
) -> None:
    scheduler = TestScheduler()
    stream = pfrx.Stream(pf.backpressure(strategy, buffer_size=2), scheduler=scheduler)
    for i in range(5):
        assert stream.send(i, ALICE).ok
    snapshot = stream.metrics()
    assert snapshot.backpressure_events == expected_events
    assert snapshot.dropped == expected_events


def test_backpressure_drains_on_the_given_scheduler_before_the_subscribe_scheduler() -> None:
    own, other = TestScheduler(), TestScheduler()
    subject: Subject[int] = Subject()
    got = Collector()
    got.subscribe_to(subject.pipe(pf.backpressure(scheduler=own)), scheduler=other)
    subject.on_next(1)
    other.advance_by(10)
    assert got.items == []
    own.advance_by(1)
    assert got.items == [1]


def test_backpressure_drains_on_the_subscribe_scheduler() -> None:
    scheduler = TestScheduler()
    subject: Subject[int] = Subject()
    got = Collector()
    got.subscribe_to(subject.pipe(pf.backpressure()), scheduler=scheduler)
    subject.on_next(1)
    subject.on_next(2)
    assert got.items == []
    scheduler.advance_by(1)
    assert got.items == [1, 2]


def test_backpressure_drains_on_a_given_event_loop_thread() -> None:
    loop = EventLoopScheduler()
    try:
        subject: Subject[int] = Subject()
        got = Collector()
        got.subscribe_to(subject.pipe(pf.backpressure(scheduler=loop)))
        subject.on_next(1)
        subject.on_completed()
        assert got.done.wait(10)
        loop_thread: list[int] = []
        done = threading.Event()
        loop.schedule(lambda *_: (loop_thread.append(threading.get_ident()), done.set()))
        assert done.wait(10)
        assert got.threads == {loop_thread[0]}
    finally:
        loop.dispose()


def test_backpressure_without_scheduler_drains_on_a_dedicated_thread_in_order() -> None:
    subject: Subject[int] = Subject()
    got = Collector()
    got.subscribe_to(subject.pipe(pf.backpressure("drop_newest", buffer_size=10_000)))
    for i in range(2_000):
        subject.on_next(i)
    subject.on_completed()
    assert got.done.wait(10)
    assert got.items == list(range(2_000))
    assert got.completed
    assert threading.get_ident() not in got.threads
    assert len(got.threads) == 1


def test_backpressure_preserves_order_across_batches() -> None:
    got, dropped, _ = _buffered("drop_oldest", 25, buffer_size=100, batch_size=3)
    assert got.items == list(range(25))
    assert dropped == []
    assert got.completed


def test_backpressure_completion_and_error_come_after_the_buffered_items() -> None:
    scheduler = TestScheduler()
    subject: Subject[int] = Subject()
    got = Collector()
    got.subscribe_to(subject.pipe(pf.backpressure(scheduler=scheduler)))
    subject.on_next(1)
    subject.on_error(RuntimeError("up"))
    assert got.error is None
    scheduler.start()
    assert got.items == [1]
    assert isinstance(got.error, RuntimeError)


def test_backpressure_adaptive_is_a_known_strategy() -> None:
    got, dropped, _ = _buffered("adaptive", 5, buffer_size=100)
    assert got.items == list(range(5))
    assert dropped == []


# == windows ==================================================================================
def test_window_count_tumbling_with_partial_window_on_completion() -> None:
    items = [env(i) for i in range(7)]
    windows = run_list(reactivex.from_iterable(items).pipe(pf.window_count(3)))
    assert all(isinstance(w, pfrx.Window) for w in windows)
    assert [w.items for w in windows] == [tuple(items[0:3]), tuple(items[3:6]), (items[6],)]
    for w in windows:
        assert isinstance(w.items, tuple)
        w.start, w.end, w.key  # noqa: B018 - the fields exist


def test_window_count_never_emits_an_empty_window() -> None:
    assert run_list(reactivex.empty().pipe(pf.window_count(3))) == []
    windows = run_list(reactivex.from_iterable([env(i) for i in range(6)]).pipe(pf.window_count(3)))
    assert [[e.event for e in w.items] for w in windows] == [[0, 1, 2], [3, 4, 5]]


def test_window_count_sliding_emits_every_open_window_with_an_item_on_completion() -> None:
    windows = run_list(
        reactivex.from_iterable([env(i) for i in range(4)]).pipe(pf.window_count(3, slide=1))
    )
    assert [[e.event for e in w.items] for w in windows] == [[0, 1, 2], [1, 2, 3], [2, 3], [3]]


def test_window_count_sliding_by_two() -> None:
    windows = run_list(
        reactivex.from_iterable([env(i) for i in range(7)]).pipe(pf.window_count(3, slide=2))
    )
    assert [[e.event for e in w.items] for w in windows] == [[0, 1, 2], [2, 3, 4], [4, 5, 6], [6]]


def test_window_count_absorbs_items_without_dropping_them() -> None:
    dropped: list[pfrx.Dropped] = []
    run_list(
        reactivex.from_iterable([env(i) for i in range(5)]).pipe(
            pf.window_count(2, on_drop=dropped.append)
        )
    )
    assert dropped == []


def _window_events(messages: list[Any]) -> list[tuple[float, list[Any]]]:
    return [
        (m.time, [e.event for e in m.value.value.items]) for m in messages if m.value.kind == "N"
    ]


def _run_windows(
    operator: Callable[[reactivex.Observable[Any]], reactivex.Observable[Any]],
    *messages: Any,
) -> Any:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(*messages)
    return scheduler.start(lambda: source.pipe(operator)).messages


def _envs_at(*times_events: tuple[int, Any], context: pfrx.Context = ALICE) -> list[Any]:
    return [on_next(t, env(e, context, float(t))) for t, e in times_events]


def test_window_time_closes_on_a_timer_without_a_further_item() -> None:
    messages = _run_windows(pf.window_time(4), *_envs_at((201, "a"), (202, "b")), on_completed(900))
    windows = _window_events(messages)
    assert [events for _, events in windows] == [["a", "b"]]
    when = windows[0][0]
    assert 202 < when <= 206  # closed by its timer, long before completion at 900
    window = messages[0].value.value
    assert isinstance(window, pfrx.Window)
    assert window.end - window.start == pytest.approx(4.0)
    assert window.start <= 201 and window.end >= 202


def test_window_time_tumbling_and_never_empty() -> None:
    messages = _run_windows(
        pf.window_time(4),
        *_envs_at((201, "a"), (202, "b"), (207, "c"), (230, "d")),
        on_completed(900),
    )
    windows = _window_events(messages)
    assert [events for _, events in windows] == [["a", "b"], ["c"], ["d"]]
    assert all(when < 240 for when, _ in windows)  # each closed by a timer
    assert messages[-1].value.kind == "C"


def test_window_time_with_an_explicit_scheduler() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(*_envs_at((201, "a")), on_completed(900))
    got = Collector()
    scheduler.schedule_absolute(
        200.0, lambda *_: got.subscribe_to(source.pipe(pf.window_time(4, scheduler=scheduler)))
    )
    scheduler.advance_to(300)
    assert [[e.event for e in w.items] for w in got.items] == [["a"]]


def test_window_time_sliding_puts_an_item_in_every_window_covering_it() -> None:
    messages = _run_windows(
        pf.window_time(4, slide=2),
        *_envs_at((201, "a"), (203, "b"), (205, "c")),
        on_completed(900),
    )
    windows = [m.value.value for m in messages if m.value.kind == "N"]
    assert all(w.end - w.start == pytest.approx(4.0) for w in windows)
    for name in ("a", "b", "c"):
        assert sum(name in w.events for w in windows) == 2
    assert all(len(w.items) > 0 for w in windows)
    assert all(m.time < 900 for m in messages if m.value.kind == "N")


def test_window_time_accepts_timedelta_as_float_seconds() -> None:
    msgs = _envs_at((201, "a"), (202, "b"), (209, "c"))
    as_float = _run_windows(pf.window_time(4.0), *msgs, on_completed(900))
    as_delta = _run_windows(pf.window_time(timedelta(seconds=4)), *msgs, on_completed(900))
    assert _window_events(as_float) == _window_events(as_delta)
    sliding_f = _run_windows(pf.window_time(4.0, slide=2.0), *msgs, on_completed(900))
    sliding_d = _run_windows(
        pf.window_time(timedelta(seconds=4), slide=timedelta(seconds=2)), *msgs, on_completed(900)
    )
    assert _window_events(sliding_f) == _window_events(sliding_d)


def test_window_session_default_key_is_the_session_id() -> None:
    s2 = pfrx.Context("bob", "s2")
    messages = _run_windows(
        pf.window_session(5),
        on_next(201, env("a1")),
        on_next(202, env("b1", s2)),
        on_next(203, env("a2")),
        on_completed(900),
    )
    windows = {m.value.value.key: m.value.value.events for m in messages if m.value.kind == "N"}
    assert windows == {"s1": ("a1", "a2"), "s2": ("b1",)}


def test_window_session_key_callable_on_the_envelope() -> None:
    messages = _run_windows(
        pf.window_session(5, key=lambda e: e.event[0]),
        *_envs_at((201, "x1"), (202, "y1"), (203, "x2")),
        on_completed(900),
    )
    windows = {m.value.value.key: m.value.value.events for m in messages if m.value.kind == "N"}
    assert windows == {"x": ("x1", "x2"), "y": ("y1",)}


def test_window_session_closes_on_a_timer_after_gap() -> None:
    messages = _run_windows(
        pf.window_session(5), *_envs_at((201, "a"), (203, "b")), on_completed(900)
    )
    windows = _window_events(messages)
    assert [events for _, events in windows] == [["a", "b"]]
    assert windows[0][0] == 208  # gap after the last item, not at completion
    assert messages[0].value.value.key == "s1"


def test_window_session_item_exactly_gap_later_starts_a_new_session() -> None:
    messages = _run_windows(
        pf.window_session(5),
        *_envs_at((201, "a"), (206, "b"), (210, "c")),
        on_completed(900),
    )
    assert [events for _, events in _window_events(messages)] == [["a"], ["b", "c"]]


def test_window_session_max_duration_cuts_and_the_next_item_starts_a_new_one() -> None:
    messages = _run_windows(
        pf.window_session(5, max_duration=10),
        *_envs_at((201, "a"), (204, "b"), (207, "c"), (210, "d"), (213, "e"), (214, "f")),
        on_completed(900),
    )
    windows = _window_events(messages)
    assert [events for _, events in windows] == [["a", "b", "c", "d"], ["e", "f"]]
    assert windows[0][0] == 211  # cut by a timer max_duration after the first item
    assert windows[1][0] == 219  # gap after f


def test_window_session_accepts_timedelta_durations() -> None:
    msgs = _envs_at((201, "a"), (204, "b"), (207, "c"), (210, "d"), (213, "e"), (230, "f"))
    as_float = _run_windows(pf.window_session(5.0, max_duration=10.0), *msgs, on_completed(900))
    as_delta = _run_windows(
        pf.window_session(timedelta(seconds=5), max_duration=timedelta(seconds=10)),
        *msgs,
        on_completed(900),
    )
    assert _window_events(as_float) == _window_events(as_delta)
    assert len(_window_events(as_float)) == 3


def test_window_session_with_an_explicit_scheduler_emits_open_sessions_on_completion() -> None:
    scheduler = TestScheduler()
    subject: Subject[pfrx.Envelope] = Subject()
    got = Collector()
    got.subscribe_to(subject.pipe(pf.window_session(5, scheduler=scheduler)))
    subject.on_next(env("a"))
    subject.on_next(env("b"))
    subject.on_completed()
    assert [w.events for w in got.items] == [("a", "b")]
    assert got.completed


def _failing_source(
    *times_events: tuple[int, Any],
) -> tuple[TestScheduler, reactivex.Observable[Any]]:
    scheduler = TestScheduler()
    return scheduler, scheduler.create_hot_observable(
        *_envs_at(*times_events), on_error(205, RuntimeError("upstream broke"))
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda drop: pf.window_count(3, on_drop=drop),
        lambda drop: pf.window_count(3, slide=1, on_drop=drop),
        lambda drop: pf.window_time(100, on_drop=drop),
        lambda drop: pf.window_time(100, slide=50, on_drop=drop),
        lambda drop: pf.window_session(100, on_drop=drop),
    ],
)
def test_windows_pass_upstream_errors_and_drop_open_items_as_upstream_error(
    make: Callable[[Callable[[pfrx.Dropped], None]], Any],
) -> None:
    dropped: list[pfrx.Dropped] = []
    scheduler, source = _failing_source((201, "a"), (202, "b"))
    messages = scheduler.start(lambda: source.pipe(make(dropped.append))).messages
    assert messages[-1].value.kind == "E"
    assert str(messages[-1].value.exception) == "upstream broke"
    assert sorted(d.item.event for d in dropped) == ["a", "b"]  # each exactly once
    assert {d.reason for d in dropped} == {"upstream_error"}


def test_window_count_error_after_a_full_window_drops_only_the_open_items() -> None:
    dropped: list[pfrx.Dropped] = []
    scheduler, source = _failing_source((201, 0), (202, 1), (203, 2), (204, 3))
    messages = scheduler.start(
        lambda: source.pipe(pf.window_count(3, on_drop=dropped.append))
    ).messages
    assert [[e.event for e in m.value.value.items] for m in messages[:-1]] == [[0, 1, 2]]
    assert messages[-1].value.kind == "E"
    assert [(d.item.event, d.reason) for d in dropped] == [(3, "upstream_error")]


# == metrics_tap, StreamMetrics, Health =======================================================
def test_metrics_tap_passes_through_and_records() -> None:
    metrics = pfrx.StreamMetrics()
    items = [env(i) for i in range(5)]
    got = run_list(reactivex.from_iterable(items).pipe(pf.metrics_tap(metrics, name="tap")))
    assert got == items
    snapshot = metrics.snapshot()
    assert snapshot.received == 5
    assert snapshot.emitted == 5
    assert snapshot.dropped == 0


def test_metrics_tap_default_arguments() -> None:
    params = inspect.signature(pf.metrics_tap).parameters
    assert params["metrics"].default is None
    assert params["name"].default is None
    items = [env(1)]
    assert run_list(reactivex.from_iterable(items).pipe(pf.metrics_tap())) == items


def test_stream_metrics_snapshot_fields_and_ranges() -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler=scheduler)
    snapshot = metrics.snapshot()
    for field in (
        "received",
        "emitted",
        "dropped",
        "errors",
        "backpressure_events",
        "processing_rate",
        "buffer_utilization",
        "avg_processing_time",
        "error_rate",
    ):
        assert hasattr(snapshot, field), field
    assert snapshot.received == snapshot.emitted == snapshot.dropped == 0
    with pytest.raises((attrs.exceptions.FrozenInstanceError, AttributeError)):
        snapshot.received = 3  # type: ignore[misc]


def test_stream_metrics_ranges_under_load() -> None:
    scheduler = TestScheduler()
    metrics = pfrx.StreamMetrics(scheduler=scheduler)
    subject: Subject[pfrx.Envelope] = Subject()
    dropped: list[pfrx.Dropped] = []
    subject.pipe(
        pf.metrics_tap(metrics),
        pf.transform(lambda e, c: 1 // e, on_drop=dropped.append),
    ).subscribe()
    for i in range(20):
        scheduler.advance_by(0.1)
        subject.on_next(env(i % 4))
    snapshot = metrics.snapshot()
    assert snapshot.received == 20
    assert 0.0 <= snapshot.buffer_utilization <= 1.0
    assert 0.0 <= snapshot.error_rate <= 1.0
    assert snapshot.processing_rate >= 0.0
    assert snapshot.avg_processing_time >= 0.0
    assert snapshot.backpressure_events == 0
    assert isinstance(snapshot.processing_rate, float)


def test_stream_metrics_buffer_utilization_and_processing_rate_through_a_stream() -> None:
    scheduler = TestScheduler()
    stream = pfrx.Stream(pf.backpressure(buffer_size=4), scheduler=scheduler)
    for i in range(3):
        stream.send(i, ALICE)
    during = stream.metrics()
    assert 0.0 < during.buffer_utilization <= 1.0
    scheduler.advance_by(1)
    after = stream.metrics()
    assert 0.0 <= after.buffer_utilization <= 1.0
    assert after.emitted == 3
    assert after.processing_rate > 0.0


def test_health_is_a_str_enum_with_the_three_values() -> None:
    assert {h.value for h in pfrx.Health} == {"healthy", "degraded", "unhealthy"}
    assert issubclass(pfrx.Health, str)
    assert pfrx.Health("healthy") == "healthy"
    health = pfrx.StreamMetrics().health()
    assert isinstance(health, pfrx.Health)
    assert health == "healthy"


# == Runtime: Stream ==========================================================================
def test_stream_signature() -> None:
    params = inspect.signature(pfrx.Stream).parameters
    assert params["name"].default is None
    assert params["scheduler"].default is None
    assert params["metrics"].default is None


def test_stream_send_result_results_metrics_and_health() -> None:
    stream = pfrx.Stream(pf.transform(lambda e, c: e * 2), name=f"s-{uuid.uuid4()}")
    got = Collector()
    got.subscribe_to(stream.results)
    result = stream.send(21, ALICE)
    assert result.ok is True
    assert result.reason is None
    assert got.events == [42]
    assert got.items[0].context == ALICE
    snapshot = stream.metrics()
    assert snapshot.received >= 1
    assert snapshot.emitted >= 1
    assert isinstance(stream.health(), pfrx.Health)
    assert stream.health() == "healthy"
    stream.close()


def test_stream_results_and_dropped_are_observables() -> None:
    stream = pfrx.Stream(pf.capability_filter(FileCap.write("/docs")))
    assert isinstance(stream.results, reactivex.Observable)
    assert isinstance(stream.dropped, reactivex.Observable)
    stream.close()


def test_stream_operators_without_on_drop_report_into_the_stream_dropped_and_metrics() -> None:
    stream = pfrx.Stream(
        pf.capability_filter(FileCap.write("/docs")),
        pf.transform(lambda e, c: e),
    )
    drops = Collector()
    drops.subscribe_to(stream.dropped)
    writer = pfrx.Context("w", capabilities=[FileCap.write("/docs")])
    assert stream.send("denied", ALICE).ok  # accepted; the operator drops it
    stream.send("allowed", writer)
    assert len(drops.items) == 1
    record = drops.items[0]
    assert isinstance(record, pfrx.Dropped)
    assert record.reason == "insufficient_capabilities"
    assert record.operator == "capability_filter"
    assert record.item.event == "denied"
    assert stream.metrics().dropped == 1
    stream.close()


def test_stream_operator_with_its_own_on_drop_reports_there() -> None:
    mine: list[pfrx.Dropped] = []
    stream = pfrx.Stream(pf.transform(lambda e, c: pfrx.Reject("no"), on_drop=mine.append))
    stream.send(1, ALICE)
    assert [d.reason for d in mine] == ["no"]
    stream.close()


def test_stream_operator_with_its_own_metrics_records_there() -> None:
    own = pfrx.StreamMetrics()
    stream = pfrx.Stream(pf.metrics_tap(own))
    stream.send(1, ALICE)
    stream.send(2, ALICE)
    assert own.snapshot().received == 2
    stream.close()


def test_stream_with_a_test_scheduler_drains_nothing_until_it_advances() -> None:
    scheduler = TestScheduler()
    stream = pfrx.Stream(
        pf.backpressure(), pf.window_session(5), scheduler=scheduler, name="virtual"
    )
    got = Collector()
    got.subscribe_to(stream.results)
    for event in ("a", "b"):
        assert stream.send(event, ALICE).ok
    assert got.items == []
    scheduler.advance_by(1)  # drained into the session window, which is still open
    assert got.items == []
    scheduler.advance_by(10)  # the session's gap timer ran on the stream's scheduler
    assert [w.events for w in got.items] == [("a", "b")]


def test_stream_envelope_timestamps_and_metrics_follow_its_scheduler() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(500)
    stream = pfrx.Stream(scheduler=scheduler)
    got = Collector()
    got.subscribe_to(stream.results)
    stream.send("x", ALICE)
    scheduler.advance_by(1)
    assert got.items[0].timestamp == pytest.approx(500.0, abs=1.0)


def test_stream_close_with_a_test_scheduler_completes_results_after_the_drain() -> None:
    scheduler = TestScheduler()
    stream = pfrx.Stream(pf.backpressure(), scheduler=scheduler)
    got = Collector()
    got.subscribe_to(stream.results)
    for i in range(3):
        stream.send(i, ALICE)
    stream.close()
    refused = stream.send(99, ALICE)
    assert refused.ok is False
    assert isinstance(refused.reason, str) and refused.reason
    assert not got.completed
    scheduler.start()
    assert got.events == [0, 1, 2]
    assert got.completed


def test_stream_close_never_blocks_and_join_waits_on_real_schedulers() -> None:
    release = threading.Event()
    stream = pfrx.Stream(pf.backpressure("block", buffer_size=2))
    got = Collector()

    def consumer(envelope: pfrx.Envelope) -> None:
        release.wait(10)
        got.on_next(envelope)

    stream.results.subscribe(consumer, got.on_error, got.on_completed)
    for i in range(3):  # one held by the consumer, two buffered: no send waits
        assert stream.send(i, ALICE).ok
    started = time.perf_counter()
    stream.close()
    assert time.perf_counter() - started < 1.0
    late = stream.send(3, ALICE)
    assert late.ok is False and late.reason
    started = time.perf_counter()
    stream.join(timeout=0.2)
    waited = time.perf_counter() - started
    assert 0.15 <= waited < 2.0
    assert not got.completed
    release.set()
    stream.join(timeout=10)
    assert got.completed
    assert got.events == [0, 1, 2]


def test_stream_join_returns_at_once_when_drained() -> None:
    stream = pfrx.Stream(pf.backpressure())
    got = Collector()
    got.subscribe_to(stream.results)
    stream.send(1, ALICE)
    stream.close()
    stream.join(timeout=10)
    assert got.completed and got.events == [1]
    started = time.perf_counter()
    stream.join()
    assert time.perf_counter() - started < 1.0


def test_stream_as_a_context_manager_closes_and_drains() -> None:
    got = Collector()
    with pfrx.Stream(pf.backpressure(), pf.transform(lambda e, c: e + 1)) as stream:
        got.subscribe_to(stream.results)
        for i in range(100):
            assert stream.send(i, ALICE).ok
    stream.join(timeout=10)
    assert got.completed
    assert got.events == list(range(1, 101))
    assert stream.send(0, ALICE).ok is False


def test_stream_sends_from_many_threads() -> None:
    stream = pfrx.Stream(pf.backpressure("block", buffer_size=8))
    got = Collector()
    got.subscribe_to(stream.results)

    def produce(base: int) -> None:
        for i in range(200):
            stream.send(base + i, ALICE)

    threads = [threading.Thread(target=produce, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    stream.close()
    stream.join(timeout=10)
    assert got.completed
    assert sorted(got.events) == sorted(k * 1000 + i for k in range(4) for i in range(200))
    for k in range(4):  # each producer's order is preserved
        mine = [e for e in got.events if k * 1000 <= e < (k + 1) * 1000]
        assert mine == sorted(mine)


def test_stream_uses_the_given_metrics() -> None:
    metrics = pfrx.StreamMetrics()
    stream = pfrx.Stream(pf.capability_filter(FileCap.write("/x")), metrics=metrics)
    stream.send("e", ALICE)
    assert metrics.snapshot().dropped == 1
    assert stream.metrics().dropped == 1
    stream.close()


# == Runtime: registry ========================================================================
def test_registry_register_lookup_unregister() -> None:
    name = f"contract-{uuid.uuid4()}"
    stream = pfrx.Stream()
    pfrx.registry.register(name, stream)
    try:
        assert pfrx.registry.lookup(name) is stream
    finally:
        pfrx.registry.unregister(name)
    with pytest.raises(Exception):  # noqa: B017 - the contract only says lookup fails
        pfrx.registry.lookup(name)
    stream.close()


# == on_drop everywhere an item can be lost ===================================================
@pytest.mark.parametrize(
    "factory",
    [
        pf.capability_filter,
        pf.transform,
        pf.process,
        pf.backpressure,
        pf.window_count,
        pf.window_time,
        pf.window_session,
    ],
)
def test_every_operator_that_can_lose_an_item_takes_on_drop(factory: Any) -> None:
    param = inspect.signature(factory).parameters["on_drop"]
    assert param.kind is inspect.Parameter.KEYWORD_ONLY
    assert param.default is None


def test_backpressure_error_counts_one_backpressure_event() -> None:
    scheduler = TestScheduler()
    stream = pfrx.Stream(pf.backpressure("error", buffer_size=2), scheduler=scheduler)
    got = Collector()
    got.subscribe_to(stream.results)
    for i in range(3):
        stream.send(i, ALICE)
    scheduler.start()
    assert got.events == [0, 1]
    assert got.error is not None
    snapshot = stream.metrics()
    assert snapshot.backpressure_events == 1
    assert snapshot.dropped == 1


def test_stream_close_never_blocks_even_while_a_producer_waits_in_send() -> None:
    release = threading.Event()
    stream = pfrx.Stream(pf.backpressure("block", buffer_size=1))
    got = Collector()

    def consumer(envelope: pfrx.Envelope) -> None:
        release.wait(10)
        got.on_next(envelope)

    stream.results.subscribe(consumer, got.on_error, got.on_completed)
    results: list[pfrx.SendResult] = []
    producer = threading.Thread(
        target=lambda: results.extend(stream.send(i, ALICE) for i in range(4))
    )
    producer.start()
    time.sleep(0.2)
    assert producer.is_alive()  # blocked in send: the buffer is full
    started = time.perf_counter()
    stream.close()
    assert time.perf_counter() - started < 1.0
    assert stream.send("after", ALICE).ok is False
    release.set()
    producer.join(10)
    assert stream.join(timeout=10) is not False
    assert got.completed
    accepted = [i for i, r in enumerate(results) if r.ok]
    assert got.events == accepted  # whatever was accepted was delivered, in order, once
    assert 0 in accepted


def test_stream_context_manager_on_a_test_scheduler_drains_when_it_advances() -> None:
    scheduler = TestScheduler()
    got = Collector()
    with pfrx.Stream(pf.backpressure(), scheduler=scheduler) as stream:
        got.subscribe_to(stream.results)
        stream.send("a", ALICE)
    assert stream.send("b", ALICE).ok is False
    assert got.items == [] and not got.completed
    scheduler.start()
    assert got.events == ["a"]
    assert got.completed
