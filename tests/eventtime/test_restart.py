"""A process killed between its checkpoint and its completion, restarted from the
checkpoint file, finishes with the ledger of an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("restart_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(WORKER), *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("checkpoint_at", "die_after"), [(40, 25), (0, 3), (77, 0)])
def test_a_killed_process_restored_from_its_checkpoint_gives_the_same_ledger(
    tmp_path: Path, checkpoint_at: int, die_after: int
) -> None:
    rng = random.Random(17)
    events, now = [], 0
    for _ in range(120):  # mostly advancing, some out of order, some late
        now += rng.choice([0, 1, 1, 2, 3])
        events.append([rng.choice("abc"), now - rng.choice([0, 0, 0, 2, 7, 15])])
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps(events))

    whole = tmp_path / "whole.jsonl"
    done = run(inputs, whole, tmp_path / "unused.ckpt")
    assert done.returncode == 0, done.stderr

    ledger, saved = tmp_path / "ledger.jsonl", tmp_path / "state.ckpt"
    killed = run(inputs, ledger, saved, "--checkpoint-at", checkpoint_at, "--die-after", die_after)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert saved.exists()
    resumed = run(inputs, ledger, saved, "--resume")
    assert resumed.returncode == 0, resumed.stderr

    expected = whole.read_text().splitlines()
    assert ledger.read_text().splitlines() == expected
    reasons = {json.loads(line)[-1] for line in expected if json.loads(line)[0] != "time"}
    revisions = [json.loads(line)[-1] for line in expected if json.loads(line)[0] == "time"]
    assert "late" in reasons and max(revisions) >= 1  # late drops and late firings happened
