"""The control plane's process instruments (``corral.control.telemetry``): one registry per
control plane, the reconciler's pass durations by outcome, autoscaling decisions counted
where they are recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from corral.control import clusters, groups
from corral.control.context import ControlPlane
from corral.elastic.autoscale import Evaluation
from corral.reconcile import autoscaling, loop
from corral.store.models import NodeGroup
from tests.unit.control.test_groups import _up_cluster
from tests.unit.helpers import make_control_plane, make_spec
from tests.unit.reconcile.fakerec import FakeRec

T0 = 2_000_000.0
GROW = {"min_count": 0, "max_count": 3, "rules": [
    {"name": "grow-on-pending", "metric": "ContainerPending", "comparison": "GREATER_THAN", "threshold": 0,
     "period_seconds": 10, "evaluation_periods": 1, "adjustment": 1, "cooldown_seconds": 60}]}


def values(cp: ControlPlane, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Sample ``name`` of ``cp``'s exposition: sorted labels -> value."""
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(cp.telemetry.render(cp).decode())
            for s in family.samples if s.name == name}


def test_each_control_plane_counts_only_its_own(cp: ControlPlane, tmp_path: Path) -> None:
    other = make_control_plane(tmp_path / "other", f"sqlite:///{tmp_path / 'other.db'}")
    try:
        cp.telemetry.request("GET", "/api/v1/clusters", 200, 0.02)
        cp.telemetry.request("GET", "/api/v1/clusters", 503, 0.2)
        key = (("method", "GET"), ("route", "/api/v1/clusters"), ("status", "2xx"))
        assert values(cp, "corral_api_request_duration_seconds_count")[key] == 1
        assert values(cp, "corral_api_request_duration_seconds_count")[(*key[:2], ("status", "5xx"))] == 1
        assert values(other, "corral_api_request_duration_seconds_count") == {}
        for made_up in ("FOO1", "FOO2", "get"):  # a made-up method is one series, never one per method
            cp.telemetry.request(made_up, "unmatched", 405, 0.001)
        methods = {dict(k)["method"] for k in values(cp, "corral_api_request_duration_seconds_count")}
        assert methods == {"GET", "OTHER"}
        clusters.create_cluster(cp, make_spec())
        assert values(cp, "corral_clusters")[(("state", "STARTING"),)] == 1
        assert values(other, "corral_clusters")[(("state", "STARTING"),)] == 0  # its own store
    finally:
        other.store.dispose()


class _Pass:
    """Stands for ``ClusterReconciler``: a pass that raises for the clusters in ``failing``."""

    failing: set[str] = set()

    def __init__(self, cp: ControlPlane, cluster_id: str, clock: Any, probes: Any) -> None:
        self.cluster_id = cluster_id

    def run(self) -> None:
        if self.cluster_id in self.failing:
            raise RuntimeError("boom")


def test_every_cluster_pass_is_timed_by_outcome(cp: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, bad = (clusters.create_cluster(cp, make_spec())[0].id for _ in range(2))
    monkeypatch.setattr(loop, "ClusterReconciler", _Pass)
    monkeypatch.setattr(_Pass, "failing", {bad})
    reconciler = loop.Reconciler(cp)
    for cluster_id in (ok, ok, bad):
        reconciler._pass(cluster_id)
    counts = values(cp, "corral_reconcile_pass_duration_seconds_count")
    assert counts == {(("outcome", "ok"),): 2, (("outcome", "error"),): 1}
    sums = values(cp, "corral_reconcile_pass_duration_seconds_sum")
    assert all(v >= 0 for v in sums.values())


def _task(cp: ControlPlane, cluster_id: str) -> NodeGroup:
    with cp.store.session() as s:
        return s.scalars(select(NodeGroup).where(NodeGroup.cluster_id == cluster_id, NodeGroup.name == "TASK")).one()


def test_an_autoscaling_decision_is_counted_by_group_and_direction(cp: ControlPlane,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cid = _up_cluster(cp)
    groups.put_policy(cp, cid, "TASK", GROW)
    wanted: list[tuple[int, int]] = []

    def decided(policy: Any, history: Any, state: Any, current: int, now: float, memory: float) -> Evaluation:
        before, after = wanted.pop(0)
        return Evaluation(at=now, current=before, desired=after, low=0, high=3, cause="test", changed=before != after)

    monkeypatch.setattr(autoscaling, "evaluate", decided)
    monkeypatch.setattr(autoscaling, "history", lambda cluster_id: None)
    monkeypatch.setattr(autoscaling, "_node_memory", lambda cluster, group: 4096.0)
    rec = FakeRec(cp, cid, now=T0)
    for before, after in [(1, 2), (2, 2), (2, 1)]:  # out, no change (not a decision), in
        wanted.append((before, after))
        autoscaling._evaluate(rec, rec._load(), _task(cp, cid))  # type: ignore[arg-type]
    assert values(cp, "corral_autoscaling_decisions_total") == {
        (("cluster_id", cid), ("direction", "out"), ("group", "TASK")): 1,
        (("cluster_id", cid), ("direction", "in"), ("group", "TASK")): 1}
    cp.telemetry.autoscaling_decision("c-other", "TASK", 1, 2)
    cp.telemetry.forget_cluster(cid)  # ended: its series go, the others stay
    assert values(cp, "corral_autoscaling_decisions_total") == {
        (("cluster_id", "c-other"), ("direction", "out"), ("group", "TASK")): 1}
