"""What every benchmark module shares: rows, timing, peak memory, and the printed table."""

from __future__ import annotations

import gc
import importlib
import resource
import statistics
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One line of the table: a benchmark, its figure, and the target it is held to."""

    group: str
    name: str
    value: str
    target: str = ""
    met: bool | None = None

    @property
    def verdict(self) -> str:
        return "" if self.met is None else ("met" if self.met else "MISSED")


def best_and_median(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Seconds for ``fn``: the best and the median of ``runs`` runs (GC between runs)."""
    times = []
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def interleaved(
    candidates: dict[str, Callable[[], object]], runs: int
) -> dict[str, tuple[float, float]]:
    """Best and median seconds for each candidate, the candidates taking turns each round."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(runs):
        for name, fn in candidates.items():
            gc.collect()
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# The printed table stays within 100 columns: groups are never wrapped (they are short
# names), the other cells wrap onto more lines within these widths.
_LINE = 100
_RESULT, _TARGET, _MET = 28, 12, 6


def print_table(rows: list[Row]) -> None:
    """The rows as a plain-text table at most 100 columns wide: long cells wrap."""
    headers = ("group", "benchmark", "result", "target", "met?")
    cells = [headers] + [(r.group, r.name, r.value, r.target, r.verdict) for r in rows]
    group = max(len(row[0]) for row in cells)
    name = max(16, _LINE - 8 - group - _RESULT - _TARGET - _MET)
    limits = (group, name, _RESULT, _TARGET, _MET)
    widths = [min(limit, max(len(str(row[i])) for row in cells)) for i, limit in enumerate(limits)]
    for index, row in enumerate(cells):
        wrapped = [
            textwrap.wrap(str(cell), width, break_on_hyphens=False) or [""]
            for cell, width in zip(row, widths, strict=True)
        ]
        for line in range(max(len(lines) for lines in wrapped)):
            parts = [
                (lines[line] if line < len(lines) else "").ljust(width)
                for lines, width in zip(wrapped, widths, strict=True)
            ]
            print("  ".join(parts).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))


def markdown_table(rows: list[Row]) -> str:
    """The rows as a Markdown table, for docs/benchmarks.md."""
    lines = ["| group | benchmark | result | target | met? |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        cells = (r.group, r.name, r.value, r.target, r.verdict)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def run_group(name: str, quick: bool) -> list[Row]:
    """The rows of ``benchmarks/<name>.py`` (called in a fresh interpreter per group)."""
    module = importlib.import_module(f"benchmarks.{name}")
    rows: list[Row] = module.run(quick)
    return rows
