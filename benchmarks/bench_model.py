"""``Context.has_capability`` on the hot path: compiled and uncompiled decisions per second.

The context holds ten capabilities over three families (the shape of a real session); the
questions mix granted and refused paths, including ``..`` climbs and prefix siblings.
"""

from __future__ import annotations

from collections.abc import Callable

from pfrx import Capability, CapabilityFamily, Context

from ._table import Row, interleaved

FileCap = CapabilityFamily(
    "file",
    actions=("read", "write", "delete", "admin"),
    implies={"admin": ("read", "write", "delete")},
)
MailCap = CapabilityFamily("mail", actions=("read", "send"), implies={"send": ("read",)})
QueueCap = CapabilityFamily("queue", actions=("consume", "publish"))

CACHED_TARGET = 1_000_000.0  # decisions per second answered from the cache


def _context() -> Context:
    held = [
        FileCap.read("/docs"),
        FileCap.write("/docs/alice"),
        FileCap.delete("/tmp/alice"),
        FileCap.read("/srv/shared"),
        FileCap.admin("/home/alice"),
        MailCap.read("/inbox"),
        MailCap.send("/outbox"),
        QueueCap.consume("/jobs"),
        QueueCap.publish("/jobs/results"),
        FileCap.read("/etc/motd"),
    ]
    assert len(held) == 10
    return Context("alice", "s1", held)


def _questions(count: int) -> list[Capability]:
    questions: list[Capability] = []
    for i in range(count):
        match i % 8:
            case 0:
                questions.append(FileCap.read(f"/docs/report-{i}.txt"))
            case 1:
                questions.append(FileCap.write(f"/docs/bob/{i}"))  # refused
            case 2:
                questions.append(FileCap.read(f"/docs/../etc/passwd-{i}"))  # refused
            case 3:
                questions.append(FileCap.delete(f"/home/alice/cache/{i}"))  # by implication
            case 4:
                questions.append(MailCap.read(f"/outbox/{i}"))  # by implication
            case 5:
                questions.append(QueueCap.publish(f"/jobs2/{i}"))  # prefix sibling: refused
            case 6:
                questions.append(Capability("db", "read", f"/t/{i}"))  # unknown family
            case _:
                questions.append(FileCap.read(f"/srv/shared//a/./b/{i}"))
    return questions


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} decisions/s"


def run(quick: bool) -> list[Row]:
    ctx = _context()
    questions = _questions(256)
    repeat = 40 if quick else 2_000
    calls = repeat * len(questions)
    expected = [any(cap.grants(q) for cap in ctx.capabilities) for q in questions]
    assert [ctx.has_capability(q) for q in questions] == expected  # compiles the coverages
    granted = sum(expected)

    has = ctx.has_capability
    held = ctx.capabilities

    def compiled() -> None:
        for _ in range(repeat):
            for q in questions:
                has(q)

    def uncompiled() -> None:  # the same decision, the coverage rebuilt for every question
        coverage = ctx.coverage
        for _ in range(repeat):
            for q in questions:
                coverage(q.family, q.action).covers(q.normalized_resource)

    def grants_scan() -> None:  # the naive decision: every held capability's grants()
        for _ in range(repeat):
            for q in questions:
                any(cap.grants(q) for cap in held)

    fresh_count = 2_000 if quick else 10_000  # the family's cache holds them all
    paths = [f"/docs/fresh/{i}" for i in range(fresh_count)]

    def fresh() -> None:  # a new path every time: make the capability, normalise, decide
        local = Context("alice", "s1", held)
        ask = local.has_capability
        for path in paths:
            ask(Capability("file", "read", path))

    def interned() -> None:  # the same paths asked again through the family: no new object
        ask = ctx.has_capability
        read = FileCap.read
        for path in paths:
            ask(read(path))

    candidates: dict[str, Callable[[], object]] = {
        "compiled": compiled,
        "uncompiled": uncompiled,
        "grants_scan": grants_scan,
    }
    runs = 2 if quick else 5
    timings = interleaved(candidates, runs)
    interned()  # fills the family's cache
    per_path = interleaved({"fresh": fresh, "interned": interned}, runs)

    compiled_rate = calls / timings["compiled"][0]
    group = "model"
    note = f"10 held, {len(questions)} questions, {granted} granted"
    return [
        Row(
            group,
            f"has_capability, compiled coverage ({note})",
            _rate(calls, timings["compiled"][0]),
            f">= {CACHED_TARGET:,.0f}/s",
            compiled_rate >= CACHED_TARGET,
        ),
        Row(group, "coverage rebuilt per question", _rate(calls, timings["uncompiled"][0])),
        Row(group, "any(held.grants(q)) naive scan", _rate(calls, timings["grants_scan"][0])),
        Row(group, "new Capability per path + decide", _rate(fresh_count, per_path["fresh"][0])),
        Row(
            group, "FileCap.read(path) again + decide", _rate(fresh_count, per_path["interned"][0])
        ),
    ]
