"""Cheap questions about pfrx's logging, for hot paths that log per item.

pfrx logs through loguru and disables itself at import (``logger.disable("pfrx")``). A
disabled call still costs loguru a frame inspection; a per-item log line (a capability
denial) asks first whether loguru would drop the record anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

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


#: ``log_settings()``: loguru's per-module decisions as they stand, an object loguru replaces
#: whenever ``logger.enable``/``logger.disable`` is called (otherwise it only adds the modules
#: it has not seen yet). So while it is the same object, a module `would_log` found dropped
#: stays dropped: a per-item path asks `would_log` once, then only compares this object (one
#: C call). With unknown internals every call gives a new object, so nothing is ever assumed.
log_settings: Callable[[], object] = partial(getattr, _core, "enabled") if _KNOWN else object
