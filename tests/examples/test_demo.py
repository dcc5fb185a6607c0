"""The demo's substrate run on a small workload: report sections and a balanced ledger."""

from __future__ import annotations

from pathlib import Path

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
