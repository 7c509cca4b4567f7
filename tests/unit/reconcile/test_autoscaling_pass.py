"""Autoscaling applied on the store, with fake services and an injected clock: the sampler's
one sample every 10 s feeds each group's policy, evaluated once per sample; a breach sets the target as a resize would, with an
event carrying the values; a CORE shrink HDFS cannot take is clamped with the reason; a
policy changed meanwhile is left for the next evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from corral.control import groups
from corral.control.context import ControlPlane
from corral.metrics.samples import Metric
from corral.reconcile import autoscaling, sampler
from corral.store.models import Cluster, Event, NodeGroup
from tests.unit.control.test_groups import _up_cluster
from tests.unit.reconcile.fakerec import FakeRec

T0 = 2_000_000.0
GROW = {"min_count": 0, "max_count": 3, "rules": [
    {"name": "grow-on-pending", "metric": "ContainerPending", "comparison": "GREATER_THAN", "threshold": 0,
     "period_seconds": 10, "evaluation_periods": 1, "adjustment": 1, "cooldown_seconds": 60}]}
SHRINK_CORE = {"min_count": 0, "max_count": 4, "rules": [
    {"name": "shrink-when-idle", "metric": "AppsRunning", "comparison": "LESS_THAN", "threshold": 1,
     "period_seconds": 10, "evaluation_periods": 1, "adjustment": -2, "cooldown_seconds": 0}]}


@dataclass
class _Metrics:
    values: dict[Metric, float] = field(default_factory=dict)
    refuse_below: int = 0  # CORE nodes HDFS needs (dfs.replication), for scale_in_problem

    def metric_values(self, cluster: Any, now: float, timeout: float) -> dict[Metric, float]:
        return dict(self.values)

    def scale_in_problem(self, cluster: Any, props: Any, role: Any, leaving: list[str], timeout: float) -> str | None:
        core = [n for n in cluster.nodes if n.role.value == "CORE"]
        left = len(core) - len(leaving)
        return f"{left} CORE nodes would be fewer than dfs.replication {self.refuse_below}" \
            if left < self.refuse_below else None


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> _Metrics:
    fake = _Metrics()
    monkeypatch.setattr(autoscaling, "get_service", lambda name: fake)
    monkeypatch.setattr(sampler, "get_service", lambda name: fake)
    monkeypatch.setattr(autoscaling, "_node_memory", lambda cluster, group: 4096.0)
    sampler.HISTORIES.clear()
    autoscaling._evaluated.clear()
    return fake


def _group(cp: ControlPlane, cid: str, name: str) -> NodeGroup:
    with cp.store.session() as s:
        return s.scalars(select(NodeGroup).where(NodeGroup.cluster_id == cid, NodeGroup.name == name)).one()


def _decisions(cp: ControlPlane) -> list[str]:
    with cp.store.session() as s:
        return [e.message for e in s.scalars(select(Event).where(Event.code == "AUTOSCALING_DECISION").order_by(Event.id))]


_samplers: dict[int, sampler.MetricsSampler] = {}


def _tick(rec: FakeRec, at: float) -> None:
    """The sampler's tick (a sample when 10 s have passed), then the reconcile pass's."""
    rec.now = at
    taker = _samplers.setdefault(id(rec), sampler.MetricsSampler(rec.cp, clock=lambda: rec.now))
    taker.tick()
    taker.pool.wait_idle()
    autoscaling.tick(rec, rec._load())  # type: ignore[arg-type]


def test_a_breach_grows_the_group_once_then_the_cooldown_holds(cp: ControlPlane, metrics: _Metrics) -> None:
    rec = FakeRec(cp, now=T0, cluster_id=_up_cluster(cp))
    groups.put_policy(cp, rec.cluster_id, "TASK", GROW)
    metrics.values = {Metric.CONTAINER_PENDING: 5.0, Metric.APPS_RUNNING: 1.0}
    _tick(rec, T0)
    assert _group(cp, rec.cluster_id, "TASK").target_count == 2
    (decision,) = _decisions(cp)
    assert decision.startswith("TASK: 1 -> 2: ") and "grow-on-pending" in decision and "ContainerPending=5" in decision
    _tick(rec, T0 + 5)  # within the 10 s interval: not even sampled
    assert len(sampler.history(rec.cluster_id).between(0, T0 + 5)) == 1
    _tick(rec, T0 + 20)  # breaching still, but cooling down until T0 + 60
    task = _group(cp, rec.cluster_id, "TASK")
    assert task.target_count == 2 and len(_decisions(cp)) == 1
    assert task.scaling_state["evaluations"][-1]["cause"].startswith("cooldown until ")
    _tick(rec, T0 + 70)
    assert _group(cp, rec.cluster_id, "TASK").target_count == 3 and len(_decisions(cp)) == 2
    _tick(rec, T0 + 140)  # at max 3: nothing more, and it says so
    task = _group(cp, rec.cluster_id, "TASK")
    assert task.target_count == 3 and task.scaling_state["evaluations"][-1]["cause"].startswith("at max 3")


def test_a_core_shrink_is_clamped_to_what_hdfs_can_take(cp: ControlPlane, metrics: _Metrics) -> None:
    rec = FakeRec(cp, now=T0, cluster_id=_up_cluster(cp))
    metrics.refuse_below = 2
    groups.put_policy(cp, rec.cluster_id, "CORE", SHRINK_CORE)
    metrics.values = {Metric.APPS_RUNNING: 0.0}
    _tick(rec, T0)
    core = _group(cp, rec.cluster_id, "CORE")
    assert core.target_count == 2 and _decisions(cp) == []  # 2 -> 0 wanted; HDFS keeps both
    assert "no shrink: 0 CORE nodes would be fewer than dfs.replication 2" in core.scaling_state["evaluations"][-1]["cause"]
    metrics.refuse_below = 1
    _tick(rec, T0 + 10)
    core = _group(cp, rec.cluster_id, "CORE")
    assert core.target_count == 1
    assert "clamped to 1: 0 CORE nodes would be fewer than dfs.replication 1" in _decisions(cp)[0]


def test_an_unmonitored_cluster_without_a_policy_costs_no_sample(cp: ControlPlane, metrics: _Metrics) -> None:
    rec = FakeRec(cp, now=T0, cluster_id=_up_cluster(cp))
    with cp.store.session() as s:
        s.get(Cluster, rec.cluster_id).monitoring = False
    metrics.values = {Metric.CONTAINER_PENDING: 9.0}
    _tick(rec, T0)
    assert sampler.history(rec.cluster_id).between(0, T0 + 1) == []
    assert _group(cp, rec.cluster_id, "TASK").target_count == 1
    groups.put_policy(cp, rec.cluster_id, "TASK", GROW)  # autoscaled: sampled, in memory only
    _tick(rec, T0 + 10)
    assert len(sampler.history(rec.cluster_id).between(0, T0 + 11)) == 1
    assert cp.history.row_count(rec.cluster_id) == 0


def test_a_monitored_cluster_is_sampled_into_the_stored_history_without_a_policy(
        cp: ControlPlane, metrics: _Metrics) -> None:
    rec = FakeRec(cp, now=T0, cluster_id=_up_cluster(cp))
    metrics.values = {Metric.CONTAINER_PENDING: 9.0}
    _tick(rec, T0)
    _tick(rec, T0 + 10)
    assert _group(cp, rec.cluster_id, "TASK").target_count == 1  # no policy, no evaluation
    stored = cp.history.query(rec.cluster_id, T0 - 1, T0 + 11, keys=["ContainerPending", "CoreNodesRunning"])
    assert stored["ContainerPending"] == [(T0, 9.0), (T0 + 10, 9.0)]
    core = len([n for n in rec._load().nodes if n.role == "CORE"])
    assert stored["CoreNodesRunning"][-1] == (T0 + 10, float(core))
