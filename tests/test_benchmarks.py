"""``make bench`` keeps working: every benchmark runs on small workloads and its
implementations agree (each benchmark asserts its own checksums and ledgers)."""

from __future__ import annotations

import pytest

from benchmarks.__main__ import main


def test_every_benchmark_runs_on_a_quick_workload(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick"]) == 0
    table = capsys.readouterr().out
    groups = (
        "operators",
        "pipeline",
        "windows",
        "backpressure",
        "model",
        "stream",
        "observe",
        "nats",
    )
    for group in groups:
        assert group in table
