"""``python -m pfrx demo``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pfrx.cli import build_parser, main


def test_demo_exits_zero_and_prints_a_balanced_ledger(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--intents", "5000"]) == 0
    out = capsys.readouterr().out
    assert "ledger: 8 received = 4 passed + 4 dropped: balanced" in out
    assert "alice reads /docs/report.txt" in out
    # the path that climbs out of /docs is refused, and says why
    assert "alice read /docs/../etc/passwd: insufficient_capabilities" in out
    assert "bob read /docs/publications/draft.md: insufficient_capabilities" in out
    assert "root write /system/kernel: system_directory_protected (by transform)" in out
    assert "metrics: emitted=4 health=healthy" in out


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "demo" in capsys.readouterr().err


def test_an_unknown_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    assert build_parser().prog == "pfrx"


def test_python_dash_m_pfrx_demo() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pfrx", "demo", "--intents", "5000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "ledger: 8 received = 4 passed + 4 dropped: balanced" in done.stdout
