"""pfrx never configures logging for its user, and follows logger.enable/disable."""

from __future__ import annotations

import subprocess
import sys
import warnings

import reactivex
from loguru import logger

import pfrx
from pfrx import operators as pf
from pfrx._logging import would_log


def _reject_one() -> None:
    envelope = pfrx.Envelope(1, pfrx.Context("u"), 0.0)
    reactivex.of(envelope).pipe(pf.transform(lambda e, c: pfrx.Reject("no"))).subscribe()


def test_pfrx_is_disabled_at_import_and_adds_no_handler() -> None:
    code = (
        "from loguru import logger; before = len(logger._core.handlers); import pfrx;"
        "print(len(logger._core.handlers) == before)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "True"


def test_drop_logs_follow_enable_and_disable() -> None:
    lines: list[str] = []
    handler = logger.add(lines.append, level="DEBUG", format="{message}")
    try:
        # Unobserved drops also warn (once per subscription): three subscriptions, three.
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            _reject_one()
            assert lines == []
            assert not would_log("pfrx.operators._shared")
            logger.enable("pfrx")
            _reject_one()
            assert lines == ["transform dropped an item: no\n"]
            logger.disable("pfrx")
            _reject_one()
            assert len(lines) == 1
        assert [w.category for w in warned] == [pfrx.UnobservedDropWarning] * 3
    finally:
        logger.remove(handler)
        logger.disable("pfrx")


def test_unknown_modules_are_logged_by_loguru_as_usual() -> None:
    assert would_log("some.module.never.seen")
