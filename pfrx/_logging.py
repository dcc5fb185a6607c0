"""Cheap questions about pfrx's logging, for hot paths that log per item.

pfrx logs through loguru and disables itself at import (``logger.disable("pfrx")``). A
disabled call still costs loguru a frame inspection; a per-item log line (a capability
denial) asks first whether loguru would drop the record anyway.
"""

from __future__ import annotations

from loguru import logger

# loguru keeps, per module, its decision to drop or keep records (filled on a module's first
# record, replaced whenever logger.enable/disable is called). If its internals ever differ,
# every question answers True and loguru simply decides as usual.
_core = getattr(logger, "_core", None)
_KNOWN = type(getattr(_core, "enabled", None)) is dict


def would_log(module: str) -> bool:
    """False only when loguru is known to drop records logged from ``module``."""
    if _KNOWN:
        enabled = _core.enabled  # type: ignore[union-attr]
        if type(enabled) is dict:
            return enabled.get(module, True) is not False
    return True
