"""The resize pass's decisions on the store (no daemons): which rows it adds, which nodes
it marks leaving, recommissions or cancels, and that a settled cluster costs nothing."""

from __future__ import annotations

from dataclasses import dataclass

from corral.control import clusters, groups
from corral.control.context import ControlPlane
from corral.reconcile import resize
from corral.store.models import Cluster
from tests.unit.control.test_groups import _up_cluster


@dataclass
class _Rec:
    cp: ControlPlane
    cluster_id: str
    now: float = 1000.0

    def _load(self) -> Cluster:
        with self.cp.store.session() as s:
            return clusters.load_cluster(s, self.cluster_id)


def _core(rec: _Rec) -> list[tuple[str, str, str | None]]:
    cluster = rec._load()
    core = next(g for g in cluster.groups if g.name == "CORE")
    return sorted((n.status, n.target, n.decommission_state) for n in cluster.nodes if n.group_id == core.id)


def test_a_settled_cluster_is_left_alone(cp: ControlPlane) -> None:
    rec = _Rec(cp, _up_cluster(cp))
    assert resize._settled(rec._load())


def test_grow_adds_rows_and_a_shrink_cancels_them_before_touching_running_nodes(cp: ControlPlane) -> None:
    rec = _Rec(cp, _up_cluster(cp))
    groups.resize_group(cp, rec.cluster_id, "CORE", groups.ResizeRequest(count=4))
    cluster = rec._load()
    assert not resize._settled(cluster)
    assert resize._converge(rec, cluster, next(g for g in cluster.groups if g.name == "CORE"))  # type: ignore[arg-type]
    assert _core(rec) == [("REQUESTED", "RUNNING", None)] * 2 + [("RUNNING", "RUNNING", None)] * 2
    groups.resize_group(cp, rec.cluster_id, "CORE", groups.ResizeRequest(count=3))
    cluster = rec._load()
    resize._converge(rec, cluster, next(g for g in cluster.groups if g.name == "CORE"))  # type: ignore[arg-type]
    # The newest not-yet-running node goes: nothing to decommission.
    assert _core(rec) == [("REQUESTED", "RUNNING", None), ("REQUESTED", "TERMINATED", None)] + [
        ("RUNNING", "RUNNING", None)] * 2


def test_a_shrink_marks_leavers_with_a_deadline_and_a_grow_recommissions_them(cp: ControlPlane) -> None:
    rec = _Rec(cp, _up_cluster(cp))
    cluster = rec._load()
    task = next(g for g in cluster.groups if g.name == "TASK")
    groups.resize_group(cp, rec.cluster_id, "TASK", groups.ResizeRequest(count=0, decommission_timeout=90))
    cluster = rec._load()
    resize._converge(rec, cluster, next(g for g in cluster.groups if g.id == task.id))  # type: ignore[arg-type]
    (leaver,) = [n for n in rec._load().nodes if n.group_id == task.id]
    assert (leaver.status, leaver.target, leaver.decommission_state) == ("RUNNING", "RUNNING", "DECOMMISSIONING")
    assert leaver.decommission_deadline_at == rec.now + 90
    groups.resize_group(cp, rec.cluster_id, "TASK", groups.ResizeRequest(count=1))
    cluster = rec._load()
    resize._converge(rec, cluster, next(g for g in cluster.groups if g.id == task.id))  # type: ignore[arg-type]
    (back,) = [n for n in rec._load().nodes if n.group_id == task.id]
    assert back.id == leaver.id and back.decommission_state is None and back.decommission_deadline_at is None


def test_a_gone_core_node_is_replaced_once_its_grace_has_passed_and_a_master_never(cp: ControlPlane) -> None:
    from corral.reconcile import replace

    rec = _Rec(cp, _up_cluster(cp), now=10_000.0)
    with cp.store.session() as s:
        cluster = clusters.load_cluster(s, rec.cluster_id)
        core = next(n for n in cluster.nodes if n.role == "CORE")
        master = next(n for n in cluster.nodes if n.role == "MASTER")
        for node in (core, master):
            node.last_heartbeat, node.provider_data = rec.now - 60, {"missing_since": rec.now - 40}
        core_id = core.id
    replace.watch(rec, rec._load())  # type: ignore[arg-type]
    assert all(n.target == "RUNNING" for n in rec._load().nodes)  # lost 60 s: within the 120 s grace
    rec.now += 70
    replace.watch(rec, rec._load())  # type: ignore[arg-type]
    nodes = {n.id: n for n in rec._load().nodes}
    assert nodes[core_id].target == "TERMINATED" and nodes[core_id].status_reason.startswith("replaced: ")
    assert [n.target for n in nodes.values() if n.role == "MASTER"] == ["RUNNING"]
    cluster = rec._load()
    assert not resize._settled(cluster)  # its group grows back to its target
    assert resize._converge(rec, cluster, next(g for g in cluster.groups if g.name == "CORE"))  # type: ignore[arg-type]
    assert sum(1 for n in rec._load().nodes if n.role == "CORE" and n.status == "REQUESTED") == 1
