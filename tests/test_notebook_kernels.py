"""``pytest --nbmake notebooks`` runs each notebook in a kernel: ``notebooks/conftest.py`` makes
those kernels use CurveZMQ keys, so none of them warns "Kernel is running over TCP without
encryption" (pytest captures it, but not under ``-s``, and a failing notebook's report shows
it). ``docs/_hooks/kernels.py`` does the same for the docs build, which printed it 6 times."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_notebook_kernels_run_without_the_tcp_warning(tmp_path: Path) -> None:
    shutil.copy(ROOT / "notebooks" / "conftest.py", tmp_path / "conftest.py")
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "c0",
                "metadata": {},
                "outputs": [],
                "source": ["assert 6 * 7 == 42"],
            }
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (tmp_path / "n.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            "--nbmake",
            "n.ipynb",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "1 passed" in output
    assert "without encryption" not in output, output
