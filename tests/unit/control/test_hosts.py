"""Host inventory requests: add pins the key, state changes follow HostState, remove frees
the name; nothing here runs a check (the reconciler does)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from corral.control import hosts
from corral.control.context import ControlPlane
from corral.domain.states import HostState
from corral.errors import Conflict, ValidationFailed
from corral.hosts.spec import HostSpec
from corral.store.models import Host
from tests.unit.hosts.fakessh import FakeSsh, key_of, use_fake_ssh
from tests.unit.hosts.pool import hold


@pytest.fixture
def ssh(cp: ControlPlane) -> FakeSsh:
    fake = use_fake_ssh(cp)
    fake.host("198.18.0.5")
    fake.host("198.18.0.6")
    return fake


def add(cp: ControlPlane, **body: Any) -> Host:
    return hosts.add_host(cp, HostSpec.model_validate({"address": "198.18.0.5", **body}))


def set_row(cp: ControlPlane, host_id: str, **values: Any) -> None:
    with cp.store.session() as s:
        s.execute(update(Host).where(Host.id == host_id).values(**values))


def test_add_pins_the_first_key_seen_and_waits_for_its_check(cp: ControlPlane, ssh: FakeSsh) -> None:
    host = add(cp, private_key=None, labels={"rack": "r1"}, cores=2, memory="4g")
    assert (host.status, host.target) == ("CHECKING", "READY")
    assert (host.host_key, host.host_key_fingerprint) == key_of(1)
    assert (host.name, host.cores_override, host.memory_mb_override, host.labels) == ("198.18.0.5", 2, 4096, {"rack": "r1"})
    assert hosts.check_pending(host)
    assert ssh.calls == [("198.18.0.5", "scan")]  # only the handshake: the check is the reconciler's


def test_a_given_fingerprint_must_match(cp: ControlPlane, ssh: FakeSsh) -> None:
    assert add(cp, host_key_fingerprint=key_of(1)[1]).host_key == key_of(1)[0]
    with pytest.raises(ValidationFailed) as info:
        add(cp, address="198.18.0.6", host_key_fingerprint=key_of(2)[1])
    assert info.value.errors[0].loc == ("host_key_fingerprint",)
    assert f"presents {key_of(1)[1]}, not {key_of(2)[1]}" in str(info.value)
    assert [h.name for h in hosts.list_hosts(cp)] == ["198.18.0.5"]


def test_a_host_down_at_add_is_added_unpinned(cp: ControlPlane, ssh: FakeSsh) -> None:
    ssh.hosts[("198.18.0.5", 22)].down = True
    host = add(cp, name="later")
    assert host.host_key is None and host.status == "CHECKING" and "not pinned yet" in (host.status_reason or "")


def test_duplicates_are_conflicts(cp: ControlPlane, ssh: FakeSsh) -> None:
    add(cp, name="a")
    with pytest.raises(Conflict, match="host a already exists"):
        add(cp, name="a", address="198.18.0.6")
    with pytest.raises(Conflict, match="already host a"):
        add(cp, name="b")


def test_an_address_that_is_no_name_needs_a_name(cp: ControlPlane, ssh: FakeSsh) -> None:
    ssh.host("::1")
    with pytest.raises(ValidationFailed, match="name"):
        add(cp, address="::1")
    assert add(cp, address="::1", name="v6").name == "v6"


def test_drain_by_state(cp: ControlPlane, ssh: FakeSsh) -> None:
    checking = add(cp, name="checking")
    assert hosts.drain_host(cp, "checking").status == "CHECKING"
    assert hosts.get_host(cp, "checking").target == "DRAINED"
    ready = add(cp, name="ready", address="198.18.0.6")
    set_row(cp, ready.id, status="READY")
    assert (hosts.drain_host(cp, "ready").status, hosts.get_host(cp, "ready").target) == ("DRAINED", "DRAINED")
    set_row(cp, checking.id, status="ALLOCATED", node_id="n-1", cluster_id="c-1", target="READY")
    drained = hosts.drain_host(cp, "checking")
    assert drained.status == "DRAINING" and "n-1" in (drained.status_reason or "")
    set_row(cp, ready.id, status="HOST_KEY_CHANGED")
    with pytest.raises(Conflict):
        hosts.drain_host(cp, "ready")


def test_remove_refuses_while_a_node_runs_and_frees_the_name(cp: ControlPlane, ssh: FakeSsh) -> None:
    host = add(cp, name="h", private_key=None)
    cluster_id, node_id = hold(cp, host.id, "WAITING", "RUNNING")
    set_row(cp, host.id, private_key="text")
    for force in (False, True):
        with pytest.raises(Conflict, match=f"runs node {node_id} of cluster {cluster_id} \\(WAITING\\)") as refused:
            hosts.remove_host(cp, "h", force=force)
        assert ("--force" in str(refused.value)) is force  # only said when it was asked for
    assert hosts.get_host(cp, "h").node_id == node_id
    set_row(cp, host.id, status="READY", node_id=None, cluster_id=None)
    removed = hosts.remove_host(cp, "h")
    assert (removed.status, removed.name, removed.private_key) == ("REMOVED", f"h~{host.id}", None)
    assert hosts.display_name(removed) == "h" and removed.removed_at is not None
    assert removed.status_reason == "removed by request"
    assert hosts.list_hosts(cp) == []
    assert [h.id for h in hosts.list_hosts(cp, include_removed=True)] == [host.id]
    assert hosts.get_host(cp, host.id).status == "REMOVED"  # by id, for history
    again = add(cp, name="h")
    assert again.id != host.id and hosts.get_host(cp, "h").id == again.id


def test_force_removes_a_host_held_by_a_node_of_an_ended_cluster_and_names_what_is_left(
        cp: ControlPlane, ssh: FakeSsh) -> None:
    host = add(cp, name="h")
    set_row(cp, host.id, facts={"home": "/home/corral"})
    cluster_id, node_id = hold(cp, host.id, "TERMINATED_WITH_ERRORS", "TERMINATED")
    with pytest.raises(Conflict) as refused:
        hosts.remove_host(cp, "h")
    assert str(refused.value) == (
        f"host h is still reserved by node {node_id} of cluster {cluster_id}, which has ended (TERMINATED_WITH_ERRORS): "
        "the host did not answer when the node was terminated, and is cleaned when it answers. If it will not come "
        "back, `corral host remove --force h` removes it anyway (what the node left on it stays there)")
    removed = hosts.remove_host(cp, "h", force=True)
    assert (removed.status, removed.node_id, removed.cluster_id, removed.name) == ("REMOVED", None, None, f"h~{host.id}")
    base = "/home/corral/.corral-host"
    assert removed.status_reason == (
        f"removed by force while reserved by node {node_id} of cluster {cluster_id} (which has ended "
        f"(TERMINATED_WITH_ERRORS)), never cleaned: 198.18.0.5 may still have its directory "
        f"{base}/nodes/{cluster_id}/{node_id}, its logs in {base}/orphaned-logs/{cluster_id}/{node_id}, processes "
        f"with CORRAL_NODE_ID={node_id} in their environment, the login's crontab line ending "
        f"'# corral-node {node_id}', and Corral's caches under {base}")
    assert hosts.remove_host(cp, host.id, force=True).status == "REMOVED"  # again: nothing more to do
    assert add(cp, name="h").status == "CHECKING"  # the name and the address are free


@pytest.mark.parametrize(("cluster_status", "node_status", "host_status", "allowed"), [
    ("TERMINATED", "TERMINATED", "DRAINING", True),
    ("TERMINATING", "TERMINATED", "ALLOCATED", True),  # its node is done; the others are still going
    ("WAITING", "LOST", "ALLOCATED", False),  # it may come back: never forced off
    ("TERMINATING", "TERMINATING", "ALLOCATED", False),
    ("TERMINATED_WITH_ERRORS", "LOST", "HOST_KEY_CHANGED", True),
])
def test_force_applies_only_when_the_node_is_not_live(cp: ControlPlane, ssh: FakeSsh, cluster_status: str,
                                                      node_status: str, host_status: str, allowed: bool) -> None:
    host = add(cp, name="h")
    cluster_id, _ = hold(cp, host.id, cluster_status, node_status, host_status)
    if allowed:
        assert hosts.remove_host(cp, "h", force=True).status == "REMOVED"
    else:
        with pytest.raises(Conflict, match=f"of cluster {cluster_id} \\({cluster_status}\\)"):
            hosts.remove_host(cp, "h", force=True)
        assert hosts.get_host(cp, "h").status == host_status


def test_force_removes_a_reservation_whose_node_corral_has_no_record_of(cp: ControlPlane, ssh: FakeSsh) -> None:
    host = add(cp, name="h")
    set_row(cp, host.id, status="ALLOCATED", node_id="n-abc", cluster_id="c-xyz")
    with pytest.raises(Conflict, match="reserved by node n-abc of cluster c-xyz, which Corral has no record of.*--force"):
        hosts.remove_host(cp, "h")
    removed = hosts.remove_host(cp, "h", force=True)
    assert removed.status == "REMOVED" and "~/.corral-host/nodes/c-xyz/n-abc" in (removed.status_reason or "")


def test_check_by_state(cp: ControlPlane, ssh: FakeSsh) -> None:
    host = add(cp, name="h")
    for state in ("READY", "FAILED_CHECK", "UNREACHABLE", "DRAINED"):
        set_row(cp, host.id, status=state)
        assert hosts.check_host(cp, "h").status == "CHECKING"
    set_row(cp, host.id, status="ALLOCATED", node_id="n-1", checked_at=123.0)
    allocated = hosts.check_host(cp, "h")
    assert (allocated.status, allocated.node_id, allocated.checked_at) == ("ALLOCATED", "n-1", None)
    assert hosts.check_pending(allocated)
    set_row(cp, host.id, status="HOST_KEY_CHANGED", node_id=None, status_reason="host key changed: pinned a, now b")
    with pytest.raises(Conflict, match="host key changed"):
        hosts.check_host(cp, "h")


def test_every_change_follows_host_state(cp: ControlPlane, ssh: FakeSsh) -> None:
    host = add(cp, name="h")
    with cp.store.session() as s:
        assert hosts.transition(s, host.id, HostState.CHECKING, HostState.READY, 1.0)
        assert not hosts.transition(s, host.id, HostState.CHECKING, HostState.READY, 2.0)  # no longer CHECKING
    with cp.store.session() as s, pytest.raises(Exception, match="HostState HOST_KEY_CHANGED -> READY"):
        hosts.transition(s, host.id, HostState.HOST_KEY_CHANGED, HostState.READY, 3.0)


def test_removal_and_conditional_changes_on_each_backend(cp_any: ControlPlane) -> None:
    fake = use_fake_ssh(cp_any)
    fake.host("198.18.0.5")
    host = add(cp_any, name="h")
    with cp_any.store.session() as s:
        assert hosts.transition(s, host.id, HostState.CHECKING, HostState.READY, 1.0)
    with cp_any.store.session() as s:
        assert not hosts.transition(s, host.id, HostState.CHECKING, HostState.READY, 2.0)
    assert hosts.remove_host(cp_any, "h").name == f"h~{host.id}"
    assert add(cp_any, name="h").status == "CHECKING"
    assert [h.status for h in hosts.list_hosts(cp_any, include_removed=True)] == ["CHECKING", "REMOVED"]
