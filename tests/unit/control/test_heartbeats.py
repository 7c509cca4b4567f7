"""Repeated RUNNING reports answered without a write each (corral.control.heartbeats): the
same answer as the full path, their heartbeat times written in one batch, and anything
that differs, or a node that is gone, LOST or no longer RUNNING, takes the full path."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from corral.agent.protocol import AgentEvent
from corral.control import agents
from corral.control.context import ControlPlane
from corral.control.heartbeats import FLUSH_SECONDS
from corral.store.models import Cluster, Node, bump_plan_version
from tests.unit.control.test_agents import report, setup_cluster


def _writes(cp: ControlPlane) -> list[str]:
    """Every UPDATE/INSERT statement the store runs from here on."""
    seen: list[str] = []

    @event.listens_for(cp.store.engine, "before_cursor_execute")
    def _record(conn, cursor, statement, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith(("UPDATE", "INSERT")):
            seen.append(statement)

    return seen


def _heartbeat(cp: ControlPlane, node_id: str) -> float | None:
    with cp.store.session() as s:
        return s.get(Node, node_id).last_heartbeat  # type: ignore[union-attr]


def test_a_repeated_report_writes_nothing_until_the_batch(cp: ControlPlane) -> None:
    cid, node, token = setup_cluster(cp)
    first = agents.apply_report(cp, node, token, report(node, components={"x": {"status": "RUNNING", "pid": 7}}))
    stored_at = _heartbeat(cp, node)
    writes = _writes(cp)
    again = agents.apply_report(cp, node, token, report(node, components={"x": {"status": "RUNNING", "pid": 7}}))
    assert again == first and writes == []  # answered from memory, the same answer
    assert _heartbeat(cp, node) == stored_at
    cp.heartbeats.flush(cp.store, 1e12)  # the batch: one UPDATE for every node kept in memory
    assert len(writes) == 1 and _heartbeat(cp, node) > stored_at  # type: ignore[operator]
    with cp.store.session() as s:  # a plan change reaches the agent on the fast path too
        bump_plan_version(s, s.get(Cluster, cid))  # type: ignore[arg-type]
    bumped = agents.apply_report(cp, node, token, report(node, components={"x": {"status": "RUNNING", "pid": 7}}))
    assert bumped.plan_version == first.plan_version + 1


def test_what_differs_takes_the_full_path(cp: ControlPlane) -> None:
    _, node, token = setup_cluster(cp)
    agents.apply_report(cp, node, token, report(node))
    writes = _writes(cp)
    agents.apply_report(cp, node, token, report(node, components={"x": {"status": "RESTARTING", "restarts": 1}}))
    assert writes  # a changed component is stored at once
    writes.clear()
    event_ = AgentEvent(seq=1, time=1.0, code="DAEMON_RESTARTED", message="x restarted")
    ack = agents.apply_report(cp, node, token, report(node, components={"x": {"status": "RESTARTING", "restarts": 1}},
                                                      events=[event_]))
    assert writes and ack.last_event_seq == 1
    with pytest.raises(agents.Unauthorized):  # a wrong token never takes the fast path
        agents.apply_report(cp, node, "crl_wrong", report(node, components={"x": {"status": "RESTARTING", "restarts": 1}}))


@pytest.mark.parametrize("status", ["TERMINATED", "LOST", "STARTING"])
def test_a_node_that_is_not_running_takes_the_full_path(cp: ControlPlane, status: str) -> None:
    _, node, token = setup_cluster(cp)
    agents.apply_report(cp, node, token, report(node))
    with cp.store.session() as s:
        s.get(Node, node).status = status  # type: ignore[union-attr]
    if status == "TERMINATED":
        with pytest.raises(agents.Gone):
            agents.apply_report(cp, node, token, report(node))
        return
    agents.apply_report(cp, node, token, report(node))
    with cp.store.session() as s:
        assert s.get(Node, node).status == "RUNNING"  # type: ignore[union-attr]  # recovered / moved on


def test_the_batch_waits_its_interval(cp: ControlPlane) -> None:
    _, node, token = setup_cluster(cp)
    agents.apply_report(cp, node, token, report(node))
    cp.heartbeats.flush(cp.store, 1000.0, force=True)
    agents.apply_report(cp, node, token, report(node))
    assert cp.heartbeats.flush(cp.store, 1000.0 + FLUSH_SECONDS / 2) == 0
    assert cp.heartbeats.flush(cp.store, 1000.0 + FLUSH_SECONDS) == 1


def test_a_pass_writes_its_own_clusters_heartbeats_only(cp: ControlPlane) -> None:
    cid, node, token = setup_cluster(cp)
    agents.apply_report(cp, node, token, report(node))
    before = _heartbeat(cp, node)
    agents.apply_report(cp, node, token, report(node))  # answered from memory
    assert cp.heartbeats.flush(cp.store, 0.0, force=True, cluster_id="c-other") == 0
    assert _heartbeat(cp, node) == before
    assert cp.heartbeats.flush(cp.store, 0.0, force=True, cluster_id=cid) == 1
    assert _heartbeat(cp, node) > before  # type: ignore[operator]
