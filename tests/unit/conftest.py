"""Unit-test fixtures: a migrated store and a control plane on SQLite, or on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from corral.control.context import ControlPlane
from corral.store.db import Store
from tests.unit.helpers import make_control_plane


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'corral.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database: a SQLite file, or a new database on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'corral.db'}"
    return request.getfixturevalue("fresh_pg_url")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on each backend."""
    s = Store(db_url)
    s.migrate()
    yield s
    s.dispose()


@pytest.fixture
def cp(tmp_path: Path, sqlite_url: str) -> Iterator[ControlPlane]:
    """A control plane on SQLite with a fake provider."""
    plane = make_control_plane(tmp_path / "home", sqlite_url)
    yield plane
    plane.store.dispose()


@pytest.fixture
def cp_any(tmp_path: Path, db_url: str) -> Iterator[ControlPlane]:
    """The same, on SQLite and on the real PostgreSQL."""
    plane = make_control_plane(tmp_path / "home", db_url)
    yield plane
    plane.store.dispose()
