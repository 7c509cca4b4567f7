"""The resize pass's decisions on the store (no daemons): which rows it adds, which nodes
it marks leaving, recommissions or cancels, and that a settled cluster costs nothing."""

from __future__ import annotations


import pytest
from sqlalchemy import select

from corral.control import clusters, groups
from corral.control.context import ControlPlane
from corral.reconcile import resize
from corral.services.base import Drain
from corral.store.models import Event
from tests.unit.control.test_groups import _up_cluster
from tests.unit.reconcile.fakerec import FakeRec


def _core(rec: FakeRec) -> list[tuple[str, str, str | None]]:
    cluster = rec._load()
    core = next(g for g in cluster.groups if g.name == "CORE")
    return sorted((n.status, n.target, n.decommission_state) for n in cluster.nodes if n.group_id == core.id)


def test_a_settled_cluster_is_left_alone(cp: ControlPlane) -> None:
    rec = FakeRec(cp, _up_cluster(cp))
    assert resize._settled(rec._load())


def test_grow_adds_rows_and_a_shrink_cancels_them_before_touching_running_nodes(cp: ControlPlane) -> None:
    rec = FakeRec(cp, _up_cluster(cp))
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
    rec = FakeRec(cp, _up_cluster(cp))
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

    rec = FakeRec(cp, _up_cluster(cp), now=10_000.0)
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


class _OnlyTheEndpointHoldsIt:
    def node_load(self, cluster: object, timeout: float) -> dict[str, tuple[int, int]]:
        return {}

    def drain_status(self, cluster: object, timeout: float) -> dict[str, Drain]:
        leaving = [n for n in cluster.nodes if n.leaving]  # type: ignore[attr-defined]
        return {n.node_id: Drain(False, "only the SQL endpoint's application, which has nothing left on it",
                                 release_now=True) for n in leaving}


def test_a_wait_that_only_a_timeout_would_end_is_ended_at_once(cp: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resize, "get_service", lambda name: _OnlyTheEndpointHoldsIt())
    rec = FakeRec(cp, _up_cluster(cp))
    groups.resize_group(cp, rec.cluster_id, "TASK", groups.ResizeRequest(count=0, decommission_timeout=3600))
    cluster = rec._load()
    resize._converge(rec, cluster, next(g for g in cluster.groups if g.name == "TASK"))  # type: ignore[arg-type]
    version = rec._load().plan_version
    rec.now += 10
    resize._drain(rec, rec._load())  # type: ignore[arg-type]
    (leaver,) = [n for n in rec._load().nodes if n.role == "TASK"]
    assert leaver.decommission_deadline_at == rec.now  # the exclude file now says 0 s left
    assert leaver.decommission_state == "DECOMMISSIONING"  # still until YARN lists it DECOMMISSIONED
    assert rec._load().plan_version > version
    rec.now += resize.DRAIN_CHECK_SECONDS + 1
    resize._drain(rec, rec._load())  # type: ignore[arg-type]
    with cp.store.session() as s:
        released = list(s.scalars(select(Event).where(Event.code == "DECOMMISSION_RELEASED")))
        timeouts = list(s.scalars(select(Event).where(Event.code == "DECOMMISSION_TIMEOUT")))
    assert len(released) == 1 and "only the SQL endpoint's application" in released[0].message and not timeouts


class _Remembers:
    def __init__(self) -> None:
        self.ids: set[str] = set()

    def remembered(self, cluster: object, timeout: float) -> set[str]:
        return set(self.ids)


def test_a_released_leaver_is_forgotten_only_once_no_daemon_remembers_it(cp: ControlPlane,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from corral.control.views import cluster_view
    from corral.store.models import Node

    fake = _Remembers()
    monkeypatch.setattr(resize, "get_service", lambda name: fake)
    rec = FakeRec(cp, _up_cluster(cp))
    with cp.store.session() as s:
        core = s.scalars(select(Node).where(Node.cluster_id == rec.cluster_id, Node.role == "CORE")).first()
        assert core is not None
        core.status, core.decommission_state, gone = "TERMINATED", "DECOMMISSIONED", core.id
    fake.ids = {gone}
    assert not resize._settled(rec._load())  # still to be forgotten
    resize._forget(rec, rec._load())  # type: ignore[arg-type]
    assert [n.node_id for n in cluster_view(rec._load()).departed] == [gone]
    fake.ids = set()
    rec.now += 1  # within DRAIN_CHECK_SECONDS: not asked again yet
    resize._forget(rec, rec._load())  # type: ignore[arg-type]
    assert [n.node_id for n in cluster_view(rec._load()).departed] == [gone]
    rec.now += resize.DRAIN_CHECK_SECONDS
    version = rec._load().plan_version
    resize._forget(rec, rec._load())  # type: ignore[arg-type]
    assert cluster_view(rec._load()).departed == () and rec._load().plan_version > version


def test_a_grow_waiting_for_a_host_still_takes_its_leavers_back_now(cp: ControlPlane) -> None:
    from corral.store.models import Cluster, Node
    from tests.unit.hosts.pool import add_host, host_row

    rec = FakeRec(cp, _up_cluster(cp))
    add_host(cp.store, "h1")
    with cp.store.session() as s:
        cluster = s.get(Cluster, rec.cluster_id)
        assert cluster is not None
        cluster.provider = "ssh"
        core = [n for n in cluster.nodes if n.role == "CORE"]
        core[0].decommission_state = "DECOMMISSIONING"  # still draining
        core[1].status, core[1].decommission_state = "TERMINATED", "DECOMMISSIONED"  # released, on h1, remembered
        core[1].address, draining = host_row(cp.store, "h1").address, core[0].id
        next(g for g in cluster.groups if g.name == "CORE").target_count = 0
    groups.resize_group(cp, rec.cluster_id, "CORE", groups.ResizeRequest(count=2))
    version = rec._load().plan_version
    cluster = rec._load()
    assert resize._converge(rec, cluster, next(g for g in cluster.groups if g.name == "CORE"))  # type: ignore[arg-type]
    with cp.store.session() as s:
        back = s.get(Node, draining)
        assert back is not None and back.decommission_state is None  # recommissioned now ...
        assert s.scalars(select(Node).where(Node.cluster_id == rec.cluster_id, Node.status == "REQUESTED")).all() == []
    assert rec._load().plan_version > version  # ... and the exclude files say so
