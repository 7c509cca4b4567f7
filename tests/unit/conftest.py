"""Unit-test fixtures: a migrated store and a control plane on SQLite, or on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from corral import secretbox
from corral.control.context import ControlPlane
from corral.store.db import Store
from tests.unit.helpers import make_control_plane


@pytest.fixture(scope="session", autouse=True)
def _secret_key(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A key for tests that use the store without a control plane (which configures its
    own): never the user's ~/.corral/secret.key."""
    secretbox.configure(tmp_path_factory.mktemp("secretbox"))


@pytest.fixture(autouse=True)
def _no_saved_tokens(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI under test neither reads nor writes the user's saved tokens or CORRAL_TOKEN."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))
    for name in ("CORRAL_TOKEN", "CORRAL_AUTH", "CORRAL_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)


class _NoUnhealthyNodes:
    def unhealthy_nodes(self, cluster: object, timeout: float) -> dict[str, str]:
        return {}


@pytest.fixture(autouse=True)
def _no_health_questions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reconciler passes over an up cluster ask its services which nodes are unhealthy
    (corral.reconcile.replace): in unit tests nobody is asked (no daemon, and no traffic to
    the fake nodes' addresses); tests of that path patch in a service of their own."""
    from corral.reconcile import replace

    monkeypatch.setattr(replace, "get_service", lambda name: _NoUnhealthyNodes())
    replace._last_health_check.clear()


class _NoMetrics:
    def metric_values(self, cluster: object, now: float, timeout: float) -> dict:
        return {}

    def application_usage(self, cluster: object, application_ids: list[str], timeout: float) -> dict:
        return {}


@pytest.fixture(autouse=True)
def _no_metrics_questions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The metrics sampler asks an up cluster's services for metrics (corral.reconcile.sampler),
    and a pass asks them what a finished step's applications used (step_cost): in unit
    tests nobody is asked; tests of sampling patch in a service of their own. Each
    test starts with no in-memory history."""
    from corral.reconcile import autoscaling, sampler, step_cost

    monkeypatch.setattr(sampler, "get_service", lambda name: _NoMetrics())
    monkeypatch.setattr(step_cost, "get_service", lambda name: _NoMetrics())
    monkeypatch.setattr(sampler, "HISTORIES", {})
    autoscaling._evaluated.clear()


@pytest.fixture(autouse=True)
def _no_remembered_nodemanager_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's fake NodeManagers name themselves afresh (corral.services.yarn keeps answers)."""
    from corral.services import yarn

    monkeypatch.setattr(yarn, "_NODEMANAGER_NAMES", {})


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
