"""Resource normalisation and whole-segment coverage: these are security checks.

Every hostile case is checked three ways: ``pfrx.covers``, ``Capability.grants`` and
``Context.has_capability`` (cached and uncached), and all three must agree.
"""

from __future__ import annotations

import posixpath
from pathlib import PurePosixPath

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import pfrx
from pfrx import Capability, Context, covers, normalize_resource

# (held resource, required resource, granted?)
HOSTILE_CASES: list[tuple[str, str, bool]] = [
    # whole segments, never string prefixes
    ("/docs", "/docs", True),
    ("/docs", "/docs/a.txt", True),
    ("/docs", "/docs2/a.txt", False),
    ("/docs", "/docs2", False),
    ("/docs", "/docsx", False),
    ("/docs", "/doc", False),
    ("/docs", "/docs..", False),
    ("/docs", "/docs.", False),
    ("/docs/a", "/docs", False),
    ("/a/b", "/a/bc", False),
    ("/a/b", "/a/b/c/d/e", True),
    # climbing with ..
    ("/docs", "/docs/../etc/passwd", False),
    ("/docs", "/docs/..", False),
    ("/docs", "/docs/a/../../etc", False),
    ("/docs", "/docs/" + "../" * 50 + "etc", False),
    ("/docs", "/docs/../docs/a", True),
    ("/docs", "/docs/a/../../docs/b", True),
    ("/docs", "/docs/a/..", True),
    ("/a/b", "/a/b/c/../../b/d", True),
    ("/a/b", "/a/b/c/../../../a/b", True),
    ("/a/b", "/a/b/c/../../../etc", False),
    ("/docs", "/../../docs/a", True),
    ("/../docs", "/docs/a", True),
    ("/docs/..", "/etc", True),  # the held resource normalises to "/"
    # dots that are not . or .. are ordinary names
    ("/docs", "/docs/...", True),
    ("/docs", "/docs/..a", True),
    ("/docs", "/docs/.hidden", True),
    # //, /. and trailing slashes
    ("/docs", "/docs//a", True),
    ("/docs", "//docs/a", True),
    ("/docs", "/docs/./a", True),
    ("/docs", "/./docs/.", True),
    ("/docs", "/docs/", True),
    ("/docs/", "/docs/a", True),
    ("/docs/", "/docs2", False),
    ("//docs//", "/docs", True),
    ("///", "/x", True),
    # relative, empty, NUL
    ("/docs", "docs/a", False),
    ("/docs", "./docs/a", False),
    ("/docs", "../docs/a", False),
    ("/docs", " /docs/a", False),
    ("/docs", "\n/docs/a", False),
    ("/docs", "", False),
    ("/docs", "/docs/a\x00", False),
    ("/docs", "/docs\x00/../etc", False),
    ("/docs", "\x00", False),
    ("docs", "docs", False),
    ("docs", "/docs", False),
    ("", "", False),
    ("", "/docs", False),
    ("/docs\x00", "/docs\x00", False),
    ("/docs\x00", "/docs", False),
    # the root and the wildcard
    ("/", "/", True),
    ("/", "/anything/at/all", True),
    ("/", "/../../..", True),
    ("/", "relative", False),
    ("/", "", False),
    ("/", "*", False),
    ("/", "/\x00", False),
    ("*", "*", True),
    ("*", "/etc/passwd", True),
    ("*", "/", True),
    ("*", "relative", False),
    ("*", "", False),
    ("*", "\x00", False),
    ("*", "**", False),
    ("/docs", "*", False),
    ("/docs", "/", False),
    ("**", "/docs", False),
    ("*/", "/docs", False),
    # no globbing, no decoding, no case folding, no other separators
    ("/docs/*", "/docs/a", False),
    ("/docs", "/docs/*", True),
    ("/docs", "/*", False),
    ("/docs", "/DOCS/a", False),
    ("/docs", "/docs /a", False),
    ("/docs", "/docs%2f..%2fetc", False),
    ("/docs", "/docs/%2e%2e/etc", True),
    ("/docs", "/docs\\..\\etc", False),
    ("/docs", "/docs/\\..\\..\\etc", True),
    ("/docs", "/\uff44ocs/a", False),  # fullwidth d
    ("/docs", "/docs\u2215..\u2215etc", False),  # division slash is not a separator
    ("/docs", "/docs/\u202e", True),
    ("/d\u00e9", "/de\u0301/x", False),  # no unicode normalisation
]


