"""Agent reports: authentication, node status from phases, events once, step results."""

from __future__ import annotations

import time

import pytest

from corral.agent.protocol import AgentEvent, NodeReport, StepReport
from corral.control import agents, clusters, steps
from corral.control.context import ControlPlane
from corral.reconcile import steps as queue
from corral.store.models import Event, Node
from tests.unit.helpers import count_rows, make_spec


def setup_cluster(cp: ControlPlane, action: str = "CONTINUE") -> tuple[str, str, str]:
    cluster, _ = clusters.create_cluster(cp, make_spec(steps=[
        {"type": "shell", "args": ["false"], "action_on_failure": action},
        {"type": "shell", "args": ["echo next"]}]))
    with cp.store.session() as s:
        row = clusters.load_cluster(s, cluster.id)
        master = next(n for n in row.nodes if n.role == "MASTER")
        master.status, master.address, master.directory = "PROVISIONING", "127.99.0.10", "/nodes/m"
        queue.schedule(s, row)
    return cluster.id, master.id, cluster.agent_token


def report(node_id: str, phase: str = "RUNNING", **extra: object) -> NodeReport:
    return NodeReport.model_validate({"node_id": node_id, "agent_pid": 4242, "plan_version": 1, "phase": phase, **extra})


def test_bad_token_is_refused(cp: ControlPlane) -> None:
    _, node_id, _ = setup_cluster(cp)
    with pytest.raises(agents.Unauthorized):
        agents.apply_report(cp, node_id, "wrong-token", report(node_id))


def test_phases_move_the_node_forward_only(cp: ControlPlane) -> None:
    cid, node_id, token = setup_cluster(cp)
    agents.apply_report(cp, node_id, token, report(node_id, "DEPLOYING"))
    with cp.store.session() as s:
        node = s.get(Node, node_id)
        assert node is not None and node.status == "BOOTSTRAPPING" and node.last_heartbeat is not None
    agents.apply_report(cp, node_id, token, report(node_id, "RUNNING"))
    with cp.store.session() as s:
        node = s.get(Node, node_id)
        assert node is not None and node.status == "RUNNING" and node.ready_at is not None


def test_events_are_recorded_once(cp: ControlPlane) -> None:
    _, node_id, token = setup_cluster(cp)
    event = AgentEvent(seq=1, time=time.time(), code="COMPONENT_CRASHED", message="x", level="WARN")
    ack = agents.apply_report(cp, node_id, token, report(node_id, events=[event]))
    assert ack.last_event_seq == 1
    agents.apply_report(cp, node_id, token, report(node_id, events=[event]))  # resent: the ack was lost
    assert count_rows(cp.store, Event, code="COMPONENT_CRASHED") == 1


def test_step_result_counts_only_once_its_logs_are_flushed(cp: ControlPlane) -> None:
    cid, node_id, token = setup_cluster(cp, action="TERMINATE_CLUSTER")
    step_id = steps.list_steps(cp, cid)[0].id
    failed = StepReport(status="FAILED", exit_code=1, message="exit 1", logs_flushed=False)
    agents.apply_report(cp, node_id, token, report(node_id, steps={step_id: failed}))
    assert steps.get_step(cp, cid, step_id).status == "RUNNING"
    assert clusters.get_cluster(cp, cid).target == "ACTIVE"
    version = clusters.get_cluster(cp, cid).plan_version
    ack = agents.apply_report(cp, node_id, token,
                              report(node_id, steps={step_id: failed.model_copy(update={"logs_flushed": True})}))
    step = steps.get_step(cp, cid, step_id)
    assert (step.status, step.exit_code) == ("FAILED", 1)
    cluster = clusters.get_cluster(cp, cid)
    assert (cluster.target, cluster.failure_code) == ("TERMINATED", "STEP_FAILURE")
    assert ack.plan_version == cluster.plan_version > version
    assert steps.list_steps(cp, cid)[1].status == "CANCELLED"


def test_store_log_checks_the_cluster_token(cp: ControlPlane) -> None:
    cid, _, token = setup_cluster(cp)
    step_id = steps.list_steps(cp, cid)[0].id
    assert agents.store_log(cp, step_id, token, "stdout", 0, b"abc") == 3
    assert agents.store_log(cp, step_id, token, "stdout", 0, b"abc") == 3  # a retry
    with pytest.raises(agents.Unauthorized):
        agents.store_log(cp, step_id, "nope", "stdout", 3, b"def")
    assert cp.logs.read(cid, step_id, "stdout", 0, 100) == b"abc"


def test_yarn_application_ids_are_read_from_the_log_even_across_uploads(cp: ControlPlane) -> None:
    cid, _, token = setup_cluster(cp)
    step_id = steps.list_steps(cp, cid)[0].id
    first = b"INFO impl.YarnClientImpl: Submitted application applica"
    second = b"tion_1795620845906_0007\nINFO more\nINFO Submitted application application_1795620845906_0008\n"
    agents.store_log(cp, step_id, token, "stderr", 0, first)
    assert steps.get_step(cp, cid, step_id).yarn_application_ids == []
    agents.store_log(cp, step_id, token, "stderr", len(first), second)
    agents.store_log(cp, step_id, token, "stderr", len(first), second)  # a retried upload adds nothing
    assert steps.get_step(cp, cid, step_id).yarn_application_ids == [
        "application_1795620845906_0007", "application_1795620845906_0008"]
    assert count_rows(cp.store, Event, code="STEP_YARN_APPLICATION") == 1
