"""Node metrics on the control plane's side: what plans ask agents to measure, and where
the measurements in their reports land (``cp.node_metrics``)."""

from __future__ import annotations

import time

import pytest

from corral.agent.protocol import DiskUsage, MetricsSpec, NodeMetrics, NodePlan
from corral.control import agents, clusters
from corral.control.context import ControlPlane
from corral.domain.catalog import INSTANCE_TYPES
from corral.store.models import Cluster, Node
from tests.unit.control.test_agents import report, setup_cluster
from tests.unit.control.test_plans import place, plans
from tests.unit.helpers import make_spec


def node_plans(cp: ControlPlane, provider: str = "local", monitoring: bool | None = True) -> dict[str, NodePlan]:
    cluster, _ = clusters.create_cluster(cp, make_spec())
    place(cp, cluster.id)
    with cp.store.session() as s:
        row = s.get(Cluster, cluster.id)
        assert row is not None
        row.provider, row.monitoring = provider, monitoring
    out = plans(cp, cluster.id)
    assert all(isinstance(p, NodePlan) for p in out.values())
    return out  # type: ignore[return-value]


def test_local_nodes_measure_their_own_processes_and_directory_against_their_size(cp: ControlPlane) -> None:
    out = node_plans(cp)
    spec = make_spec()
    for key, group in (("MASTER0", spec.node_groups[0]), ("CORE0", spec.node_groups[1]), ("CORE1", spec.node_groups[1])):
        plan, itype = out[key], INSTANCE_TYPES[group.instance_type]
        assert plan.metrics is not None and plan.metrics.scope == "node"
        assert (plan.metrics.vcpus, plan.metrics.memory_bytes) == (itype.vcpus, itype.memory_mib * 1024 * 1024)
        assert plan.metrics.disk_bytes == (itype.disk_gib * 1024**3 if itype.disk_gib is not None else None)
        assert plan.metrics.data_dirs == [f"/nodes/{plan.node_id}"]
    assert out["MASTER0"].metrics != out["CORE0"].metrics  # a small master, medium workers


def test_nodes_on_hosts_measure_the_host_and_their_data_directory(cp: ControlPlane) -> None:
    out = node_plans(cp, provider="ssh")
    for plan in out.values():
        assert plan.metrics == MetricsSpec(scope="host", data_dirs=[f"/nodes/{plan.node_id}/data"])


@pytest.mark.parametrize("monitoring", [True, None])  # None: a row from before the switch, on
def test_monitoring_on_or_unset_asks_for_metrics(cp: ControlPlane, monitoring: bool | None) -> None:
    assert all(p.metrics is not None for p in node_plans(cp, monitoring=monitoring).values())


def test_monitoring_off_asks_for_none(cp: ControlPlane) -> None:
    assert all(p.metrics is None for p in node_plans(cp, monitoring=False).values())


def test_a_terminating_node_measures_nothing(cp: ControlPlane) -> None:
    cluster, _ = clusters.create_cluster(cp, make_spec())
    place(cp, cluster.id)
    with cp.store.session() as s:
        row = clusters.load_cluster(s, cluster.id)
        leaver = next(n for n in row.nodes if n.role == "CORE")
        leaver.target, leaver_id = "TERMINATED", leaver.id
    out = {p.node_id: p for p in plans(cp, cluster.id).values() if isinstance(p, NodePlan)}
    assert out[leaver_id].terminate and out[leaver_id].metrics is None
    assert all(p.metrics is not None for node_id, p in out.items() if node_id != leaver_id)


def measurement(at: float, cores: float | None = 0.5) -> NodeMetrics:
    return NodeMetrics(at=at, scope="node", cpu_cores_used=cores, vcpus=2, memory_used_bytes=300 << 20,
                       memory_total_bytes=4 << 30, processes=7,
                       disks=[DiskUsage(path="/nodes/m", used_bytes=1 << 20, free_bytes=1 << 30, total_bytes=2 << 30)])


def test_a_reported_measurement_lands_on_the_board(cp: ControlPlane) -> None:
    cid, node_id, token = setup_cluster(cp)
    agents.apply_report(cp, node_id, token, report(node_id))
    assert cp.node_metrics.latest(node_id) is None  # no measurement yet: nothing on the board
    first = measurement(time.time() - 10, cores=None)
    before = time.time()
    agents.apply_report(cp, node_id, token, report(node_id, metrics=first.model_dump()))
    reading = cp.node_metrics.latest(node_id)
    assert reading is not None and reading.metrics == first and reading.cluster_id == cid
    assert before <= reading.received_at <= time.time()
    newer = measurement(time.time(), cores=1.25)
    agents.apply_report(cp, node_id, token, report(node_id, metrics=newer.model_dump()))
    assert [r.metrics for r in cp.node_metrics.for_cluster(cid)] == [newer]
    # A heartbeat without one (a failed measurement) keeps the last reading.
    agents.apply_report(cp, node_id, token, report(node_id))
    assert cp.node_metrics.latest(node_id).metrics == newer  # type: ignore[union-attr]


def test_a_stopped_or_terminated_node_has_no_reading(cp: ControlPlane) -> None:
    cid, node_id, token = setup_cluster(cp)
    agents.apply_report(cp, node_id, token, report(node_id, metrics=measurement(time.time()).model_dump()))
    agents.apply_report(cp, node_id, token, report(node_id, "STOPPED", metrics=measurement(time.time()).model_dump()))
    assert cp.node_metrics.latest(node_id) is None
    agents.apply_report(cp, node_id, token, report(node_id, metrics=measurement(time.time()).model_dump()))
    assert cp.node_metrics.latest(node_id) is not None
    with cp.store.session() as s:
        node = s.get(Node, node_id)
        assert node is not None
        node.status = "TERMINATED"
    with pytest.raises(agents.Gone):
        agents.apply_report(cp, node_id, token, report(node_id, metrics=measurement(time.time()).model_dump()))
    assert cp.node_metrics.latest(node_id) is None and cp.node_metrics.for_cluster(cid) == []


def test_a_refused_report_puts_nothing(cp: ControlPlane) -> None:
    _, node_id, _ = setup_cluster(cp)
    with pytest.raises(agents.Unauthorized):
        agents.apply_report(cp, node_id, "wrong", report(node_id, metrics=measurement(time.time()).model_dump()))
    assert cp.node_metrics.all() == []
