"""The built docs site, for the checks in this folder.

``make test`` builds it into ``site/`` (``make docs``) before pytest runs; when ``site/`` is
missing or older than one of its sources, the first test that needs it builds it with the same
Makefile recipe, so these checks never skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "site"
SOURCES = ("mkdocs.yml", "docs", "operators", "notebooks", "pfrx", "README.md")


def build_docs(
    config: Path, site: Path, *, cwd: Path = ROOT, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run the Makefile's docs build (``make build-docs``) on ``config`` into ``site``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(ROOT),
            "build-docs",
            f"PY={sys.executable}",
            f"MKDOCS_YML={config}",
            f"SITE={site}",
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _newest_source() -> float:
    newest = 0.0
    for name in SOURCES:
        path = ROOT / name
        files = [path] if path.is_file() else path.rglob("*")
        for file in files:
            if (
                file.is_file()
                and "__pycache__" not in file.parts
                and ".ipynb_checkpoints" not in file.parts
            ):
                newest = max(newest, file.stat().st_mtime)
    return newest


@pytest.fixture(scope="session")
def site() -> Path:
    """``site/``, built now if it is missing or older than its sources."""
    index = SITE / "index.html"
    if not index.exists() or index.stat().st_mtime < _newest_source():
        result = build_docs(ROOT / "mkdocs.yml", SITE)
        assert result.returncode == 0, f"the docs build failed:\n{result.stdout}{result.stderr}"
    return SITE
