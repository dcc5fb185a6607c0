"""Hypothesis strategies for property tests of pfrx pipelines.

Needs ``hypothesis`` (``pip install pfrx[test]``). Each function returns a strategy:

- [`paths`][pfrx.testing.strategies.paths]: POSIX resource paths; ``hostile=True`` adds the
  forms that attack a coverage check (``..``, ``//``, NUL, prefix siblings, look-alikes);
- [`hostile_forms`][pfrx.testing.strategies.hostile_forms]: those forms built around one path;
- [`capabilities`][pfrx.testing.strategies.capabilities] and
  [`contexts`][pfrx.testing.strategies.contexts] of a capability family;
- [`envelopes`][pfrx.testing.strategies.envelopes] of events in contexts;
- [`marble_timelines`][pfrx.testing.strategies.marble_timelines]: marble strings the kit parses.

Example:
    >>> from hypothesis import given, settings
    >>> import pfrx
    >>> from pfrx.testing import strategies as pst
    >>> FileCap = pfrx.CapabilityFamily("file", actions=("read", "admin"),
    ...                                 implies={"admin": ("read",)})
    >>> @settings(deadline=None)
    ... @given(pst.paths(), pst.paths(hostile=True))
    ... def test_a_read_grant_covers_only_its_subtree(held, asked):
    ...     if FileCap.read(held).grants(FileCap.read(asked)):
    ...         asked = pfrx.normalize_resource(asked)
    ...         assert held == "/" or asked == held or asked.startswith(held + "/")
    >>> test_a_read_grant_covers_only_its_subtree()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

try:
    from hypothesis import strategies as st
except ImportError as missing:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pfrx.testing.strategies needs hypothesis: pip install 'pfrx[test]' (or hypothesis)"
    ) from missing

from .._model import Capability, CapabilityFamily, Context, Envelope

__all__ = [
    "LOOK_ALIKES",
    "capabilities",
    "contexts",
    "envelopes",
    "hostile_forms",
    "marble_timelines",
    "paths",
    "segments",
]

# Names real trees hold, so that generated paths meet each other (a held /docs and an asked
# /docs/a.txt) instead of being unrelated random strings.
_NAMES = ("docs", "docs2", "etc", "home", "alice", "a", "b", "a.txt", "passwd", "srv", "tmp")

#: Characters that look like, or are mistaken for, a path character, and what they imitate.
LOOK_ALIKES: dict[str, str] = {
    "\u2215": "/",  # division slash
    "\uff0f": "/",  # fullwidth solidus
    "\\": "/",  # a Windows separator is a plain character in a POSIX name
    "\uff44": "d",  # fullwidth d
    "\u0435": "e",  # Cyrillic e
    "\u0430": "a",  # Cyrillic a
    "\u2024": ".",  # one dot leader
    "%2f": "/",  # URL-encoded: never decoded
    "%2e": ".",
}


def segments(hostile: bool = False) -> st.SearchStrategy[str]:
    """One path segment: a common name or any text without ``/`` or NUL (never ``.``,
    ``..`` or empty). With ``hostile=True`` also ``.``, ``..``, ``...``, the empty segment,
    names holding a NUL and names built from look-alike characters."""
    plain = st.one_of(
        st.sampled_from(_NAMES),
        st.text(
            alphabet=st.characters(exclude_characters="/\x00", exclude_categories=["Cs"]),
            min_size=1,
            max_size=8,
        ).filter(lambda s: s not in (".", "..")),
    )
    if not hostile:
        return plain
    return st.one_of(
        plain,
        st.sampled_from(["..", ".", "", "...", "..a", " ", "*"]),
        plain.map(lambda s: s + "\x00"),
        st.sampled_from(sorted(LOOK_ALIKES)).map(lambda c: f"docs{c}etc"),
    )


def paths(hostile: bool = False, *, max_depth: int = 5) -> st.SearchStrategy[str]:
    """POSIX resource paths.

    By default: normalised absolute paths (``/``, ``/docs``, ``/docs/a.txt``...), each its own
    canonical form. With ``hostile=True`` also, mixed in, every form of
    [`hostile_forms`][pfrx.testing.strategies.hostile_forms] around such a path (``..``
    climbing, ``//``, ``.``, trailing ``/``, NUL, prefix siblings, look-alikes, relative and
    empty paths, ``*``): what a coverage check must resist.
    """
    plain = st.lists(segments(), max_size=max_depth).map(lambda parts: "/" + "/".join(parts))
    if not hostile:
        return plain
    return st.one_of(plain, plain.flatmap(hostile_forms))


def hostile_forms(path: str) -> st.SearchStrategy[str]:
    """Forms of ``path`` that attack a check of it: the same path written differently, a
    sibling that shares its text, a look-alike, a path that climbs out, an invalid one.

    ``path`` is an absolute path (as [`paths`][pfrx.testing.strategies.paths] makes).
    """
    body = path.rstrip("/")
    name = body.rsplit("/", 1)[-1]
    dotted = st.lists(segments(hostile=True), min_size=1, max_size=4).map(
        lambda parts: body + "/" + "/".join(parts)
    )
    climbing = st.integers(1, 6).flatmap(
        lambda n: st.sampled_from(["", "/etc/passwd", "/" + (name or "x")]).map(
            lambda tail: body + "/.." * n + tail
        )
    )
    doubled = st.sampled_from(
        ["/" + path, path.replace("/", "//"), path + "/", path + "/.", body + "/./" + name]
    )
    with_nul = st.sampled_from([path + "\x00", "\x00" + path, body + "\x00/../etc"])
    siblings = st.sampled_from(["2", "x", ".", "..", " ", "~", ".bak", "\u0301"]).map(
        lambda suffix: (body or "/x") + suffix
    )
    look_alikes = st.sampled_from(sorted(LOOK_ALIKES)).map(
        lambda fake: _imitate(path, fake, LOOK_ALIKES[fake])
    )
    invalid = st.sampled_from(
        ["", " " + path, path.lstrip("/") or ".", "." + path, "*", "**", path.upper()]
    )
    return st.one_of(dotted, climbing, doubled, with_nul, siblings, look_alikes, invalid)


def _imitate(path: str, fake: str, real: str) -> str:
    """``path`` with its last ``real`` character replaced by ``fake`` (or ``fake`` added)."""
    at = path.rfind(real, 1)
    if at <= 0:
        return path + fake + "x"
    return path[:at] + fake + path[at + len(real) :]


def capabilities(
    family: CapabilityFamily,
    *,
    resources: st.SearchStrategy[str] | None = None,
    actions: Sequence[str] | None = None,
) -> st.SearchStrategy[Capability]:
    """Capabilities made by ``family`` (so they carry its implications), on ``resources``
    (default: [`paths`][pfrx.testing.strategies.paths], ``/`` and ``*``), for ``actions``
    (default: all of the family's)."""
    where = resources if resources is not None else st.one_of(paths(), st.just("*"))
    return st.builds(family.capability, st.sampled_from(tuple(actions or family.actions)), where)


def contexts(
    family: CapabilityFamily,
    *,
    held: st.SearchStrategy[Capability] | None = None,
    max_capabilities: int = 4,
) -> st.SearchStrategy[Context]:
    """Contexts holding up to ``max_capabilities`` capabilities of ``family`` (drawn from
    ``held``, default [`capabilities`][pfrx.testing.strategies.capabilities]), with a user,
    an optional session and a little JSON-like metadata."""
    held = held if held is not None else capabilities(family)
    return st.builds(
        Context,
        user_id=st.sampled_from(["alice", "bob", "carol"]) | st.text(min_size=1, max_size=8),
        session_id=st.none() | st.sampled_from(["s1", "s2"]) | st.text(max_size=6),
        capabilities=st.lists(held, max_size=max_capabilities),
        metadata=st.dictionaries(
            st.text(max_size=6), st.integers() | st.text(max_size=6) | st.booleans(), max_size=3
        ),
    )


def envelopes(
    events: st.SearchStrategy[Any],
    contexts: st.SearchStrategy[Context],
    *,
    timestamps: st.SearchStrategy[float] | None = None,
) -> st.SearchStrategy[Envelope]:
    """Envelopes of ``events`` in ``contexts``, stamped with finite non-negative times."""
    when = (
        timestamps
        if timestamps is not None
        else st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
    )
    return st.builds(Envelope, events, contexts, when)


def marble_timelines(
    symbols: str = "abcxyz",
    *,
    max_ticks: int = 12,
    groups: bool = True,
    ending: Sequence[str] = ("", "|", "#"),
    hot: bool = False,
) -> st.SearchStrategy[str]:
    """Marble strings [`parse`][pfrx.testing.parse] accepts and
    [`render`][pfrx.testing.render] draws back unchanged: ``-`` ticks, ``symbols`` as values,
    ``(ab)`` groups of distinct symbols, then one of ``ending`` (nothing, ``|`` or ``#``).
    With ``hot=True`` a ``^`` marks the subscription somewhere before the first value.
    No trailing ``-`` (a drawing ends at the last notification)."""
    kinds = ["tick", "value", "group"] if groups else ["tick", "value"]

    @st.composite
    def timeline(draw: st.DrawFn) -> str:
        tokens: list[str] = []
        for _ in range(draw(st.integers(0, max_ticks))):
            kind = draw(st.sampled_from(kinds))
            if kind == "tick":
                tokens.append("-")
            elif kind == "value":
                tokens.append(draw(st.sampled_from(symbols)))
            else:
                group = draw(
                    st.lists(st.sampled_from(symbols), min_size=2, max_size=3, unique=True)
                )
                tokens.append("(" + "".join(group) + ")")
        end = draw(st.sampled_from(tuple(ending)))
        text = "".join(tokens)
        text = text + end if end else text.rstrip("-")
        if hot:
            first = next((i for i, c in enumerate(text) if c != "-"), len(text))
            at = draw(st.integers(0, first))
            text = text[:at] + "^" + text[at:]
        return text

    return timeline()
