"""Replacement of a node its services report unhealthy (a NodeManager UNHEALTHY), on the
store with a fake service and an injected clock: since when is kept in the row, a grace
period passes first, the node leaves gracefully (DECOMMISSIONING, never taken back by the
grow that replaces it), a shared cause holds every replacement, an unanswered question
changes nothing, and a recovered node is forgotten."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from corral.control.context import ControlPlane
from corral.reconcile import deadlines, replace, resize
from corral.services.base import NotObserved
from corral.store.models import Event, Node
from tests.unit.control.test_groups import _up_cluster
from tests.unit.reconcile.fakerec import FakeRec

T0 = 1_000_000.0


@dataclass
class _Health:
    """A service whose daemons report ``reports`` (node id -> health report)."""
    reports: dict[str, str] = field(default_factory=dict)
    answering: bool = True

    def unhealthy_nodes(self, cluster: object, timeout: float) -> dict[str, str]:
        if not self.answering:
            raise NotObserved("ResourceManager not answering (ConnectError)")
        return dict(self.reports)


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> _Health:
    fake = _Health()
    monkeypatch.setattr(replace, "get_service", lambda name: fake)
    replace._last_health_check.clear()
    return fake


def _pass(rec: FakeRec, at: float) -> None:
    rec.now = at
    replace.watch(rec, rec._load())  # type: ignore[arg-type]


def _nodes(rec: FakeRec, role: str) -> list[Node]:
    return sorted((n for n in rec._load().nodes if n.role == role), key=lambda n: n.created_at)


def _codes(cp: ControlPlane) -> list[str]:
    with cp.store.session() as s:
        return [e.code for e in s.scalars(select(Event).order_by(Event.id))
                if e.code.startswith("NODE_") and e.code != "NODE_REQUESTED"]


DISK = "1/1 local-dirs usable space is below configured utilization percentage/no more usable space"


def _held_while_one_is_under_way(rec: FakeRec, service: _Health, replaced: str, other: str) -> None:
    """A second CORE node, ``other``, unhealthy past its grace waits for ``replaced``'s replacement."""
    service.reports = {replaced: DISK, other: "health script: ERROR bad disk"}
    _pass(rec, rec.now + replace.HEALTH_CHECK_SECONDS)
    _pass(rec, rec.now + deadlines.NODE_UNHEALTHY_SECONDS + replace.HEALTH_CHECK_SECONDS)
    row = next(n for n in _nodes(rec, "CORE") if n.id == other)
    assert row.decommission_state is None and "a replacement is already under way" in row.provider_data["replacement_held"]


def test_an_unhealthy_node_is_replaced_after_its_grace_and_leaves_gracefully(cp: ControlPlane, service: _Health) -> None:
    rec = FakeRec(cp, now=T0, cluster_id=_up_cluster(cp))
    sick = _nodes(rec, "CORE")[0]
    service.reports = {sick.id: DISK}
    _pass(rec, T0)
    row = next(n for n in _nodes(rec, "CORE") if n.id == sick.id)
    assert (row.provider_data["unhealthy_since"], row.provider_data["health_report"]) == (T0, DISK)
    assert row.decommission_state is None and _codes(cp) == ["NODE_UNHEALTHY"]
    _pass(rec, T0 + deadlines.NODE_UNHEALTHY_SECONDS - 1)  # still within its grace
    assert next(n for n in _nodes(rec, "CORE") if n.id == sick.id).decommission_state is None
    _pass(rec, T0 + deadlines.NODE_UNHEALTHY_SECONDS + replace.HEALTH_CHECK_SECONDS)
    row = next(n for n in _nodes(rec, "CORE") if n.id == sick.id)
    assert (row.target, row.decommission_state) == ("RUNNING", "DECOMMISSIONING")
    assert row.status_reason and row.status_reason.startswith("replaced: its NodeManager has been UNHEALTHY for ")
    assert DISK in row.status_reason and _codes(cp) == ["NODE_UNHEALTHY", "NODE_REPLACED"]
    # The resize pass grows CORE back to 2 with a new node; it does not take the leaver back.
    cluster = rec._load()
    resize._converge(rec, cluster, next(g for g in cluster.groups if g.name == "CORE"))  # type: ignore[arg-type]
    core = _nodes(rec, "CORE")
    assert sorted((n.status, n.decommission_state or "-") for n in core) == [
        ("REQUESTED", "-"), ("RUNNING", "-"), ("RUNNING", "DECOMMISSIONING")]
    # One replacement at a time: a second unhealthy node waits for the first to finish.
    other = next(n for n in core if n.status == "RUNNING" and n.decommission_state is None)
    _held_while_one_is_under_way(rec, service, sick.id, other.id)


def test_a_cause_every_node_shares_holds_the_replacements(cp: ControlPlane, service: _Health) -> None:
    rec = FakeRec(cp, now=T0, cluster_id=_up_cluster(cp))
    workers = _nodes(rec, "CORE") + _nodes(rec, "TASK")
    service.reports = {n.id: DISK for n in workers}  # one full disk under every node of the machine
    _pass(rec, T0)
    _pass(rec, T0 + deadlines.NODE_UNHEALTHY_SECONDS + replace.HEALTH_CHECK_SECONDS)
    _pass(rec, T0 + deadlines.NODE_UNHEALTHY_SECONDS + 2 * replace.HEALTH_CHECK_SECONDS)
    rows = _nodes(rec, "CORE") + _nodes(rec, "TASK")
    assert all(n.decommission_state is None for n in rows) and len(rows) == 3
    assert _codes(cp).count("NODE_REPLACEMENT_HELD") == 3  # once per node, not once per pass
    assert all("a cause they share" in n.provider_data["replacement_held"] for n in rows)


