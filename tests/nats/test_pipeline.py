"""The worker's pipeline side without a server: lineage of results, windows, absorbed items,
and a pipeline that fails."""

from __future__ import annotations

import gc
import json
from typing import Any

from reactivex import operators as ops

import pfrx
from pfrx import operators as pf
from pfrx.nats import sign_context
from pfrx.nats._pipeline import Delivery, PipelineRunner
from pfrx.nats.sink import Output

KEY = b"k" * 32
TOKEN = sign_context(pfrx.Context("alice", "s1"), KEY)


def deliveries(*events: Any) -> list[Delivery]:
    return [
        Delivery(f"in-{i}", json.dumps({"event": e}).encode(), {"Pfrx-Context": TOKEN}, 1)
        for i, e in enumerate(events)
    ]


def runner(factory: Any) -> tuple[PipelineRunner, list[Output], list[str], list[str]]:
    outputs: list[Output] = []
    released: list[str] = []
    failed: list[str] = []
    run = PipelineRunner(
        factory,
        [KEY],
        output="out",
        dropped="dropped",
        emit=outputs.append,
        release=released.append,
        failed=failed.extend,
        max_deliver=5,
    )
    return run, outputs, released, failed


def test_each_result_names_its_input_and_each_input_is_released() -> None:
    run, outputs, released, _ = runner(lambda: pf.transform(lambda e, c: e * 2))
    run.process(deliveries(1, 2, 3))
    gc.collect()
    assert [(o.source_ids, json.loads(o.data)) for o in outputs] == [
        (("in-0",), {"event": 2}),
        (("in-1",), {"event": 4}),
        (("in-2",), {"event": 6}),
    ]
    assert [o.msg_id for o in outputs] == ["in-0/r0", "in-1/r0", "in-2/r0"]
    assert sorted(released) == ["in-0", "in-1", "in-2"]


def test_a_window_holds_its_inputs_until_it_is_emitted() -> None:
    run, outputs, released, _ = runner(lambda: [pf.window_count(2)])
    run.process(deliveries("a", "b", "c"))
    gc.collect()
    assert [o.source_ids for o in outputs] == [("in-0", "in-1")]
    assert sorted(released) == ["in-0", "in-1"]  # in-2 is held by the open window
    assert outputs[0].msg_id.startswith("w") and json.loads(outputs[0].data)["event"]["events"] == [
        "a",
        "b",
    ]


class Absorb:
    def initial_state(self) -> int:
        return 0

    def process_event(self, event: Any, context: pfrx.Context, state: int) -> pfrx.Ok[int]:
        return pfrx.Ok(state + 1)  # no effect: absorbed by design


def test_an_absorbed_input_is_released_without_output() -> None:
    run, outputs, released, _ = runner(lambda: [pf.process(Absorb())])
    run.process(deliveries(1, 2))
    gc.collect()
    assert outputs == [] and sorted(released) == ["in-0", "in-1"]


def boom(envelope: pfrx.Envelope) -> pfrx.Envelope:
    if envelope.event == "boom":
        raise RuntimeError("bad input")
    return envelope


def test_a_failing_pipeline_drops_the_culprit_and_goes_on_each_input_once() -> None:
    run, outputs, released, failed = runner(lambda: [ops.map(boom), pf.window_count(3)])
    run.process(deliveries("a", "boom", "c", "d", "e"))
    gc.collect()
    drops = {o.source_ids: json.loads(o.data) for o in outputs if o.kind == "drop"}
    assert drops == {
        # the open window's item is reported by the window (the contract), and ends there:
        ("in-0",): {"reason": "upstream_error", "operator": "window_count", "source_id": "in-0"},
        ("in-1",): {
            "reason": "pipeline_failed: RuntimeError: bad input",
            "operator": "pipeline",
            "source_id": "in-1",
        },
    }
    assert failed == []
    results = [o for o in outputs if o.kind == "result"]
    assert [o.source_ids for o in results] == [("in-2", "in-3", "in-4")]
    assert sorted(released) == ["in-0", "in-1", "in-2", "in-3", "in-4"]


def test_what_a_failed_pipeline_held_unreported_is_handed_back() -> None:
    # RxPY's buffer reports nothing when its upstream fails: its item must come back.
    run, outputs, released, failed = runner(lambda: [ops.map(boom), ops.buffer_with_count(3)])
    run.process(deliveries("a", "boom"))
    gc.collect()
    assert failed == ["in-0"] and "in-0" not in released
    assert [o.source_ids for o in outputs] == [("in-1",)]


def test_unverifiable_and_malformed_inputs_are_one_drop_each() -> None:
    run, outputs, released, _ = runner(lambda: [pf.transform(lambda e, c: e)])
    bad = [
        Delivery("forged", b'{"event": 1}', {"Pfrx-Context": TOKEN[:-2] + "AA"}, 1),
        Delivery("missing", b'{"event": 1}', {}, 1),
        Delivery("junk", b"{", {"Pfrx-Context": TOKEN}, 1),
        Delivery("tired", b'{"event": 1}', {"Pfrx-Context": TOKEN}, 5),
    ]
    run.process(bad)
    reasons = {o.source_ids[0]: json.loads(o.data)["reason"] for o in outputs}
    assert reasons == {
        "forged": "unauthenticated",
        "missing": "unauthenticated",
        "junk": "malformed_body: body is not JSON",
        "tired": "max_deliver_exceeded",
    }
    assert sorted(released) == ["forged", "junk", "missing", "tired"]
