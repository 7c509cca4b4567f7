"""Node group requests: refused ones change nothing; accepted ones set the target, start an
operation and supersede a resize in progress."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from corral.control import clusters, groups
from corral.control.context import ControlPlane
from corral.domain.spec import ClusterSpec, group_name
from corral.errors import Conflict, NotFound, ValidationFailed
from corral.store.models import Cluster, Event, Node, NodeGroup, Operation
from tests.unit.helpers import make_spec


def _up_cluster(cp: ControlPlane, **overrides: object) -> str:
    spec = make_spec(node_groups=[{"role": "MASTER", "instance_type": "local.small"},
                                  {"role": "CORE", "instance_type": "local.medium", "count": 2},
                                  {"role": "TASK", "instance_type": "local.medium", "count": 1}],
                     services=["hdfs", "yarn", "mapreduce", "spark"], **overrides)
    cluster, _ = clusters.create_cluster(cp, spec)
    with cp.store.session() as s:
        row = s.get(Cluster, cluster.id)
        assert row is not None
        row.status = "WAITING"
        for node in clusters.load_cluster(s, cluster.id).nodes:
            node.status, node.address = "RUNNING", f"127.99.0.{len(node.id) % 200}"
    return cluster.id


def _snapshot(cp: ControlPlane, cid: str) -> list[tuple[object, ...]]:
    with cp.store.session() as s:
        return [(g.name, g.status, g.target_count, g.decommission_timeout)
                for g in s.scalars(select(NodeGroup).where(NodeGroup.cluster_id == cid).order_by(NodeGroup.name))]


def test_groups_are_named_by_role_and_a_second_task_group_needs_a_name() -> None:
    spec = make_spec(node_groups=[{"role": "MASTER"}, {"role": "CORE"}, {"role": "TASK"},
                                  {"role": "TASK", "name": "spot-large", "instance_type": "local.large"}])
    assert [group_name(spec, i) for i in range(4)] == ["MASTER", "CORE", "TASK", "spot-large"]
    unnamed = make_spec(node_groups=[{"role": "MASTER"}, {"role": "CORE"}, {"role": "TASK"}, {"role": "TASK"}])
    assert group_name(unnamed, 3) is None
    with pytest.raises(Exception):
        ClusterSpec.model_validate({"name": "x", "node_groups": [{"role": "TASK", "name": "9 bad"}]})


@pytest.mark.parametrize(("group", "count", "extra", "loc", "text"), [
    ("MASTER", 2, {}, ("group",), "never resized"),
    ("CORE", 65, {}, ("count",), "count must be 0..64"),
    ("CORE", 3, {"decommission_timeout": -1}, ("decommission_timeout",), "0..604800"),
    ("CORE", 3, {"nodes": ("n-1",)}, ("nodes",), "grows"),
    ("CORE", 1, {}, ("count",), "fewer than dfs.replication 2"),
    ("TASK", 0, {"nodes": ("n-nothere",)}, ("nodes",), "not a node in service in group TASK: n-nothere"),
])
def test_bad_resizes_are_refused_at_their_field_and_write_nothing(cp: ControlPlane, group: str, count: int,
                                                                  extra: dict[str, object], loc: tuple[str, ...],
                                                                  text: str) -> None:
    cid = _up_cluster(cp)
    before = _snapshot(cp, cid)
    with pytest.raises(ValidationFailed) as info:
        groups.resize_group(cp, cid, group, groups.ResizeRequest(count=count, **extra))  # type: ignore[arg-type]
    assert any(e.loc == loc and text in e.msg for e in info.value.errors), info.value.errors
    assert _snapshot(cp, cid) == before


def test_an_unknown_group_is_not_found_and_a_cluster_not_up_is_a_conflict(cp: ControlPlane) -> None:
    cid = _up_cluster(cp)
    with pytest.raises(NotFound, match="node group 'GPU'.*groups: MASTER, CORE, TASK"):
        groups.resize_group(cp, cid, "GPU", groups.ResizeRequest(count=1))
    with cp.store.session() as s:
        row = s.get(Cluster, cid)
        assert row is not None
        row.status = "BOOTSTRAPPING"
    with pytest.raises(Conflict, match="BOOTSTRAPPING"):
        groups.resize_group(cp, cid, "CORE", groups.ResizeRequest(count=3))


def test_a_new_target_supersedes_the_resize_in_progress(cp: ControlPlane) -> None:
    cid = _up_cluster(cp)
    groups.resize_group(cp, cid, "CORE", groups.ResizeRequest(count=4))
    groups.resize_group(cp, cid, "CORE", groups.ResizeRequest(count=5, decommission_timeout=60))
    assert ("CORE", "RESIZING", 5, 60) in _snapshot(cp, cid)
    with cp.store.session() as s:
        ops = list(s.scalars(select(Operation).where(Operation.cluster_id == cid, Operation.kind.like("RESIZE_GROUP:%"))
                             .order_by(Operation.created_at)))
        assert [(o.status, o.message) for o in ops] == [("FAILED", "superseded by a resize to 5"), ("RUNNING", None)]
        codes = [e.code for e in s.scalars(select(Event).where(Event.cluster_id == cid))]
        assert codes.count("GROUP_RESIZE_REQUESTED") == 2


def test_task_groups_are_added_and_removed_others_are_not(cp: ControlPlane) -> None:
    cid = _up_cluster(cp)
    added = groups.add_group(cp, cid, groups.NewGroup(role="TASK", instance_type="local.large", count=2))
    assert (added.name, added.target_count, added.status) == ("TASK-2", 2, "RESIZING")
    with pytest.raises(ValidationFailed) as info:
        groups.add_group(cp, cid, groups.NewGroup(role="CORE", instance_type="local.nope", count=1, name="TASK"))
    assert {e.loc for e in info.value.errors} == {("role",), ("name",), ("instance_type",)}
    with pytest.raises(ValidationFailed, match="only TASK groups are removed"):
        groups.remove_group(cp, cid, "CORE")
    removed = groups.remove_group(cp, cid, "TASK-2", decommission_timeout=30)
    assert (removed.status, removed.target_count, removed.decommission_timeout) == ("TERMINATING", 0, 30)


def test_a_grow_on_the_ssh_provider_takes_ready_hosts_and_is_refused_without_them(cp: ControlPlane) -> None:
    from corral.reconcile import resize
    from corral.store.models import Host
    from tests.unit.hosts.pool import add_host
    from tests.unit.reconcile.fakerec import FakeRec

    cid = _up_cluster(cp)
    with cp.store.session() as s:
        row = s.get(Cluster, cid)
        assert row is not None
        row.provider = "ssh"
        next(g for g in row.groups if g.name == "TASK").host_labels = {"pool": "burst"}
    add_host(cp.store, "h1", {"pool": "other"})
    before = _snapshot(cp, cid)
    with pytest.raises(ValidationFailed) as refused:
        groups.resize_group(cp, cid, "TASK", groups.ResizeRequest(count=2))
    assert [e.loc for e in refused.value.errors] == [("count",)]
    assert "TASK needs 1 more READY host with label pool=burst" in str(refused.value) and "none match" in str(refused.value)
    assert _snapshot(cp, cid) == before
    add_host(cp.store, "h2", {"pool": "burst"})
    groups.resize_group(cp, cid, "TASK", groups.ResizeRequest(count=2))
    rec = FakeRec(cp, cid)
    cluster = rec._load()
    resize._converge(rec, cluster, next(g for g in cluster.groups if g.name == "TASK"))  # type: ignore[arg-type]
    with cp.store.session() as s:
        host = s.scalars(select(Host).where(Host.name == "h2")).one()
        new = s.scalars(select(Node).where(Node.cluster_id == cid, Node.status == "REQUESTED")).one()
        assert (host.status, host.node_id, host.cluster_id) == ("ALLOCATED", new.id, cid)
        assert (new.host_name, new.address, new.vcpus, new.memory_mib) == ("h2", host.address, 2, 4096)
    # Accepted, then the pool emptied before the nodes were made: the grow ends FAILED, saying why.
    add_host(cp.store, "h3", {"pool": "burst"})
    groups.resize_group(cp, cid, "TASK", groups.ResizeRequest(count=3))
    with cp.store.session() as s:
        s.scalars(select(Host).where(Host.name == "h3")).one().status = "DRAINING"
    cluster = rec._load()
    resize._converge(rec, cluster, next(g for g in cluster.groups if g.name == "TASK"))  # type: ignore[arg-type]
    with cp.store.session() as s:
        task = s.scalars(select(NodeGroup).where(NodeGroup.cluster_id == cid, NodeGroup.name == "TASK")).one()
        assert task.target_count == 2 and (task.status_reason or "").startswith("resize failed: TASK needs 1 more")
        failed = s.scalars(select(Event).where(Event.code == "RESIZE_FAILED")).one()
        assert "h3 (DRAINING)" in failed.message and "none match" in failed.message


def test_a_task_group_added_on_the_ssh_provider_takes_hosts_or_is_refused_whole(cp: ControlPlane) -> None:
    from tests.unit.hosts.pool import add_host

    cid = _up_cluster(cp)
    with pytest.raises(ValidationFailed) as refused:
        groups.add_group(cp, cid, groups.NewGroup(role="TASK", instance_type="host", count=1, name="spot",
                                                  host_labels={"pool": "spot"}))
    assert sorted(e.loc for e in refused.value.errors) == [("host_labels",), ("instance_type",)]  # local: neither
    with cp.store.session() as s:
        row = s.get(Cluster, cid)
        assert row is not None
        row.provider = "ssh"
    before = _snapshot(cp, cid)
    with pytest.raises(ValidationFailed, match="TASK needs 2 more READY hosts with label pool=spot; none match"):
        groups.add_group(cp, cid, groups.NewGroup(role="TASK", instance_type="host", count=2, name="spot",
                                                  host_labels={"pool": "spot"}))
    assert _snapshot(cp, cid) == before  # no group left behind
    add_host(cp.store, "s1", {"pool": "spot"})
    added = groups.add_group(cp, cid, groups.NewGroup(role="TASK", instance_type="host", count=1, name="spot",
                                                      host_labels={"pool": "spot"}))
    assert (added.name, added.instance_type, added.host_labels, added.target_count) == ("spot", "host", {"pool": "spot"}, 1)


def test_a_grow_on_hosts_waits_for_a_host_whose_old_datanode_the_namenode_remembers(cp: ControlPlane) -> None:
    from corral.reconcile import resize
    from tests.unit.hosts.pool import add_host, host_row
    from tests.unit.reconcile.fakerec import FakeRec

    cid = _up_cluster(cp)
    add_host(cp.store, "h9")
    with cp.store.session() as s:
        row = s.get(Cluster, cid)
        assert row is not None
        row.provider = "ssh"
        left = next(n for n in row.nodes if n.role == "CORE")  # released from this cluster, on h9
        left.status, left.decommission_state, left.address = "TERMINATED", "DECOMMISSIONED", host_row(cp.store, "h9").address
        left_id = left.id
    groups.resize_group(cp, cid, "TASK", groups.ResizeRequest(count=2))  # h9 will do: accepted
    rec = FakeRec(cp, cid)

    def converge() -> bool:
        cluster = rec._load()
        return resize._converge(rec, cluster, next(g for g in cluster.groups if g.name == "TASK"))  # type: ignore[arg-type]

    assert converge() is False  # its old DataNode may still look live to the NameNode: wait
    with cp.store.session() as s:
        assert s.scalars(select(Node).where(Node.cluster_id == cid, Node.status == "REQUESTED")).all() == []
        row = s.get(Node, left_id)
        assert row is not None
        row.provider_data = {"forgotten_at": 1.0}
    assert converge() is True
    assert host_row(cp.store, "h9").status == "ALLOCATED"
