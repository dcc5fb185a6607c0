"""The examples of docs/observe.md run as shown, and the page shows the tested screenshot."""

from __future__ import annotations

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "observe.md"


def test_observe_page_python_examples_run() -> None:
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)
    assert len(blocks) == 4
    for code in blocks:
        exec(compile(code, str(PAGE), "exec"), {"__name__": "observe_docs"})


def test_observe_page_lists_every_contract_metric() -> None:
    text = PAGE.read_text(encoding="utf-8")
    for name in (
        "pfrx_received_total",
        "pfrx_emitted_total",
        "pfrx_dropped_total",
        "pfrx_errors_total",
        "pfrx_backpressure_events_total",
        "pfrx_buffer_utilization",
        "pfrx_processing_rate",
        "pfrx_health",
    ):
        assert f"| `{name}` |" in text
    assert "](img/dashboard.png)" in text
