"""Write docs/mutation.md from a finished `mutmut run` (called by `make mutate`).

mutmut 3 keeps each source file's verdicts in `mutants/<path>.meta` (JSON: mutant name -> the exit
code of the tests that ran against it). This script turns them into one table per core module and
lists every surviving mutant with its diff, unless `tools/mutation_equivalent.txt` explains it as
equivalent (same observable behaviour, so no test can kill it).

Score = (killed + timeout) / (all - equivalent). A mutant that makes the tests hang past
mutmut's time limit is detected (in `make test`, pytest-timeout fails that test). A mutant no
test reaches ("no tests") counts as not killed: code that no test runs is code whose breakage
nobody would notice.
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = ROOT / "tools" / "mutation_equivalent.txt"
OUT = ROOT / "docs" / "mutation.md"
NOTES = ROOT / "tools" / "mutation_notes.md"
SURVIVORS = ROOT / "docs" / "mutation-survivors.txt"
TARGET = 0.90

# mutmut's own meaning of a worker's exit code (mutmut/stats.py).
STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    36: "timeout",
    37: "type check",
    24: "timeout",
    -24: "timeout",
    152: "timeout",
    255: "timeout",
    None: "not checked",
}
CORE = ("pfrx/_model/", "pfrx/metrics.py", "pfrx/operators/", "pfrx/stream")


def module_of(meta: Path) -> str:
    rel = meta.relative_to(ROOT / "mutants").as_posix()
    return rel.removesuffix(".meta")


def load_equivalents() -> dict[str, str]:
    """Every explained mutant, from ``tools/mutation_equivalent.txt`` and the files of
    ``tools/mutation_equivalent/`` (one per room, so parallel work never edits one file)."""
    found: dict[str, str] = {}
    folder = EQUIVALENT_FILE.with_suffix("")
    files = [EQUIVALENT_FILE, *(sorted(folder.glob("*.txt")) if folder.is_dir() else [])]
    for path in files:
        if not path.exists():
            continue
        for line in path.read_text("utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, why = line.partition(" ")
                found[name] = why.strip() or "equivalent"
    return found


def diff_of(name: str) -> str:
    # mutmut's own diff, read in its mutants/ folder where it expects to run.
    import os

    from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant

    here = os.getcwd()
    try:
        os.chdir(ROOT)
        return str(get_diff_for_mutant(name, path=find_mutant(name).path))
    except Exception as exc:  # a report must still be written
        return f"(diff unavailable: {type(exc).__name__})"
    finally:
        os.chdir(here)


def main() -> int:
    metas = sorted((ROOT / "mutants").rglob("*.py.meta"))
    if not metas:
        print("no mutmut results under mutants/: run `make mutate`", file=sys.stderr)
        return 2
    equivalents = load_equivalents()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for meta in metas:
        module = module_of(meta)
        data = json.loads(meta.read_text("utf-8"))
        for name, code in data.get("exit_code_by_key", {}).items():
            status = STATUS.get(code, "suspicious")
            if name in equivalents and status != "killed":
                status = "equivalent"
            counts[module][status] += 1
            if status in ("survived", "no tests", "suspicious"):
                survivors[module].append(name)

    lines = [
        "# Mutation testing",
        "",
        "`make mutate` breaks the core on purpose, one small change (a *mutant*) at a time, with",
        "[mutmut](https://github.com/boxed/mutmut) 3, and runs the tests that reach the changed",
        "function. A mutant the tests notice is *killed*; one they don't *survived*: a behaviour",
        "no test states. The target is at least 90% of non-equivalent mutants killed in every",
        "core module. This page is written by `tools/mutation_report.py` from the last run.",
        "",
        "{progress}",
        "",
        "Modules are under `pfrx/`; the score is of the non-equivalent mutants checked "
        "(a timeout counts as killed).",
        "",
        "| module | score | mutants | checked | killed | survived | no test | timeout | "
        "equivalent |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    below: list[str] = []
    all_total = all_checked = 0
    for module in sorted(counts):
        c = counts[module]
        total = sum(c.values())
        considered = total - c["equivalent"] - c["skipped"] - c["not checked"]
        score = (c["killed"] + c["timeout"]) / considered if considered else 1.0
        mark = "" if score >= TARGET else " (below target)"
        if score < TARGET and module.startswith(CORE):
            below.append(module)
        # One decimal short of 100%, so a module with survivors never reads as 100%.
        shown = (f"{score:.0%}" if score == 1 else f"{math.floor(score * 1000) / 10:.1f}%") + mark
        shown = shown if considered else "not run"
        checked = total - c["not checked"]
        all_total += total
        all_checked += checked
        lines.append(
            f"| `{module.removeprefix('pfrx/')}` | {shown} | {total} | {checked} | "
            f"{c['killed']} | {c['survived']} | {c['no tests']} | {c['timeout']} | "
            f"{c['equivalent']} |"
        )
    import subprocess

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    progress = (
        f"The last run (of commit `{commit}`) checked {all_checked:,} of {all_total:,} mutants"
        + (
            "."
            if all_checked == all_total
            else " (it was stopped before the end: the rest are counted as not checked)."
        )
    )
    lines = [line.replace("{progress}", progress) for line in lines]
    lines += ["", "## Surviving mutants", ""]
    if not any(survivors.values()):
        lines.append("None: every non-equivalent mutant was killed.")
    diffs: list[str] = []
    for module in sorted(survivors):
        names = survivors[module]
        if not names:
            continue
        lines += [f'??? note "`{module}`: {len(names)} not killed"', ""]
        lines += [f"    - `{name}`" for name in names]
        lines.append("")
        for name in names:
            diffs += [f"# {name}", diff_of(name), ""]
    if diffs:
        lines += [
            "Each survivor's diff (what the mutant changed) is in",
            "[mutation-survivors.txt](mutation-survivors.txt).",
            "",
        ]
    SURVIVORS.write_text("\n".join(diffs) + "\n", "utf-8")
    if equivalents:
        lines += [
            "## Explained as equivalent",
            "",
            "| mutant | why no test can kill it |",
            "| --- | --- |",
        ]
        lines += [f"| `{n}` | {why} |" for n, why in sorted(equivalents.items())]
    if NOTES.exists():  # what happened since the run, written by hand
        lines += ["", NOTES.read_text("utf-8").strip()]
    OUT.write_text("\n".join(lines) + "\n", "utf-8")
    below_text = ", ".join(below) or "none"
    print(f"wrote {OUT.relative_to(ROOT)}; modules below {TARGET:.0%}: {below_text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
