"""The demo's substrate run on a small workload: report sections and a balanced ledger."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from pfrx.cli import build_parser
from pfrx.demo import make_users, make_workload, run_demo


@pytest.mark.parametrize("strategy", ["drop_oldest", "block", "adaptive"])
def test_demo_balances_its_ledger(
    strategy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_parser().parse_args(
        [
            "demo",
            "--intents",
            "3000",
            "--users",
            "40",
            "--strategy",
            strategy,
            "--buffer-size",
            "200",
            "--dir",
            str(tmp_path),
        ]
    )
    assert run_demo(args) == 0
    out = capsys.readouterr().out
    for section in ("outcomes:", "drops by reason:", "windows:", "health:", "throughput:"):
        assert section in out
    final = [line for line in out.splitlines() if line.startswith("ledger:")][-1]
    assert final.startswith("ledger: 3,000 sent = 3,000 accepted") and final.endswith("balanced")
    assert "insufficient_capabilities" in out
    assert f"event store: {tmp_path / 'events.db'}" in out
    assert (tmp_path / "events.db").exists()
    assert not (tmp_path / "files").exists()  # the sandbox is removed unless --keep-files
    if strategy == "block":
        assert "overflow" not in out  # lossless


def test_demo_refuses_to_reuse_an_event_store(tmp_path: Path) -> None:
    (tmp_path / "events.db").write_text("")
    args = build_parser().parse_args(["demo", "--intents", "10", "--dir", str(tmp_path)])
    assert run_demo(args) == 2


def test_the_workload_is_mixed_and_repeatable() -> None:
    users = make_users(20)
    assert len({u.capabilities for u in users}) > 3  # mixed capabilities
    one, two = make_workload(500, users, 1), make_workload(500, users, 1)
    assert one == two
    kinds = {type(intent).__name__ for intent, _ in one}
    assert kinds == {"ReadFile", "WriteFile", "DeleteFile"}
    assert all(intent.path.startswith("/") for intent, _ in one)


def _args(tmp_path: Path, *extra: str) -> Any:
    return build_parser().parse_args(
        ["demo", "--intents", "3000", "--users", "40", "--dir", str(tmp_path), *extra]
    )


def test_progress_shows_as_plain_lines_when_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 3,000 intents at 2,000/s take 1.5 s: at least two lines at one every 0.4 s
    assert run_demo(_args(tmp_path, "--rate", "2000", "--progress-every", "0.4")) == 0
    out = capsys.readouterr().out
    assert "\r" not in out
    lines = [line for line in out.splitlines() if line.startswith("progress ")]
    assert len(lines) >= 2, out
    pattern = re.compile(
        r"progress +\d+% sent +[\d,]+/3,000  out +[\d,]+/s  buffer +[\d,]+ \( *\d+%\)  "
        r"drops +[\d,]+  health (healthy|degraded|unhealthy)"
    )
    assert all(pattern.fullmatch(line) for line in lines), lines
    # progress comes during the load: after the explanation, before the report
    assert out.index("sandbox ") < out.index(lines[0]) < out.index("outcomes:")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_refreshes_one_line_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    assert run_demo(_args(tmp_path, "--rate", "3000")) == 0
    out = terminal.getvalue()
    refreshed = [part for part in out.split("\r") if " sent " in part and "\n" not in part]
    assert len(refreshed) >= 2  # one line rewritten in place, several times
    assert "progress " not in out


def test_the_overload_is_explained_before_and_after(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_demo(_args(tmp_path, "--buffer-size", "50")) == 0
    out = " ".join(capsys.readouterr().out.split())
    before, after = out.split("outcomes:")
    assert "The overload is deliberate" in before
    assert "when the buffer is full, the oldest waiting intent is dropped" in before
    assert "what the run showed:" in after
    health = re.search(r"health: (\w+)", after)
    assert health is not None
    if health.group(1) != "healthy":
        assert f"Health '{health.group(1)}':" in after
        assert "not that it broke: nothing was lost silently" in after
    assert re.search(r"Backpressure dropped [\d,]+ intents", after)
    assert "--strategy block" in after


def test_a_rate_limited_run_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo(_args(tmp_path, "--rate", "50000", "--strategy", "block")) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "The producers are held to 50,000 intents/s" in out
    assert "The overload is deliberate" not in out
    assert "the producers wait for room: nothing is lost" in out