def test_a_recovered_node_is_forgotten_and_silence_changes_nothing(cp: ControlPlane, service: _Health) -> None:
    rec = FakeRec(cp, now=T0, cluster_id=_up_cluster(cp))
    sick = _nodes(rec, "TASK")[0]
    service.reports = {sick.id: DISK}
    _pass(rec, T0)
    service.answering = False  # the ResourceManager restarting: no news is not good news
    _pass(rec, T0 + replace.HEALTH_CHECK_SECONDS)
    assert _nodes(rec, "TASK")[0].provider_data["unhealthy_since"] == T0
    service.answering, service.reports = True, {}
    _pass(rec, T0 + 2 * replace.HEALTH_CHECK_SECONDS)
    row = _nodes(rec, "TASK")[0]
    assert "unhealthy_since" not in row.provider_data and row.decommission_state is None
    assert _codes(cp) == ["NODE_UNHEALTHY", "NODE_HEALTHY"]


def test_without_replacement_an_unhealthy_node_is_only_reported(cp: ControlPlane, service: _Health) -> None:
    rec = FakeRec(cp, now=T0, cluster_id=_up_cluster(cp, unhealthy_node_replacement=False))
    sick = _nodes(rec, "TASK")[0]
    service.reports = {sick.id: DISK}
    _pass(rec, T0)
    _pass(rec, T0 + 10 * deadlines.NODE_UNHEALTHY_SECONDS)
    assert _nodes(rec, "TASK")[0].decommission_state is None and _codes(cp) == ["NODE_UNHEALTHY"]


def test_a_node_that_was_not_asked_about_keeps_its_unhealthy_clock(cp: ControlPlane, service: _Health) -> None:
    rec = FakeRec(cp, now=T0, cluster_id=_up_cluster(cp))
    sick = _nodes(rec, "TASK")[0]
    service.reports = {sick.id: DISK}
    _pass(rec, T0)
    with cp.store.session() as s:
        row = s.get(Node, sick.id)
        assert row is not None
        row.status = "STARTING"  # its NodeManager restarting: not in the in-service view, not asked
    service.reports = {}
    _pass(rec, T0 + replace.HEALTH_CHECK_SECONDS)
    assert _nodes(rec, "TASK")[0].provider_data["unhealthy_since"] == T0 and _codes(cp) == ["NODE_UNHEALTHY"]


def test_a_replaced_node_still_draining_holds_the_next_replacement(cp: ControlPlane, service: _Health) -> None:
    rec = FakeRec(cp, now=T0, cluster_id=_up_cluster(cp))
    first, second = _nodes(rec, "CORE")
    service.reports = {first.id: DISK}
    _pass(rec, T0)
    _pass(rec, T0 + deadlines.NODE_UNHEALTHY_SECONDS + replace.HEALTH_CHECK_SECONDS)
    with cp.store.session() as s:  # its replacement has joined; the old node still drains
        s.add(Node(id="n-newcore1", cluster_id=rec.cluster_id, group_id=first.group_id, role="CORE",
                   instance_type="local.medium", status="RUNNING", target="RUNNING", provider_data={},
                   components={}, created_at=T0 + 400, ready_at=T0 + 420, address="127.99.0.77"))
    _held_while_one_is_under_way(rec, service, first.id, second.id)


def test_on_hosts_a_live_unhealthy_node_waits_for_a_spare_host(cp: ControlPlane, service: _Health) -> None:
    from corral.store.models import Cluster
    from tests.unit.hosts.pool import add_host, host_row

    rec = FakeRec(cp, now=T0, cluster_id=_up_cluster(cp))
    sick = _nodes(rec, "CORE")[0]
    add_host(cp.store, "sickly", status="ALLOCATED", node_id=sick.id, cluster_id=rec.cluster_id)
    with cp.store.session() as s:
        cluster = s.get(Cluster, rec.cluster_id)
        assert cluster is not None
        cluster.provider = "ssh"
        next(n for n in cluster.nodes if n.id == sick.id).host_id = "hst-sickly"
    service.reports = {sick.id: DISK}
    _pass(rec, T0)
    _pass(rec, T0 + deadlines.NODE_UNHEALTHY_SECONDS + replace.HEALTH_CHECK_SECONDS)
    row = next(n for n in _nodes(rec, "CORE") if n.id == sick.id)
    assert row.decommission_state is None and row.provider_data["replacement_held"].startswith("held: no READY host")
    version = rec._load().plan_version
    _pass(rec, rec.now + replace.HEALTH_CHECK_SECONDS)  # held again, said once, nothing rewritten
    assert rec._load().plan_version == version and _codes(cp).count("NODE_REPLACEMENT_HELD") == 1
    assert host_row(cp.store, "sickly").status == "ALLOCATED"  # held: its host stays as it was
    add_host(cp.store, "spare")
    _pass(rec, rec.now + replace.HEALTH_CHECK_SECONDS)
    assert next(n for n in _nodes(rec, "CORE") if n.id == sick.id).decommission_state == "DECOMMISSIONING"
    # Its host is out of selection (DRAINED once the node is released): no new node lands there again.
    sickly = host_row(cp.store, "sickly")
    assert (sickly.status, sickly.target) == ("DRAINING", "DRAINED") and DISK in (sickly.status_reason or "")
    assert host_row(cp.store, "spare").status == "READY"
