"""Cluster requests: create (all rows or none, idempotent by client token) and terminate."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import select

from corral.control import clusters
from corral.control.context import ControlPlane
from corral.errors import Conflict, NotFound, ValidationFailed
from corral.store.models import Cluster, Event, Node, NodeGroup, Operation, OperationStep, Step
from tests.unit.helpers import count_rows, make_spec

ALL_TABLES = (Cluster, NodeGroup, Node, Step, Operation, OperationStep, Event)


def test_create_writes_cluster_groups_nodes_and_operation(cp: ControlPlane) -> None:
    spec = make_spec(node_groups=[{"role": "CORE", "instance_type": "local.large", "count": 2},
                                  {"role": "MASTER", "instance_type": "local.small"},
                                  {"role": "TASK", "instance_type": "local.medium", "count": 3}])
    cluster, created = clusters.create_cluster(cp, spec)
    assert created is True
    assert cp.notifier.reconcile_now.is_set()  # the reconciler is woken up
    with cp.store.session() as s:
        row = clusters.load_cluster(s, cluster.id)
        assert (row.status, row.target, row.name, row.services) == ("STARTING", "ACTIVE", "unit", ["spark"])
        assert row.deadline_at is not None and row.deadline_at > row.created_at
        assert sorted((g.role, g.instance_type, g.target_count) for g in row.groups) == [
            ("CORE", "local.large", 2), ("MASTER", "local.small", 1), ("TASK", "local.medium", 3)]
        nodes = row.nodes
        assert len(nodes) == 6
        assert {n.status for n in nodes} == {"REQUESTED"}
        assert {n.target for n in nodes} == {"RUNNING"}
        assert all(n.address is None for n in nodes)
        assert sorted((n.role, n.instance_type) for n in nodes) == sorted(
            [("MASTER", "local.small")] + [("CORE", "local.large")] * 2 + [("TASK", "local.medium")] * 3)
        groups = {g.id: g for g in row.groups}
        assert all(groups[n.group_id].role == n.role for n in nodes)
        (op,) = s.scalars(select(Operation).where(Operation.cluster_id == cluster.id)).all()
        assert (op.kind, op.status) == ("CREATE_CLUSTER", "RUNNING")
        assert [(st.name, st.status) for st in op.steps] == [
            ("VALIDATE", "DONE"), ("PROVISION_NODES", "PENDING"), ("DEPLOY_AND_BOOTSTRAP", "PENDING"),
            ("START_SERVICES", "PENDING"), ("CHECK_READY", "PENDING")]
        codes = [e.code for e in s.scalars(select(Event).where(Event.cluster_id == cluster.id))]
        assert codes == ["CLUSTER_CREATED"]
    assert cp.providers["local"].calls == []  # creating only writes rows; the reconciler provisions


def test_initial_steps_are_stored_in_order(cp: ControlPlane) -> None:
    spec = make_spec(steps=[{"type": "shell", "args": ["echo one"], "name": "one"},
                            {"type": "shell", "args": ["echo", "two"], "action_on_failure": "TERMINATE_CLUSTER"}])
    cluster, _ = clusters.create_cluster(cp, spec)
    with cp.store.session() as s:
        steps = clusters.cluster_steps(s, cluster.id)
    assert [(st.seq, st.name, st.status, st.dispatched, st.action_on_failure) for st in steps] == [
        (0, "one", "PENDING", False, "CONTINUE"), (1, "shell step", "PENDING", False, "TERMINATE_CLUSTER")]


def test_same_client_token_returns_the_same_cluster(cp: ControlPlane) -> None:
    first, created = clusters.create_cluster(cp, make_spec(client_token="tok-1"))
    again, created_again = clusters.create_cluster(cp, make_spec(client_token="tok-1"))
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert count_rows(cp.store, Cluster) == 1
    assert count_rows(cp.store, Node) == 3
    assert count_rows(cp.store, Operation) == 1


def test_different_tokens_make_different_clusters(cp: ControlPlane) -> None:
    a, _ = clusters.create_cluster(cp, make_spec(client_token="tok-a"))
    b, _ = clusters.create_cluster(cp, make_spec(client_token="tok-b"))
    c, _ = clusters.create_cluster(cp, make_spec())  # no token: never deduplicated
    d, _ = clusters.create_cluster(cp, make_spec())
    assert len({a.id, b.id, c.id, d.id}) == 4


def test_same_token_with_a_different_spec_is_a_conflict(cp: ControlPlane) -> None:
    first, _ = clusters.create_cluster(cp, make_spec(client_token="tok-1"))
    with pytest.raises(Conflict, match=first.id):
        clusters.create_cluster(cp, make_spec(client_token="tok-1", name="other"))
    assert count_rows(cp.store, Cluster) == 1


def test_invalid_spec_creates_nothing(cp: ControlPlane) -> None:
    with pytest.raises(ValidationFailed) as info:
        clusters.create_cluster(cp, make_spec(node_groups=[{"role": "MASTER", "count": 2}, {"role": "CORE"}],
                                              client_token="tok-bad"))
    assert [e.loc for e in info.value.errors] == [("node_groups", 0, "count")]
    for model in ALL_TABLES:
        assert count_rows(cp.store, model) == 0, model.__tablename__
    # the token was not consumed: a corrected spec with it goes through
    _, created = clusters.create_cluster(cp, make_spec(client_token="tok-bad"))
    assert created


def test_invalid_initial_step_creates_nothing_and_names_the_step(cp: ControlPlane, tmp_path: Path) -> None:
    spec = make_spec(steps=[{"type": "shell", "args": ["true"]},
                            {"type": "spark", "args": ["--conf", "a=b", str(tmp_path / "missing.py")]}])
    with pytest.raises(ValidationFailed) as info:
        clusters.create_cluster(cp, spec)
    assert [e.loc for e in info.value.errors] == [("steps", 1, "args", 2)]
    assert "not uploaded" in info.value.errors[0].msg
    for model in ALL_TABLES:
        assert count_rows(cp.store, model) == 0, model.__tablename__


def test_bootstrap_scripts_are_uploaded_artifacts(cp: ControlPlane) -> None:
    sha = cp.artifacts.put_bytes(b"#!/bin/sh\necho installing\n")
    # The path is the client's: it does not exist on this machine, and it need not.
    cluster, _ = clusters.create_cluster(cp, make_spec(bootstrap_actions=[
        {"path": "/on/the/client/install.sh", "sha256": sha, "args": ["-y"]}]))
    (action,) = clusters.get_cluster(cp, cluster.id).bootstrap_actions
    assert action == {"name": "install.sh", "args": ["-y"], "sha256": sha, "file_name": "install.sh"}


def test_bootstrap_scripts_not_uploaded_are_refused_and_nothing_is_read(cp: ControlPlane) -> None:
    hostname = hashlib.sha256(Path("/etc/hostname").read_bytes()).hexdigest()
    spec = make_spec(bootstrap_actions=[{"path": "/etc/hostname"}, {"path": "/etc/hostname", "sha256": hostname},
                                        {"path": "/x/..", "sha256": hostname}],
                     steps=[{"type": "shell", "args": ["/etc/hostname.sh"]}])
    with pytest.raises(ValidationFailed) as info:
        clusters.create_cluster(cp, spec)
    assert [(e.loc, e.msg) for e in info.value.errors] == [
        (("bootstrap_actions", 0, "path"), "/etc/hostname: not uploaded — upload it with PUT /api/v1/artifacts/{sha256} "
                                           "and give its sha256"),
        (("bootstrap_actions", 1, "path"), f"/etc/hostname: not uploaded (no artifact {hostname}) — upload it with "
                                           f"PUT /api/v1/artifacts/{hostname}"),
        (("bootstrap_actions", 2, "path"), "path must name a file, got '/x/..'"),
        (("steps", 0, "args", 0), "script /etc/hostname.sh: not uploaded — upload it with PUT /api/v1/artifacts/{sha256} "
                                  "and name it in files")]
    for model in ALL_TABLES:
        assert count_rows(cp.store, model) == 0, model.__tablename__
    assert not any(p.is_file() for p in cp.settings.artifacts_dir.rglob("*"))  # the control plane's file stays its own


def test_terminate_sets_the_target_once(cp: ControlPlane) -> None:
    cluster, _ = clusters.create_cluster(cp, make_spec())
    done = clusters.terminate_cluster(cp, cluster.id)
    assert (done.status, done.target, done.state_code, done.failure_code) == ("STARTING", "TERMINATED", "USER_REQUEST", None)
    assert done.plan_version == cluster.plan_version + 1
    again = clusters.terminate_cluster(cp, cluster.id)
    assert again.plan_version == done.plan_version
    kinds = [op.kind for op in clusters.list_operations(cp, cluster.id)]
    assert kinds == ["CREATE_CLUSTER", "TERMINATE_CLUSTER"]


def test_unknown_cluster(cp: ControlPlane) -> None:
    with pytest.raises(NotFound):
        clusters.get_cluster(cp, "c-nothere")
    with pytest.raises(NotFound):
        clusters.terminate_cluster(cp, "c-nothere")


def test_list_clusters_filters_by_state(cp: ControlPlane) -> None:
    a, _ = clusters.create_cluster(cp, make_spec(name="a"))
    with cp.store.session() as s:
        s.get(Cluster, a.id).status = "WAITING"  # type: ignore[union-attr]
    b, _ = clusters.create_cluster(cp, make_spec(name="b"))
    assert [c.id for c in clusters.list_clusters(cp)] == [b.id, a.id]  # newest first
    assert [c.id for c in clusters.list_clusters(cp, ["WAITING"])] == [a.id]
