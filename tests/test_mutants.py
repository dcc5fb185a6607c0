"""Regression mutants: six breakages that once left every test green must each be caught.

Each case copies `pfrx/` to a temporary folder, applies one small change to its source (the
mutant), and runs the test that states the broken behaviour against that copy in a fresh
interpreter: the test must fail. `make mutate` runs thousands of mutants over the core
(docs/mutation.md); these six stay in `make test` because each survived once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: (name, file, original text, mutated text, the test that must fail)
MUTANTS = [
    (
        "with_capabilities replaces instead of adding",
        "pfrx/_model/context.py",
        "capabilities=self.capabilities + capabilities",
        "capabilities=capabilities",
        "tests/test_context.py::test_has_all_and_with_capabilities",
    ),
    (
        "a late drop counted twice in the metrics",
        "pfrx/metrics.py",
        "            self._dropped += n\n",
        "            self._dropped += n * (2 if reason == 'late' else 1)\n",
        "tests/eventtime/test_arguments.py::test_one_late_drop_is_counted_once_in_the_metrics",
    ),
    (
        "fused completion hooks run last to first",
        "pfrx/operators/_shared.py",
        "for hook in completion_hooks:",
        "for hook in reversed(completion_hooks):",
        "tests/operators/test_fusion.py::test_two_stateful_stages_fused_flush_in_pipeline_order",
    ),
    (
        "close() no longer leaves the registries",
        "pfrx/stream/_stream.py",
        "        self._input.close()\n        self._notify_closing()\n",
        "        self._input.close()\n",
        "tests/stream/test_faults.py"
        "::test_a_buffered_stream_on_a_test_scheduler_leaves_its_registry_on_close",
    ),
    (
        "the drop-rate health check uses >=",
        "pfrx/metrics.py",
        "or drop_rate > self.degraded_drop_rate",
        "or drop_rate >= self.degraded_drop_rate",
        "tests/test_metrics.py::test_health_thresholds",
    ),
    (
        "the buffer health check uses >=",
        "pfrx/metrics.py",
        "or snapshot.buffer_utilization > self.degraded_buffer_utilization",
        "or snapshot.buffer_utilization >= self.degraded_buffer_utilization",
        "tests/test_metrics.py::test_health_thresholds",
    ),
]


def run_against(package: Path, test: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(package)}
    # append mode: the checkout's own pfrx must not come before the mutated copy
    # -P: the checkout (the working directory) is not put on sys.path before the copy
    command = [sys.executable, "-P", "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
    command += ["--import-mode=append", "-W", "ignore::pytest.PytestAssertRewriteWarning", test]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def mutated_copy(tmp_path: Path, file: str, original: str, mutated: str) -> Path:
    package = tmp_path / "mutant"
    shutil.copytree(ROOT / "pfrx", package / "pfrx", ignore=shutil.ignore_patterns("__pycache__"))
    target = package / file
    source = target.read_text("utf-8")
    assert source.count(original) == 1, f"the mutation site moved: update {file} in this test"
    target.write_text(source.replace(original, mutated), "utf-8")
    return package


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "file", "original", "mutated", "test"), MUTANTS, ids=[m[0] for m in MUTANTS]
)
def test_the_mutant_is_killed(
    tmp_path: Path, name: str, file: str, original: str, mutated: str, test: str
) -> None:
    result = run_against(mutated_copy(tmp_path, file, original, mutated), test)
    assert result.returncode == 1, f"{name}: {test} did not fail\n{result.stdout[-2000:]}"


@pytest.mark.slow
def test_the_killing_tests_pass_on_the_unmutated_copy(tmp_path: Path) -> None:
    """The control: the same harness on an unchanged copy passes, so a kill above is the
    mutant's doing, not the harness's."""
    package = tmp_path / "copy"
    shutil.copytree(ROOT / "pfrx", package / "pfrx", ignore=shutil.ignore_patterns("__pycache__"))
    tests = sorted({m[4] for m in MUTANTS})
    env = {**os.environ, "PYTHONPATH": str(package)}
    command = [sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["--import-mode=append", *tests]
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-2000:]
