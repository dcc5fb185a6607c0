"""Marble pictures: ASCII lanes, SVG documents, drops with reasons, windows as brackets,
colours by key and outcome, and the aligned mismatch message."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pfrx
from pfrx import operators as pf
from pfrx.testing import (
    Diagram,
    Lane,
    MarbleMismatch,
    Mark,
    Note,
    align,
    draw,
    marbles,
    parse,
)

SVG = "{http://www.w3.org/2000/svg}"


def _odd_rejected(event: str, _context: pfrx.Context) -> object:
    return pfrx.Reject("odd") if event in "bd" else event.upper()


def _svg(diagram: Diagram) -> ET.Element:
    return ET.fromstring(diagram.svg())


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_draw_gives_source_operator_result_and_dropped_lanes() -> None:
    picture = draw("-a-b-c-d-e-|", pf.transform(_odd_rejected))
    assert str(picture).splitlines() == [
        "source   -a-b-c-d-e-|",
        "         transform",
        "result   -A---C---E-|",
        "dropped  ---b---d   b: odd, d: odd",
    ]
    assert picture.recording is not None
    assert picture.recording.values == ["A", "C", "E"]
    assert [lane.label for lane in picture.lanes] == ["source", "transform", "result", "dropped"]


def test_the_operator_label_names_chained_operators_and_can_be_given() -> None:
    from reactivex import operators as ops

    picture = draw("-a|", pf.metrics_tap(), ops.map(lambda e: e))
    assert str(picture).splitlines()[1].strip() == "metrics_tap → map"
    named = draw("-a|", pf.metrics_tap(), label="tap(m)")
    assert str(named).splitlines()[1].strip() == "tap(m)"


def test_lanes_stay_aligned_as_marble_strings() -> None:
    picture = draw("-a-(bc)--d|", pf.transform(lambda e, c: e.upper()))
    lines = str(picture).splitlines()
    assert lines[0] == "source   -a-(bc)--d|"
    assert lines[2] == "result   -A-(BC)--D|"
    # the drawn lanes parse back to the recorded notifications
    drawn = lines[2].split(maxsplit=1)[1]
    assert picture.recording is not None
    assert [(n.time, n.kind) for n in parse(drawn, start=200.0)] == [
        (n.time, n.kind) for n in picture.recording.notes
    ]


@given(
    st.lists(st.tuples(st.integers(0, 30), st.sampled_from("abcxyz")), max_size=12),
)
def test_align_puts_every_mark_at_its_tick_unless_a_group_covers_it(
    marks: list[tuple[int, str]],
) -> None:
    cells: dict[int, list[str]] = {}
    for tick, symbol in sorted(marks):
        cells.setdefault(tick, []).append(symbol)
    (text,), offsets = align([cells])
    notes = parse(text)
    # nothing lost, order kept
    assert [n.value for n in notes] == [s for t in sorted(cells) for s in cells[t]]
    # each mark is at its tick or later (late only behind a group)
    flat = [(t, s) for t in sorted(cells) for s in cells[t]]
    for (tick, _), note in zip(flat, notes, strict=True):
        assert note.time >= tick
        assert offsets[tick] == tick
    if all(len(v) == 1 for v in cells.values()):
        assert [n.time for n in notes] == [t for t, _ in flat]


def test_windows_are_drawn_as_brackets_from_first_item_to_emission() -> None:
    picture = draw("-a-b-c-d-e-|", pf.window_count(2))
    assert str(picture).splitlines() == [
        "source   -a-b-c-d-e-|",
        "         window_count",
        "result   ---f---g---(h|)",
        "windows   [f] [g] [h]",
        "",
        "f = (a, b)",
        "g = (c, d)",
        "h = (e)",
    ]


def test_overlapping_windows_get_their_own_bracket_rows() -> None:
    text = str(draw("-a-b-c-d-|", pf.window_count(3, slide=1)))
    rows = [line for line in text.splitlines() if "[" in line]
    assert len(rows) == 3
    assert "e = (a, b, c)" in text
    assert "f = (b, c, d)" in text


def test_drops_show_their_reasons_in_ascii_and_svg() -> None:
    family = pfrx.CapabilityFamily("file", actions=("read",))
    alice = pfrx.Context("alice", "s1", [family.read("/docs")])
    paths = {"a": "/docs/a", "b": "/etc/passwd", "c": "/docs/c"}
    picture = draw(
        "-a-b-c-|",
        pf.capability_filter(lambda path: family.read(path)),
        lookup=paths,
        context=alice,
    )
    assert "dropped  ---b   b: insufficient_capabilities" in str(picture)
    root = _svg(picture)
    texts = _texts(root)
    assert "insufficient_capa…" in texts  # the reason under the dropped item, shortened
    assert "dropped: insufficient_capabilities" in texts  # and in full in the legend
    dashed = [c for c in root.iter(f"{SVG}circle") if c.get("stroke-dasharray")]
    assert len(dashed) == 2  # the dropped item and its legend swatch


def test_svg_is_a_well_formed_document_with_one_circle_per_item() -> None:
    picture = draw("-a-b-c-d-e-|", pf.transform(_odd_rejected), title="transform")
    root = _svg(picture)
    assert root.tag == f"{SVG}svg"
    assert float(root.get("width", "0")) > 200
    circles = list(root.iter(f"{SVG}circle"))
    # 5 source items, 3 results, 2 drops, 1 legend swatch for reason "odd"
    assert len(circles) == 11
    assert "transform" in _texts(root)
    assert picture._repr_svg_() == picture.svg()


def test_items_are_coloured_by_symbol_by_default_and_by_key_when_given() -> None:
    by_symbol = _svg(draw("-a-b-a-|"))
    fills = [c.get("fill") for c in by_symbol.iter(f"{SVG}circle")]
    assert fills[0] == fills[2] != fills[1]

    def vowel(value: object) -> bool:
        return isinstance(value, pfrx.Envelope) and value.event in "aeiou"

    by_key = _svg(draw("-a-e-b-|", key=vowel))
    fills = [c.get("fill") for c in by_key.iter(f"{SVG}circle")]
    assert fills[0] == fills[1] != fills[2]


def test_session_windows_are_coloured_by_their_key() -> None:
    picture = draw(
        "-a-b------c|",
        pf.window_session(3, key=lambda env: env.event in "ac"),
    )
    root = _svg(picture)
    squares = [r.get("fill") for r in root.iter(f"{SVG}rect") if r.get("rx") == "3"]
    assert len(squares) == 3  # windows (a), (b), (c)
    assert squares[0] == squares[2] != squares[1]
    brackets = [p for p in root.iter(f"{SVG}path") if p.get("fill") == "none"]
    assert len(brackets) == 3


def test_errors_and_completion_are_drawn() -> None:
    picture = draw("-a-#", pf.transform(lambda e, c: e), error=ValueError("boom"))
    assert str(picture).splitlines()[2] == "result   -a-#"
    root = _svg(picture)
    crosses = [p for p in root.iter(f"{SVG}path") if p.get("stroke") == "#d62728"]
    assert len(crosses) == 2  # source and result
    done = _svg(draw("-a|"))
    bars = [line for line in done.iter(f"{SVG}line") if line.get("stroke-width") == "2.5"]
    assert len(bars) == 2


def test_text_in_svg_is_escaped() -> None:
    picture = draw("-a|", pf.transform(lambda e, c: pfrx.Reject("<&>")))
    root = _svg(picture)  # parses: nothing unescaped
    assert "dropped: <&>" in _texts(root)


def test_recording_draws_itself_and_jupyter_finds_repr_svg() -> None:
    with marbles() as m:
        result = m.run(m.cold("-a-b|").pipe(pf.transform(_odd_rejected)))
    assert str(result.diagram()).splitlines() == [
        "result   -A--|",
        "dropped  ---b   b: odd",
    ]
    assert result._repr_svg_().startswith("<svg")


def test_kit_diagram_draws_its_sources_with_their_lookups() -> None:
    events = {"x": "hello", "y": "world"}
    with marbles() as m:
        left = m.hot("-x--|", events)
        right = m.cold("--y|", events)
        from reactivex import merge

        result = m.run(merge(left, right))
        picture = m.diagram(result, "merge")
    assert str(picture).splitlines() == [
        "source 1  -x--|",
        "source 2  --y|",
        "          merge",
        "result    -xy-|",
    ]


def test_marks_before_the_start_are_not_drawn_and_tick_must_be_positive() -> None:
    lane = Lane("early", (Mark(150.0, "next", "z"), Mark(201.0, "next", "a")))
    assert str(Diagram([lane], start=200.0)) == "early    -a"
    with pytest.raises(ValueError, match="tick"):
        Diagram([lane], tick=0)


def test_a_key_function_that_raises_does_not_stop_the_drawing() -> None:
    def broken(_value: object) -> object:
        raise RuntimeError("no key")

    root = _svg(draw("-a-b|", key=broken))
    assert len(list(root.iter(f"{SVG}circle"))) == 4  # source and result


def test_a_failing_marble_assertion_draws_aligned_expected_and_actual() -> None:
    with marbles() as m:
        rejecting_b = pf.transform(lambda e, c: pfrx.Reject("odd") if e == "b" else e.upper())
        result = m.run(m.cold("-a-b-(cd)-e|").pipe(rejecting_b))
        with pytest.raises(MarbleMismatch) as failure:
            m.expect(result, "-A---(CX)-E|")
    lines = str(failure.value).splitlines()
    assert lines[1] == "expected: -A---(CX)-E|"
    assert lines[2] == "actual:   -A---(CD)-E|"
    assert lines[3] == "dropped:  ---b   (odd)"
    caret = lines[4]
    assert caret.index("^") == len("expected: -A---")
    assert caret.endswith("first difference at 205")


def test_a_mismatch_on_length_points_at_the_first_missing_notification() -> None:
    with marbles() as m:
        result = m.run(m.cold("-a|"))
        with pytest.raises(MarbleMismatch) as failure:
            m.expect(result, "-a-b|")
    text = str(failure.value)
    caret = next(line for line in text.splitlines() if "^" in line)
    assert caret.index("^") == len("expected: -a")
    assert "first difference at 202" in caret


def test_notes_keep_their_legend_per_row_in_mismatches() -> None:
    with marbles() as m:
        result = m.run(m.cold("-a|").pipe(pf.transform(lambda e, c: {"event": e})))
        with pytest.raises(MarbleMismatch) as failure:
            m.expect(result, "-b|")
    text = str(failure.value)
    assert "actual symbols:" in text
    symbol = re.search(r"(\w) = \{'event': 'a'\}", text)
    assert symbol is not None and symbol.group(1) not in "ab", text  # a and b are the test's


def test_notes_lane_and_dropped_lane_build_diagrams_by_hand() -> None:
    from pfrx.testing import dropped_lane, notes_lane

    lanes = [
        notes_lane("in", [Note(0.0, "next", "a"), Note(2.0, "completed")]),
        dropped_lane([pfrx.Dropped("a", "late", "op", 1.0)]),
    ]
    assert str(Diagram(lanes)).splitlines() == ["in       a-|", "dropped  -a   a: late"]


# -- pictures keep the user's symbols (issue 14) ----------------------------------------------


def _items(picture: Diagram) -> list[tuple[str, str, str]]:
    """(tooltip, fill, symbol) of every item drawn in a picture's SVG."""
    out = []
    for group in _svg(picture).iter(f"{SVG}g"):
        title = group.find(f"{SVG}title")
        shape = group.find(f"{SVG}circle")
        if shape is None:
            shape = group.find(f"{SVG}rect")
        text = group.find(f"{SVG}text")
        if title is not None and shape is not None and text is not None:
            out.append((title.text or "", shape.get("fill") or "", text.text or ""))
    return out


