"""The pytest plugin installed with pfrx (entry point group ``pytest11``, name ``pfrx``).

Any project that installs pfrx gets two fixtures in its tests, with nothing to import:

- ``test_scheduler``: a fresh ``reactivex.testing.TestScheduler``;
- ``marbles``: a fresh [`MarbleKit`][pfrx.testing.MarbleKit] on that scheduler.

```python
def test_upper(marbles):
    result = marbles.run(marbles.cold("-a-b-|").pipe(pf.transform(lambda e, c: e.upper())))
    marbles.expect(result, "-A-B-|")
```

A failing ``expect`` raises [`MarbleMismatch`][pfrx.testing.MarbleMismatch]; pytest shows the
test's own line and the aligned expected and actual marbles, not pfrx's frames.
"""

from __future__ import annotations

import pytest
from reactivex.testing import TestScheduler

from ._kit import MarbleKit


@pytest.fixture
def test_scheduler() -> TestScheduler:
    """A fresh ``reactivex.testing.TestScheduler`` for one test."""
    return TestScheduler()


@pytest.fixture
def marbles(test_scheduler: TestScheduler) -> MarbleKit:
    """A fresh [`MarbleKit`][pfrx.testing.MarbleKit] on ``test_scheduler``, for one test."""
    return MarbleKit(scheduler=test_scheduler)
