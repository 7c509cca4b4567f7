"""Step queue: one step at a time, in order; ActionOnFailure as in EMR."""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from corral.control import events
from corral.control.clusters import cluster_steps, request_termination
from corral.domain.states import ActionOnFailure, StateChangeCode, StepState
from corral.store.models import Cluster, Step, bump_plan_version

ACTIVE = (StepState.RUNNING.value, StepState.CANCEL_PENDING.value)


def is_active(step: Step) -> bool:
    return step.status in ACTIVE or (step.status == StepState.PENDING.value and step.dispatched)


def set_step_state(session: Session, step: Step, state: StepState, message: str | None = None) -> None:
    StepState(step.status).check_transition(state)
    if step.status == state.value:
        return
    step.status = state.value
    now = time.time()
    if state is StepState.RUNNING and step.started_at is None:
        step.started_at = now
    if state.is_terminal():
        step.ended_at = step.ended_at or now
        step.state_message = message
        if state is not StepState.FAILED:
            step.failure_code = None  # e.g. a timed-out step INTERRUPTED by its cluster's end
    level = "ERROR" if state in (StepState.FAILED, StepState.INTERRUPTED) else "INFO"
    events.record(session, step.cluster_id, f"STEP_{state.value}",
                  f"step {step.id} '{step.name}' is {state.value}" + (f": {message.splitlines()[0]}" if message else ""),
                  level=level, step_id=step.id)


def cancel_queue(session: Session, cluster: Cluster, reason: str) -> None:
    for step in cluster_steps(session, cluster.id):
        if step.status == StepState.PENDING.value and not step.dispatched:
            set_step_state(session, step, StepState.CANCELLED, reason)


def on_step_finished(session: Session, cluster: Cluster, step: Step) -> None:
    """Apply the failed step's ActionOnFailure (cancelled steps apply none, as in EMR)."""
    if step.status != StepState.FAILED.value:
        return
    action = ActionOnFailure(step.action_on_failure)
    if action is ActionOnFailure.CONTINUE:
        return
    cancel_queue(session, cluster, f"cancelled because step {step.id} failed ({action.value})")
    if action is ActionOnFailure.TERMINATE_CLUSTER:
        request_termination(session, cluster, StateChangeCode.STEP_FAILURE,
                            f"step {step.id} '{step.name}' failed and its ActionOnFailure is TERMINATE_CLUSTER",
                            failure=True)


def schedule(session: Session, cluster: Cluster) -> bool:
    """Dispatch the next step when none is active; returns whether a step is active."""
    steps = cluster_steps(session, cluster.id)
    if any(is_active(s) for s in steps):
        return True
    nxt = next((s for s in steps if s.status == StepState.PENDING.value), None)
    if nxt is None:
        return False
    nxt.dispatched = True
    bump_plan_version(session, cluster)
    events.record(session, cluster.id, "STEP_DISPATCHED", f"step {nxt.id} '{nxt.name}' sent to the master", step_id=nxt.id)
    return True


def all_steps_done(session: Session, cluster: Cluster) -> bool:
    return all(StepState(s.status).is_terminal() for s in cluster_steps(session, cluster.id))


def interrupt_all(session: Session, cluster: Cluster, reason: str) -> None:
    """The cluster is going away: queued steps are cancelled, active ones interrupted."""
    for step in cluster_steps(session, cluster.id):
        if StepState(step.status).is_terminal():
            continue
        if step.status == StepState.PENDING.value and not step.dispatched:
            set_step_state(session, step, StepState.CANCELLED, reason)
        else:
            set_step_state(session, step, StepState.INTERRUPTED, reason)