def test_the_table_is_big_enough() -> None:
    assert len(HOSTILE_CASES) >= 40
    assert len(set(HOSTILE_CASES)) == len(HOSTILE_CASES)


@pytest.mark.parametrize(("held", "required", "granted"), HOSTILE_CASES)
def test_hostile_coverage(held: str, required: str, granted: bool) -> None:
    assert covers(held, required) is granted
    held_cap = Capability("file", "read", held)
    required_cap = Capability("file", "read", required)
    assert held_cap.grants(required_cap) is granted
    ctx = Context("mallory", capabilities=[held_cap])
    assert ctx.has_capability(required_cap) is granted
    assert ctx.has_capability(required_cap) is granted  # from the decision cache
    assert Context("mallory", capabilities=[held_cap]).has_all([required_cap]) is granted


@pytest.mark.parametrize(
    ("resource", "normalised"),
    [
        ("/", "/"),
        ("/docs", "/docs"),
        ("//a//b/", "/a/b"),
        ("/a/./b/.", "/a/b"),
        ("/a/b/..", "/a"),
        ("/..", "/"),
        ("/../..", "/"),
        ("/a/../..", "/"),
        ("/.", "/"),
        ("/...", "/..."),
        ("/*", "/*"),
        ("*", "*"),
        ("", None),
        ("a", None),
        ("./a", None),
        ("**", None),
        ("*/a", None),
        ("/a\x00", None),
        ("\x00", None),
    ],
)
def test_normalize_resource(resource: str, normalised: str | None) -> None:
    assert normalize_resource(resource) == normalised
    assert pfrx.normalize_resource is normalize_resource


