"""Cheap questions about pfrx's logging, for hot paths that log per item.

pfrx logs through loguru and disables itself at import (``logger.disable("pfrx")``). A
disabled call still costs loguru a frame inspection; a per-item log line (a capability
denial) asks first whether loguru would drop the record anyway.
"""

from __future__ import annotations

from loguru import logger


def would_log(module: str) -> bool:
    """False only when loguru is known to drop records logged from ``module``.

    Reads loguru's own per-module decision cache (filled by loguru on the first record from
    a module, reset whenever ``logger.enable``/``disable`` is called). Anything unexpected
    in loguru's internals answers True: then the record is simply logged and loguru decides.
    """
    core = getattr(logger, "_core", None)
    enabled = getattr(core, "enabled", None)
    if not isinstance(enabled, dict):
        return True
    return enabled.get(module, True) is not False
