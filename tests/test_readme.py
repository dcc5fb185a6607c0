"""The README's example runs as shown and passes ``mypy --strict``: a user who pastes it into
a typed project gets no error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def examples() -> list[str]:
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)
    assert blocks, "the README shows no Python example"
    return blocks


def test_readme_python_examples_run() -> None:
    namespace: dict[str, object] = {"__name__": "readme"}
    for code in examples():
        exec(compile(code, str(README), "exec"), namespace)


@pytest.mark.timeout(300)
def test_readme_example_passes_mypy_strict(tmp_path: Path) -> None:
    example = tmp_path / "readme_example.py"
    example.write_text("\n".join(examples()), encoding="utf-8")
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            str(example),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
