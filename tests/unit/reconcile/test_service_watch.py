"""After WAITING, the services' own view of the cluster is watched: changes are events."""

from __future__ import annotations

import pytest

from corral.control import clusters
from corral.control.context import ControlPlane
from corral.reconcile import clusters as reconcile_clusters
from corral.services.base import ReadyCheck
from corral.store.models import Event
from tests.unit.helpers import count_rows, make_spec


class FlakyService:
    def __init__(self) -> None:
        self.ready = True

    def check_ready(self, cluster: object, timeout: float) -> ReadyCheck:
        return ReadyCheck(self.ready, "2/2 DataNodes live" if self.ready else "1/2 DataNodes live in the NameNode")


def test_a_degraded_service_and_its_recovery_are_events(cp: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    service = FlakyService()
    monkeypatch.setattr(reconcile_clusters, "get_service", lambda name: service)
    cluster, _ = clusters.create_cluster(cp, make_spec())
    clock = [1000.0]

    def watch() -> str | None:
        reconciler = reconcile_clusters.ClusterReconciler(cp, cluster.id)
        reconciler.now = clock[0]
        reconciler._watch_services(reconciler._load())
        clock[0] += reconcile_clusters.SERVICE_CHECK_SECONDS
        return reconciler._load().ready_check

    assert watch() == "2/2 DataNodes live"
    service.ready = False
    assert watch() == "DEGRADED: 1/2 DataNodes live in the NameNode"
    assert watch() == "DEGRADED: 1/2 DataNodes live in the NameNode"  # still degraded: no second event
    service.ready = True
    assert watch() == "2/2 DataNodes live"
    assert count_rows(cp.store, Event, code="SERVICES_DEGRADED") == 1
    assert count_rows(cp.store, Event, code="SERVICES_HEALTHY") == 1


def test_checks_are_throttled(cp: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    class Counting(FlakyService):
        def check_ready(self, cluster: object, timeout: float) -> ReadyCheck:
            calls.append("x")
            return super().check_ready(cluster, timeout)

    monkeypatch.setattr(reconcile_clusters, "get_service", lambda name: Counting())
    cluster, _ = clusters.create_cluster(cp, make_spec())
    for now in (5000.0, 5001.0, 5002.0):
        reconciler = reconcile_clusters.ClusterReconciler(cp, cluster.id)
        reconciler.now = now
        reconciler._watch_services(reconciler._load())
    assert len(calls) == 1  # one service (spark), checked once within the interval


def test_a_cancelled_steps_applications_are_killed_even_when_the_cancel_was_quick(
        cp: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client can die before any pass sees the step CANCEL_PENDING: its YARN
    application is still killed for a while after the step is CANCELLED, not after that."""
    killed: list[list[str]] = []

    class Recording(FlakyService):
        def cancel_applications(self, cluster: object, application_ids: list[str]) -> None:
            killed.append(list(application_ids))

    monkeypatch.setattr(reconcile_clusters, "get_service", lambda name: Recording())
    cluster, _ = clusters.create_cluster(cp, make_spec(steps=[{"type": "shell", "args": ["true"]}]))
    with cp.store.session() as s:
        step = clusters.cluster_steps(s, cluster.id)[0]
        step.status, step.ended_at, step.yarn_application_ids = "CANCELLED", 1000.0, ["application_1_0001"]

    def sweep(now: float) -> None:
        reconciler = reconcile_clusters.ClusterReconciler(cp, cluster.id)
        reconciler.now = now
        reconciler._stop_cancelled_applications(reconciler._load())

    sweep(1000.0 + 1)
    assert killed == [["application_1_0001"]]
    sweep(1000.0 + reconcile_clusters.deadlines.CANCEL_SWEEP_SECONDS + 1)
    assert killed == [["application_1_0001"]]  # long over: no more calls