def test_a_recording_draws_values_with_the_symbols_of_the_tests_marbles() -> None:
    paths = {"a": "/docs/a", "b": "/etc/b", "c": "/docs/c"}

    def read(path: str, _context: pfrx.Context) -> object:
        return pfrx.Reject("denied") if path.startswith("/etc") else path.upper()

    with marbles() as m:
        result = m.run(m.hot("-a-b-c-|", paths).pipe(pf.transform(read)))
    lines = str(result.diagram()).splitlines()
    dropped = lines[1].split()
    assert dropped[:2] == ["dropped", "---b"], lines  # /etc/b is b, as in the test's source
    drawn = lines[0].split()[1]
    invented = [c for c in drawn if c not in "-|"]
    assert len(invented) == 2 and not set(invented) & set("abc"), lines  # /DOCS/A is not a


def test_windows_named_in_the_expected_marbles_keep_their_names() -> None:
    with marbles() as m:
        result = m.run(m.hot("-a-b-c-d-|").pipe(pf.window_count(2)))
        m.expect(result, "---x---y-|", {"x": ("a", "b"), "y": ("c", "d")})
        picture = m.diagram(result, "window_count(2)")
    lines = str(picture).splitlines()
    assert lines[2].split() == ["result", "---x---y-|"], lines
    assert any(line.split()[:1] == ["windows"] and "[x" in line for line in lines), lines
    assert "[y" in str(picture)
    assert {symbol for _, _, symbol in _items(picture)} >= {"x", "y"}


def test_the_same_item_keeps_its_symbol_and_colour_between_pictures() -> None:
    def boxed(event: str, _context: pfrx.Context) -> object:
        return {"event": event}

    first = _items(draw("-a-b-|", pf.transform(boxed)))
    second = _items(draw("-b-a-|", pf.transform(boxed)))

    def drawn(items: list[tuple[str, str, str]], value: str) -> tuple[str, str]:
        fill, symbol = next((f, s) for tip, f, s in items if tip.endswith(value))
        return fill, symbol

    for value in ("{'event': 'a'}", "{'event': 'b'}", "'a'", "'b'"):
        assert drawn(first, value) == drawn(second, value), value
    assert drawn(first, "{'event': 'a'}") != drawn(first, "{'event': 'b'}")
