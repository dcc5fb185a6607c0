"""Run every ``benchmarks/bench_*.py`` module and print one table.

Each module defines ``run(quick: bool) -> list[Row]``. ``--quick`` shrinks the workloads
(used by the test suite to prove the benchmarks still run); ``--only NAME`` runs one module.
"""

from __future__ import annotations

import argparse
import multiprocessing
import pkgutil
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ._table import Row, markdown_table, print_table, run_group


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="small workloads, for smoke tests")
    parser.add_argument("--only", help="run only benchmarks/bench_ONLY.py")
    parser.add_argument(
        "--markdown", action="store_true", help="also print the table as Markdown (for docs)"
    )
    args = parser.parse_args(argv)
    folder = Path(__file__).parent
    names = sorted(
        m.name for m in pkgutil.iter_modules([str(folder)]) if m.name.startswith("bench_")
    )
    if args.only:
        names = [n for n in names if n == f"bench_{args.only}"]
    print(
        f"pfrx benchmarks on {platform.machine()}, Python {platform.python_version()}, "
        f"{platform.system()} ({'quick' if args.quick else 'full'} run)"
    )
    rows: list[Row] = []
    started = time.perf_counter()
    # Each group runs in a fresh interpreter (as pyperf runs each benchmark), so the heap
    # and threads one group leaves behind never tax the next one's figures.
    context = multiprocessing.get_context("spawn")
    for name in names:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            rows.extend(pool.submit(run_group, name, args.quick).result())
    print_table(rows)
    print(f"({time.perf_counter() - started:.1f}s)")
    if args.markdown:
        print()
        print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
