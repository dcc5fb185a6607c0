"""The README's example runs as shown."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_examples_run() -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)
    assert blocks, "the README shows no Python example"
    namespace: dict[str, object] = {"__name__": "readme"}
    for code in blocks:
        exec(compile(code, str(README), "exec"), namespace)
