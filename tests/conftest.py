from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

import pfrx

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
