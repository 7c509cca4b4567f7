"""The step queue: one step at a time in seq order; ActionOnFailure as in EMR."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from corral.control import clusters
from corral.control.context import ControlPlane
from corral.domain.states import InvalidTransition, StepState
from corral.reconcile import steps as queue
from corral.store.models import Operation, Step
from tests.unit.helpers import make_spec


def make(cp: ControlPlane, *actions: str) -> str:
    spec = make_spec(steps=[{"type": "shell", "args": [f"echo {i}"], "name": f"step-{i}", "action_on_failure": a}
                            for i, a in enumerate(actions)])
    cluster, _ = clusters.create_cluster(cp, spec)
    return cluster.id


def schedule(cp: ControlPlane, cluster_id: str) -> bool:
    with cp.store.session() as s:
        return queue.schedule(s, clusters.load_cluster(s, cluster_id))


def state(cp: ControlPlane, cluster_id: str) -> list[tuple[str, str, bool]]:
    with cp.store.session() as s:
        return [(st.name, st.status, st.dispatched) for st in clusters.cluster_steps(s, cluster_id)]


def finish(cp: ControlPlane, cluster_id: str, seq: int, final: StepState) -> None:
    """What the agents' reports do: PENDING -> RUNNING -> final, then the queue's reaction."""
    with cp.store.session() as s:
        cluster = clusters.load_cluster(s, cluster_id)
        step = s.scalar(select(Step).where(Step.cluster_id == cluster_id, Step.seq == seq))
        assert step is not None
        queue.set_step_state(s, step, StepState.RUNNING)
        queue.set_step_state(s, step, final, "exit code 1" if final is StepState.FAILED else None)
        queue.on_step_finished(s, cluster, step)


def plan_version(cp: ControlPlane, cluster_id: str) -> int:
    return clusters.get_cluster(cp, cluster_id).plan_version


def test_dispatches_one_step_at_a_time_in_order(cp: ControlPlane) -> None:
    cid = make(cp, "CONTINUE", "CONTINUE", "CONTINUE")
    v0 = plan_version(cp, cid)
    assert schedule(cp, cid) is True
    assert state(cp, cid) == [("step-0", "PENDING", True), ("step-1", "PENDING", False), ("step-2", "PENDING", False)]
    assert plan_version(cp, cid) == v0 + 1
    assert schedule(cp, cid) is True  # step-0 still active: nothing else goes out
    assert [d for _, _, d in state(cp, cid)] == [True, False, False]
    assert plan_version(cp, cid) == v0 + 1
    finish(cp, cid, 0, StepState.COMPLETED)
    assert schedule(cp, cid) is True
    assert [d for _, _, d in state(cp, cid)] == [True, True, False]
    finish(cp, cid, 1, StepState.COMPLETED)
    assert schedule(cp, cid) is True
    finish(cp, cid, 2, StepState.COMPLETED)
    assert schedule(cp, cid) is False  # nothing left
    with cp.store.session() as s:
        assert queue.all_steps_done(s, clusters.load_cluster(s, cid))


def test_order_is_by_seq_not_by_creation(cp: ControlPlane) -> None:
    cid = make(cp, "CONTINUE", "CONTINUE")
    with cp.store.session() as s:  # swap the queue positions
        first, second = clusters.cluster_steps(s, cid)
        first.seq, second.seq = 10, 5
    schedule(cp, cid)
    assert {name: dispatched for name, _, dispatched in state(cp, cid)} == {"step-1": True, "step-0": False}


def test_cancelled_step_is_skipped(cp: ControlPlane) -> None:
    cid = make(cp, "CONTINUE", "CONTINUE")
    with cp.store.session() as s:
        queue.set_step_state(s, clusters.cluster_steps(s, cid)[0], StepState.CANCELLED, "by request")
    schedule(cp, cid)
    assert state(cp, cid) == [("step-0", "CANCELLED", False), ("step-1", "PENDING", True)]


def test_failure_with_continue_goes_on(cp: ControlPlane) -> None:
    cid = make(cp, "CONTINUE", "CONTINUE")
    schedule(cp, cid)
    finish(cp, cid, 0, StepState.FAILED)
    assert state(cp, cid)[1] == ("step-1", "PENDING", False)
    schedule(cp, cid)
    assert state(cp, cid)[1] == ("step-1", "PENDING", True)
    assert clusters.get_cluster(cp, cid).target == "ACTIVE"


def test_failure_with_cancel_and_wait_cancels_the_queue_and_keeps_the_cluster(cp: ControlPlane) -> None:
    cid = make(cp, "CANCEL_AND_WAIT", "CONTINUE", "TERMINATE_CLUSTER")
    schedule(cp, cid)
    finish(cp, cid, 0, StepState.FAILED)
    assert [st for _, st, _ in state(cp, cid)] == ["FAILED", "CANCELLED", "CANCELLED"]
    cluster = clusters.get_cluster(cp, cid)
    assert (cluster.target, cluster.failure_code) == ("ACTIVE", None)
    assert schedule(cp, cid) is False
    with cp.store.session() as s:
        messages = [st.state_message for st in clusters.cluster_steps(s, cid)[1:]]
    assert all("CANCEL_AND_WAIT" in (m or "") for m in messages)


def test_failure_with_terminate_cluster(cp: ControlPlane) -> None:
    cid = make(cp, "TERMINATE_CLUSTER", "CONTINUE")
    schedule(cp, cid)
    v = plan_version(cp, cid)
    finish(cp, cid, 0, StepState.FAILED)
    cluster = clusters.get_cluster(cp, cid)
    assert cluster.target == "TERMINATED"
    assert cluster.failure_code == "STEP_FAILURE" and cluster.state_code == "STEP_FAILURE"
    assert "TERMINATE_CLUSTER" in (cluster.failure_message or "")
    assert cluster.plan_version == v + 1
    assert [st for _, st, _ in state(cp, cid)] == ["FAILED", "CANCELLED"]
    with cp.store.session() as s:
        kinds = [o.kind for o in s.scalars(select(Operation).where(Operation.cluster_id == cid))]
    assert sorted(kinds) == ["CREATE_CLUSTER", "TERMINATE_CLUSTER"]


@pytest.mark.parametrize("final", [StepState.COMPLETED, StepState.CANCELLED])
def test_only_failures_apply_action_on_failure(cp: ControlPlane, final: StepState) -> None:
    cid = make(cp, "TERMINATE_CLUSTER", "CONTINUE")
    schedule(cp, cid)
    if final is StepState.COMPLETED:
        finish(cp, cid, 0, final)
    else:
        _cancel_running(cp, cid)
    assert clusters.get_cluster(cp, cid).target == "ACTIVE"
    assert state(cp, cid)[1][1] == "PENDING"


def _cancel_running(cp: ControlPlane, cid: str) -> None:
    with cp.store.session() as s:
        cluster = clusters.load_cluster(s, cid)
        step = clusters.cluster_steps(s, cid)[0]
        queue.set_step_state(s, step, StepState.CANCEL_PENDING)
        queue.set_step_state(s, step, StepState.CANCELLED, "cancelled")
        queue.on_step_finished(s, cluster, step)


def test_set_step_state_refuses_bad_moves_and_stamps_times(cp: ControlPlane) -> None:
    cid = make(cp, "CONTINUE")
    with cp.store.session() as s:
        step = clusters.cluster_steps(s, cid)[0]
        queue.set_step_state(s, step, StepState.RUNNING)
        assert step.started_at is not None and step.ended_at is None
        queue.set_step_state(s, step, StepState.COMPLETED, "ok")
        assert step.ended_at is not None and step.state_message == "ok"
        with pytest.raises(InvalidTransition):
            queue.set_step_state(s, step, StepState.RUNNING)


def test_interrupt_all_when_the_cluster_goes_away(cp: ControlPlane) -> None:
    cid = make(cp, "CONTINUE", "CONTINUE", "CONTINUE")
    schedule(cp, cid)
    finish(cp, cid, 0, StepState.COMPLETED)
    schedule(cp, cid)
    with cp.store.session() as s:
        queue.interrupt_all(s, clusters.load_cluster(s, cid), "cluster terminating")
    assert [st for _, st, _ in state(cp, cid)] == ["COMPLETED", "INTERRUPTED", "CANCELLED"]
