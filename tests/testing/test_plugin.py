"""The pytest plugin (entry point ``pytest11``): fixtures ``test_scheduler`` and ``marbles`` in
a user's project, and what a failing marble assertion looks like there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from reactivex.testing import TestScheduler

import pfrx.testing
from pfrx.testing import MarbleKit, MarbleMismatch

ROOT = Path(__file__).resolve().parents[2]

USER_TESTS = """
from reactivex.testing import TestScheduler
from pfrx import operators as pf
from pfrx.testing import MarbleKit


def test_fixtures_are_a_scheduler_and_a_kit_on_it(test_scheduler, marbles):
    assert isinstance(test_scheduler, TestScheduler) and test_scheduler.clock == 0
    assert isinstance(marbles, MarbleKit) and marbles.scheduler is test_scheduler
    result = marbles.run(marbles.cold("-a-b-|").pipe(pf.transform(lambda e, c: e.upper())))
    marbles.expect(result, "-A-B-|")


def test_each_test_gets_fresh_ones(test_scheduler, marbles):
    assert test_scheduler.clock == 0 and marbles.scheduler is test_scheduler
    assert not marbles.sources


def test_a_failing_expectation(marbles):
    result = marbles.run(marbles.cold("-a-b-|").pipe(pf.transform(lambda e, c: e.upper())))
    marbles.expect(result, "-A-C-|")
"""


def failure_section(output: str) -> list[str]:
    """The lines pytest prints for the one failing test."""
    start = output.index("test_a_failing_expectation ___")
    end = output.index("short test summary info")
    return output[start:end].splitlines()[1:-1]


def check_user_run(output: str, returncode: int) -> None:
    assert returncode == 1, output
    assert re.search(r"1 failed, 2 passed", output), output
    failure = failure_section(output)
    text = "\n".join(failure)
    # the aligned diagrams, under the public name of the exception
    assert "E       pfrx.testing.MarbleMismatch: marbles differ" in text, text
    expected = next(line for line in failure if "expected: " in line)
    actual = next(line for line in failure if "actual:   " in line)
    assert expected.index("-A-C-|") == actual.index("-A-B-|"), text
    # the test's own line, none of pfrx's frames
    assert 'marbles.expect(result, "-A-C-|")' in text
    assert "pfrx/testing" not in text and "_kit.py" not in text, text
    assert len(failure) <= 30, f"{len(failure)} lines for one failure:\n{text}"


def test_the_fixtures_are_fresh_per_test(test_scheduler: TestScheduler, marbles: MarbleKit) -> None:
    assert marbles.scheduler is test_scheduler and test_scheduler.clock == 0


def test_marble_mismatch_is_public_under_its_name() -> None:
    assert pfrx.testing.MarbleMismatch is MarbleMismatch
    assert issubclass(MarbleMismatch, AssertionError)
    assert f"{MarbleMismatch.__module__}.{MarbleMismatch.__qualname__}" == (
        "pfrx.testing.MarbleMismatch"
    )


def test_a_kit_takes_only_a_test_scheduler() -> None:
    with pytest.raises(TypeError, match="TestScheduler"):
        MarbleKit(scheduler=object())  # type: ignore[arg-type]


def test_the_plugin_in_a_users_test_run(tmp_path: Path) -> None:
    """A fresh pytest run of a user's tests: the plugin comes from pfrx's entry point when pfrx
    is installed (``make test``), else it is loaded by name, as the entry point would."""
    (tmp_path / "test_user.py").write_text(USER_TESTS, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    installed = bool(entry_points(group="pytest11", name="pfrx"))
    load = [] if installed else ["-p", "pfrx.testing.plugin"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *load, "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    check_user_run(run.stdout + run.stderr, run.returncode)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_project_that_only_pip_installs_pfrx_gets_the_fixtures(tmp_path: Path) -> None:
    """A fresh virtual environment, ``pip install pfrx pytest``, a test file using the fixtures
    without importing them: the ``pytest11`` entry point registers the plugin."""
    project = tmp_path / "pfrx-src"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT / "pfrx", project / "pfrx", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-qq",
            str(project),
            "pytest",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    user = tmp_path / "user-project"
    user.mkdir()
    (user / "test_user.py").write_text(USER_TESTS, encoding="utf-8")
    run = subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=user,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = run.stdout + run.stderr
    assert re.search(r"^plugins:.*\bpfrx-", output, re.M), output  # loaded by its entry point
    check_user_run(output, run.returncode)
