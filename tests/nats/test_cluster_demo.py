"""``pfrx demo-cluster`` prints a balanced ledger after a SIGKILL."""

from __future__ import annotations

import subprocess
import sys

from .helpers import ROOT


def test_demo_cluster_prints_a_balanced_ledger() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "pfrx.nats.cluster_demo", "--inputs", "800", "--ack-wait", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert process.returncode == 0, process.stdout + process.stderr
    out = process.stdout
    assert "SIGKILL worker" in out and "missing 0, duplicated 0" in out
    assert "balanced: every input exactly once in output or dropped" in out
