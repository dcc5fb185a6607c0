"""The command line: ``pfrx`` / ``python -m pfrx`` and its subcommands."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import pfrx
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


def test_bare_pfrx_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: pfrx")
    for command in ("demo", "worker", "demo-cluster"):
        assert command in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"pfrx {pfrx.__version__}"


def test_an_unknown_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    assert build_parser().prog == "pfrx"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--intents", "-5", "argument --intents: must be at least 1, got -5"),
        ("--intents", "0", "argument --intents: must be at least 1, got 0"),
        ("--intents", "many", "argument --intents: expected an integer, got 'many'"),
        ("--buffer-size", "0", "argument --buffer-size: must be at least 1, got 0"),
        ("--producers", "0", "argument --producers: must be at least 1, got 0"),
        ("--users", "0", "argument --users: must be at least 1, got 0"),
        ("--window", "0", "argument --window: must be a finite number > 0, got 0"),
        ("--window", "nan", "argument --window: must be a finite number > 0, got nan"),
        ("--session-gap", "-1", "argument --session-gap: must be a finite number > 0, got -1"),
        ("--rate", "-3", "argument --rate: must be a finite number >= 0, got -3"),
        ("--rate", "inf", "argument --rate: must be a finite number >= 0, got inf"),
        ("--serve", "-1", "argument --serve: must be at least 0, got -1"),
    ],
)
def test_bad_demo_options_are_one_line_usage_errors(
    option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", option, value])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert lines[0].startswith("usage: pfrx demo")
    assert lines[-1] == f"pfrx demo: error: {message}"
    assert "Traceback" not in captured.err


def test_demo_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for default in (
        "how many intents to send (default: 200000)",
        "backpressure strategy (default: drop_oldest)",
        "backpressure buffer, items (default: 10000)",
        "producer threads (default: 2)",
        "time window span, seconds (default: 1.0)",
    ):
        assert default in text


def _fake_module(monkeypatch: pytest.MonkeyPatch, name: str, **attributes: Any) -> None:
    """Install ``name`` (and its parent packages) in ``sys.modules`` for one test."""
    parts = name.split(".")
    for i in range(2, len(parts)):
        parent = ".".join(parts[:i])
        if parent not in sys.modules:
            package = types.ModuleType(parent)
            package.__path__ = []
            monkeypatch.setitem(sys.modules, parent, package)
    module = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)


@pytest.mark.parametrize(
    ("command", "module"),
    [("worker", "pfrx.nats.worker"), ("demo-cluster", "pfrx.nats.cluster_demo")],
)
def test_nats_commands_hand_their_arguments_to_their_module(
    command: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        calls.append(argv)
        return 7

    _fake_module(monkeypatch, module, main=fake_main)
    argv = ["--servers", "nats://127.0.0.1:4222", "--help", "--durable", "w"]
    assert main([command, *argv]) == 7
    assert calls == [argv]


@pytest.mark.parametrize(
    ("argv", "module"),
    [
        (["worker", "--servers", "x"], "pfrx.nats.worker"),
        (["demo-cluster"], "pfrx.nats.cluster_demo"),
        (["demo", "--distributed"], "pfrx.nats.cluster_demo"),
    ],
)
def test_nats_commands_without_the_extra_say_what_to_install(
    argv: list[str],
    module: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # importing it raises ImportError
    assert main(argv) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert "pip install 'pfrx[nats]'" in line
    assert "Traceback" not in captured.err and captured.out == ""


def test_demo_distributed_runs_demo_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    _fake_module(monkeypatch, "pfrx.nats.cluster_demo", main=lambda argv: calls.append(argv) or 0)
    assert main(["demo", "--distributed"]) == 0
    assert calls == [[]]


def test_demo_serve_without_the_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pfrx.observe", None)
    assert main(["demo", "--serve", "0", "--intents", "10", "--dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert "pip install 'pfrx[web]'" in line
    assert "Traceback" not in captured.err and "== 1." not in captured.out


def test_demo_serve_on_a_taken_port_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def serve(port: int = 0, **kwargs: Any) -> Any:
        raise OSError(98, "Address already in use")

    _fake_module(monkeypatch, "pfrx.observe", serve=serve)
    assert main(["demo", "--serve", "8765", "--intents", "10", "--dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        "pfrx demo --serve: cannot serve on port 8765: Address already in use"
    )
    assert "== 1." not in captured.out


def test_demo_serve_keeps_the_dashboard_up_while_it_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    events: list[str] = []

    class Handle:
        url = "http://127.0.0.1:8765/"

        def stop(self) -> None:
            events.append("stop")

    def serve(port: int = 0, **kwargs: Any) -> Handle:
        events.append(f"serve {port}")
        return Handle()

    from pfrx.demo import load

    real_run_load = load.run_load

    def watched_run_load(stream: pfrx.Stream, *args: Any) -> Any:
        # while the load runs, the dashboard is up and the stream is registered for it
        assert pfrx.registry.lookup(stream.name) is stream
        events.append("load")
        return real_run_load(stream, *args)

    _fake_module(monkeypatch, "pfrx.observe", serve=serve)
    monkeypatch.setattr("pfrx.demo.run_load", watched_run_load)
    assert main(["demo", "--serve", "8765", "--intents", "500", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert events == ["serve 8765", "load", "stop"]
    assert out.index("dashboard: http://127.0.0.1:8765/") < out.index("== 1.")
    assert out.index("== 2.") < out.index("dashboard: stopped") < out.index("ledger: 500 sent")


def test_python_dash_m_pfrx_demo() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pfrx", "demo", "--intents", "5000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "ledger: 8 received = 4 passed + 4 dropped: balanced" in done.stdout


def test_python_dash_m_pfrx_usage_error_has_no_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pfrx", "demo", "--buffer-size", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "pfrx demo: error: argument --buffer-size: must be at least 1, got 0"
    )
    assert "Traceback" not in done.stderr


@pytest.mark.timeout(120)
def test_demo_serve_shows_the_running_stream_on_the_real_dashboard(tmp_path: Path) -> None:
    import json
    import time
    import urllib.request

    demo = subprocess.Popen(
        [
            *(sys.executable, "-m", "pfrx", "demo", "--serve", "0"),
            *("--intents", "6000", "--rate", "2000", "--dir", str(tmp_path)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        first = demo.stdout.readline()
        assert first.startswith("dashboard: http://127.0.0.1:"), first
        url = first.split()[1].rstrip("/")
        seen: list[Any] = []
        deadline = time.monotonic() + 60
        while not seen and time.monotonic() < deadline and demo.poll() is None:
            with urllib.request.urlopen(url + "/api/streams", timeout=10) as response:
                seen = [
                    s
                    for s in json.load(response)
                    if s["name"] == "filesystem" and s["metrics"]["received"] > 0
                ]
            time.sleep(0.2)
        out, err = demo.communicate(timeout=90)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, err
    assert seen and seen[0]["metrics"]["received"] > 0  # live while the load ran
    assert "dashboard: stopped" in out and "balanced" in out.splitlines()[-1]


@pytest.mark.parametrize(
    ("command", "option"), [("worker", "--durable"), ("demo-cluster", "--workers")]
)
def test_the_real_nats_commands_are_reached(
    command: str, option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])  # their own parser answers, not pfrx's
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: pfrx {command}") and option in out