@pytest.mark.parametrize(
    "bad", [None, b"/docs", 1, 1.5, ["/docs"], ("/docs",), PurePosixPath("/docs"), object()]
)
def test_non_string_resources_raise_type_error_never_grant(bad: object) -> None:
    with pytest.raises(TypeError, match="resource must be a str"):
        normalize_resource(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a str"):
        covers("/docs", bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a str"):
        covers(bad, "/docs")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Capability\.resource must be a str"):
        Capability("file", "read", bad)  # type: ignore[arg-type]


class _LyingStr(str):
    """A str subclass that claims to equal everything (and hashes like ``/docs/a``)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return hash("/docs/a")

    def startswith(self, *args: object) -> bool:  # type: ignore[override]
        return True


def test_a_lying_str_subclass_is_judged_by_its_characters() -> None:
    # Before the fix, ``_LyingStr("/etc/passwd") == "*"`` made it normalise to the wildcard.
    evil = _LyingStr("/etc/passwd")
    assert normalize_resource(evil) == "/etc/passwd"
    assert type(normalize_resource(evil)) is str
    assert not covers("/docs", evil)
    assert not covers(evil, "/docs/a")
    assert normalize_resource("/docs/a") == "/docs/a"  # the shared cache is not poisoned
    cap = Capability(_LyingStr("file"), _LyingStr("read"), _LyingStr("/etc/passwd"))
    assert type(cap.family) is str
    assert type(cap.action) is str
    assert type(cap.resource) is str
    docs = Context("alice", capabilities=[Capability("file", "read", "/docs")])
    assert not docs.has_capability(cap)
    assert not Capability("file", "read", "/docs").grants(cap)
    assert not Capability("other", "write", "/docs").grants(cap)


# --- properties --------------------------------------------------------------------------

SEGMENT = st.one_of(
    st.sampled_from(["a", "b", "docs", "docs2", "..", ".", "", "...", "*", "x y", "\u00fc", "\\"]),
    st.text(
        alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
        max_size=4,
    ),
)
PLAIN_SEGMENT = st.text(
    alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=4,
).filter(lambda s: s not in (".", ".."))

PATH = st.lists(SEGMENT, max_size=8).map(lambda segments: "/" + "/".join(segments))
PLAIN_PATH = st.lists(PLAIN_SEGMENT, max_size=5).map(lambda segments: "/" + "/".join(segments))
ANY_TEXT = st.text(max_size=30)  # NUL, surrogates, newlines, anything
RESOURCE = st.one_of(PATH, ANY_TEXT, st.just("*"), st.just("/"))


def _reference_normalise(path: str) -> str:
    # posixpath.normpath keeps a leading '//' (POSIX leaves it implementation defined).
    return posixpath.normpath("/" + path.lstrip("/"))


def _inside(held: str, required: str) -> bool:
    return held == "/" or required == held or required.startswith(held + "/")


@given(PATH)
def test_normalisation_matches_posixpath(path: str) -> None:
    assert normalize_resource(path) == _reference_normalise(path)


@given(RESOURCE)
def test_normalisation_is_idempotent(resource: str) -> None:
    normalised = normalize_resource(resource)
    if normalised is not None:
        assert normalize_resource(normalised) == normalised
        assert normalised == "*" or normalised.startswith("/")
        assert "\x00" not in normalised
        assert "//" not in normalised
        assert normalised == "/" or not normalised.endswith("/")


@given(RESOURCE, RESOURCE)
def test_unicode_and_weird_characters_never_crash(held: str, required: str) -> None:
    result = covers(held, required)
    assert isinstance(result, bool)
    assert Capability("f", "a", held).grants(Capability("f", "a", required)) is result
    assert (
        Context("u", capabilities=[Capability("f", "a", held)]).has_capability(
            Capability("f", "a", required)
        )
        is result
    )


@given(PATH)
def test_coverage_is_reflexive_for_valid_paths(path: str) -> None:
    assert covers(path, path)
    assert covers("/", path)
    assert covers("*", path)


@given(ANY_TEXT)
def test_invalid_required_resources_are_never_covered(text: str) -> None:
    assume(text != "*" and (not text.startswith("/") or "\x00" in text))
    for held in ("*", "/", text, "/" + text):
        assert not covers(held, text)


@given(PATH, st.lists(SEGMENT, max_size=4), st.lists(SEGMENT, max_size=4), PATH)
def test_coverage_is_transitive(
    a: str, more: list[str], even_more: list[str], unrelated: str
) -> None:
    b = a + "/" + "/".join(more)
    c = b + "/" + "/".join(even_more)
    for x, y, z in ((a, b, c), (a, unrelated, c), (unrelated, b, c), (a, b, unrelated)):
        if covers(x, y) and covers(y, z):
            assert covers(x, z)


@given(RESOURCE, RESOURCE)
def test_a_capability_never_covers_a_path_outside_its_subtree(held: str, required: str) -> None:
    if covers(held, required):
        h = normalize_resource(held)
        r = normalize_resource(required)
        assert h is not None
        assert r is not None
        assert h == "*" or _inside(h, r)


@given(PLAIN_PATH, st.lists(SEGMENT, max_size=10))
def test_dotdot_never_climbs_out_of_a_held_subtree(held: str, suffix: list[str]) -> None:
    required = held + "/" + "/".join(suffix)
    normalised = normalize_resource(required)
    assert normalised is not None
    if covers(held, required):
        assert _inside(normalize_resource(held) or "", normalised)
    else:
        # Not covered only if the suffix climbed out: never for a suffix free of '..'.
        assert ".." in suffix


@given(PLAIN_PATH.filter(lambda p: p != "/"), PLAIN_SEGMENT)
def test_a_sibling_sharing_a_string_prefix_is_never_covered(held: str, extra: str) -> None:
    assert not covers(held, held + extra)
    assert not covers(held, held + extra + "/x")
    assert covers(held, held + "/" + extra)


def _retained_after(work: object) -> int:
    """Bytes still allocated once ``work()`` ran and its own references are gone."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()  # type: ignore[operator]
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_the_normalisation_cache_is_bounded_by_bytes_not_entries() -> None:
    from pfrx._model import resources

    def hostile() -> None:
        for i in range(3000):  # 3,000 distinct 16 KB paths: 48 MB went through
            normalize_resource(f"/{i}/" + "x" * 16_000)
            normalize_resource(f"/{i}//" + "y" * 16_000)  # not normal: two strings per entry

    retained = _retained_after(hostile)
    assert retained < resources.NORMALIZE_CACHE_BYTES + (1 << 20)
    assert resources._normalized.used <= resources.NORMALIZE_CACHE_BYTES


def test_a_bounded_cache_never_holds_more_than_its_limit() -> None:
    from pfrx._model.resources import BoundedCache

    cache: BoundedCache[int, str] = BoundedCache(1000)
    for i in range(100):
        cache.put(i, "v", 100)
        assert cache.used <= 1000
    assert 0 < len(cache) <= 1000 // 164
    cache.put(-1, "huge", 5000)  # bigger than the whole cache: not kept
    assert cache.get(-1) is None
