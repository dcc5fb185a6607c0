from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

import pfrx

# The fixtures an installed pfrx gives every project through its pytest11 entry point (see
# tests/testing/test_plugin.py), here also when pfrx runs from a checkout without being installed.
from pfrx.testing.plugin import marbles, test_scheduler

__all__ = ["marbles", "test_scheduler"]

settings.register_profile(
    "pfrx", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("pfrx")

FileCap = pfrx.CapabilityFamily(
    "file",
    actions=("read", "write", "delete", "admin"),
    implies={"admin": ("read", "write", "delete")},
)


@pytest.fixture
def file_cap() -> pfrx.CapabilityFamily:
    return FileCap
