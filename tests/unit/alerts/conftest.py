"""The alert tests' store-backed tests run on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import pytest

from corral.control.context import ControlPlane


@pytest.fixture
def cp(cp_any: ControlPlane) -> ControlPlane:
    return cp_any
