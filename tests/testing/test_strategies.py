"""pfrx.testing.strategies: what each strategy draws, and the coverage rules checked through
them (a grant reaches its subtree and nothing else, whatever form the asked path takes)."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from reactivex import operators as ops

import pfrx
from pfrx import operators as pf
from pfrx.testing import parse, render
from pfrx.testing import strategies as pst

FileCap = pfrx.CapabilityFamily(
    "file",
    actions=("read", "write", "delete", "admin"),
    implies={"admin": ("read", "write", "delete")},
)


def reference_normalise(resource: str) -> str | None:
    """The contract's normalisation, written independently of pfrx."""
    if resource == "*":
        return "*"
    if not resource.startswith("/") or "\x00" in resource:
        return None
    return posixpath.normpath("/" + resource.lstrip("/"))


def reference_covers(held: str, required: str) -> bool:
    h, r = reference_normalise(held), reference_normalise(required)
    if h is None or r is None:
        return False
    if h == "*":
        return True
    if r == "*":
        return False
    return h == "/" or r == h or r.startswith(h + "/")


# -- what the strategies draw -------------------------------------------------------------------


@given(pst.paths())
def test_plain_paths_are_absolute_and_already_normal(path: str) -> None:
    assert pfrx.normalize_resource(path) == path
    assert pfrx.covers(path, path)


@pytest.mark.parametrize(
    ("kind", "found"),
    [
        ("climbs with ..", lambda p: "/.." in p),
        ("doubles a slash", lambda p: "//" in p),
        ("holds a NUL", lambda p: "\x00" in p),
        ("is relative or empty", lambda p: not p.startswith("/") and p != "*"),
        ("uses a look-alike", lambda p: any(fake in p for fake in pst.LOOK_ALIKES)),
        ("is a prefix sibling of /docs", lambda p: p.startswith("/docs") and p[5:6] not in "/"),
    ],
)
def test_hostile_paths_include_each_attack(kind: str, found: object) -> None:
    example = find(pst.paths(hostile=True), found)  # type: ignore[arg-type]
    assert found(example), (kind, example)  # type: ignore[operator]  # "" is a fine example


@given(pst.marble_timelines(hot=True))
def test_marble_timelines_parse(text: str) -> None:
    parse(text, hot=True)


@given(pst.marble_timelines())
def test_marble_timelines_render_back_unchanged(text: str) -> None:
    assert render(parse(text))[0] == text


@given(pst.envelopes(st.integers(), pst.contexts(FileCap)))
def test_envelopes_carry_contexts_of_the_family(envelope: pfrx.Envelope) -> None:
    assert isinstance(envelope.context, pfrx.Context)
    assert all(c.family == "file" for c in envelope.context.capabilities)
    assert envelope.timestamp >= 0
    hash(envelope.context)


# -- the coverage rules, through the strategies ---------------------------------------------------


@given(st.one_of(pst.paths(), st.sampled_from(["/", "*"])), pst.paths(hostile=True))
def test_coverage_follows_the_contract_for_any_asked_path(held: str, asked: str) -> None:
    assert pfrx.covers(held, asked) is reference_covers(held, asked)


@given(
    pst.paths()
    .filter(lambda p: p != "/")
    .flatmap(lambda p: st.tuples(st.just(p), pst.hostile_forms(p)))
)
def test_a_hostile_form_is_covered_only_when_it_names_the_subtree(pair: tuple[str, str]) -> None:
    held, asked = pair
    normal = pfrx.normalize_resource(asked)
    inside = (
        normal is not None and normal != "*" and (normal == held or normal.startswith(held + "/"))
    )
    assert pfrx.covers(held, asked) is inside
    assert FileCap.read(held).grants(FileCap.read(asked)) is inside


@given(pst.paths().filter(lambda p: p != "/"), st.sampled_from(sorted(pst.LOOK_ALIKES)))
def test_look_alikes_and_prefix_siblings_are_never_covered(held: str, fake: str) -> None:
    for asked in (held + fake, held + "2", held + ".", held + "..", held + "\x00"):
        assert not pfrx.covers(held, asked), asked


@given(pst.contexts(FileCap), pst.capabilities(FileCap, resources=pst.paths(hostile=True)))
def test_a_context_has_a_capability_when_one_it_holds_grants_it(
    context: pfrx.Context, asked: pfrx.Capability
) -> None:
    assert context.has_capability(asked) is any(held.grants(asked) for held in context.capabilities)


@given(
    pst.capabilities(FileCap, actions=["admin", "read"]),
    pst.capabilities(FileCap, resources=pst.paths(hostile=True)),
)
def test_admin_implies_every_action_and_read_only_itself(
    held: pfrx.Capability, asked: pfrx.Capability
) -> None:
    reaches = reference_covers(held.resource, asked.resource)
    expected = reaches and (held.action == "admin" or asked.action == "read")
    assert held.grants(asked) is expected


@settings(max_examples=50)
@given(
    st.lists(pst.envelopes(st.integers(), pst.contexts(FileCap)), max_size=10),
    pst.capabilities(FileCap, resources=pst.paths(hostile=True)),
)
def test_capability_filter_passes_exactly_the_envelopes_whose_context_grants(
    envelopes: list[pfrx.Envelope], required: pfrx.Capability
) -> None:
    lost: list[pfrx.Dropped] = []
    passed = (
        pfrx.envelopes([], pfrx.Context("nobody"))
        .pipe(ops.start_with(*envelopes), pf.capability_filter(required, on_drop=lost.append))
        .pipe(ops.to_list())
        .run()
    )
    assert passed == [e for e in envelopes if e.context.has_capability(required)]
    assert [d.item for d in lost] == [
        e for e in envelopes if not e.context.has_capability(required)
    ]
    assert {d.reason for d in lost} <= {"insufficient_capabilities"}


def test_without_hypothesis_the_strategies_say_what_to_install() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "try:\n    import pfrx.testing.strategies\n"
        "except ImportError as error:\n    print(error)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "needs hypothesis: pip install 'pfrx[test]'" in run.stdout, run.stdout + run.stderr
