"""Step requests: add (validated, files shipped), list, get, cancel, logs."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from corral import ids
from corral.control import events
from corral.domain.spec import StepRequest
from corral.domain.states import ClusterState, ClusterTarget, StepState
from corral.errors import Conflict, FieldError, NotFound, ValidationFailed
from corral.jobs.registry import STEP_KINDS
from corral.jobs.transfer import OBJECT_STORAGE
from corral.store.models import Cluster, Step, bump_plan_version

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corral.control.context import ControlPlane


def capabilities(services: list[str], has_object_storage: bool) -> list[str]:
    """What steps may require of a cluster: its services, and its object store if it has one."""
    return [*services, *([OBJECT_STORAGE] if has_object_storage else [])]


def _missing_message(req: StepRequest, missing: list[str], available: list[str]) -> str:
    if missing == [OBJECT_STORAGE]:
        return f"this {req.type.value} step uses s3a:// locations: the cluster spec needs object_storage"
    services = [name for name in missing if name != OBJECT_STORAGE]
    running = ", ".join(name for name in available if name != OBJECT_STORAGE)
    return f"{req.type.value} steps need the {', '.join(services)} service, which this cluster does not run ({running})"


def prepare_steps(cp: "ControlPlane", requests: list[StepRequest], available: list[str],
                  loc_prefix: tuple[str | int, ...] = (),
                  secrets: dict[int, dict[str, str]] | None = None) -> tuple[list[Step], list[FieldError]]:
    """Check every request against what the cluster has (``capabilities``) and store its
    local files; rows are returned unsaved. ``secrets[i]`` are environment variables of
    request i whose values are secrets (a database password): kept out of args and logs."""
    errors: list[FieldError] = []
    checked = []
    for i, req in enumerate(requests):
        prefix = (*loc_prefix, i) if loc_prefix else ()
        kind = STEP_KINDS[req.type]
        missing = [name for name in kind.requirements(list(req.args)) if name not in available]
        if missing:
            errors.append(FieldError((*prefix, "type"), _missing_message(req, missing, available)))
            continue
        files, problems = kind.check(list(req.args))
        errors += [FieldError((*prefix, *e.loc), e.msg) for e in problems]
        checked.append((req, files))
    if errors:
        return [], errors  # nothing stored: bad input creates nothing
    now = time.time()
    steps: list[Step] = []
    for i, (req, files) in enumerate(checked):
        artifacts = [{"index": f.index, "path": f.path, "name": Path(f.path).name, "sha256": cp.artifacts.put(Path(f.path))}
                     for f in files]
        steps.append(Step(
            id=ids.step_id(), name=req.name or f"{req.type.value.lower()} step", type=req.type.value,
            args=list(req.args), artifacts=artifacts, action_on_failure=req.action_on_failure.value,
            status=StepState.PENDING.value, dispatched=False, created_at=now + i * 1e-6,
            secrets=dict((secrets or {}).get(i, {})), timeout_seconds=req.timeout,
        ))
    return steps, errors


def _cluster(session: Session, cluster_id: str) -> Cluster:
    cluster = session.get(Cluster, cluster_id)
    if cluster is None:
        raise NotFound("cluster", cluster_id)
    return cluster


def add_steps(cp: "ControlPlane", cluster_id: str, requests: list[StepRequest], loc_prefix: tuple[str | int, ...] = (),
              secrets: dict[int, dict[str, str]] | None = None) -> list[Step]:
    with cp.store.session() as s:
        cluster = _cluster(s, cluster_id)
        if ClusterState(cluster.status).is_terminal() or cluster.target == ClusterTarget.TERMINATED.value:
            raise Conflict(f"cluster {cluster_id} is {cluster.status} and takes no more steps")
        available = capabilities(list(cluster.services), cluster.object_storage is not None)
    steps, errors = prepare_steps(cp, requests, available, loc_prefix, secrets)
    if errors:
        raise ValidationFailed(errors)
    for attempt in range(5):
        try:
            _enqueue(cp, cluster_id, steps)
            break
        except (IntegrityError, OperationalError):
            # Another request took the same queue position (or SQLite's snapshot moved): retry.
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
    cp.notifier.poke_reconciler()
    return steps


def _enqueue(cp: "ControlPlane", cluster_id: str, steps: list[Step]) -> None:
    with cp.store.session() as s:
        cluster = s.get(Cluster, cluster_id, with_for_update=True)
        assert cluster is not None
        if cluster.target == ClusterTarget.TERMINATED.value:
            raise Conflict(f"cluster {cluster_id} is terminating and takes no more steps")
        last = s.scalar(select(func.max(Step.seq)).where(Step.cluster_id == cluster_id))
        next_seq = 0 if last is None else last + 1
        for offset, step in enumerate(steps):
            step.cluster_id, step.seq = cluster_id, next_seq + offset
            s.add(step)
            events.record(s, cluster_id, "STEP_ADDED", f"step {step.id} '{step.name}' ({step.type}) queued", step_id=step.id)


def list_steps(cp: "ControlPlane", cluster_id: str, states: list[str] | None = None) -> list[Step]:
    with cp.store.session() as s:
        _cluster(s, cluster_id)
        query = select(Step).where(Step.cluster_id == cluster_id)
        if states:
            query = query.where(Step.status.in_(states))
        return list(s.scalars(query.order_by(Step.seq)))


def get_step(cp: "ControlPlane", cluster_id: str, step_id: str) -> Step:
    with cp.store.session() as s:
        _cluster(s, cluster_id)
        step = s.get(Step, step_id)
        if step is None or step.cluster_id != cluster_id:
            raise NotFound("step", step_id)
        return step


def cancel_step(cp: "ControlPlane", cluster_id: str, step_id: str) -> Step:
    with cp.store.session() as s:
        _cluster(s, cluster_id)
        step = s.get(Step, step_id, with_for_update=True)
        if step is None or step.cluster_id != cluster_id:
            raise NotFound("step", step_id)
        state = StepState(step.status)
        if state.is_terminal():
            raise Conflict(f"step {step_id} is already {step.status}")
        if state is StepState.PENDING and not step.dispatched:
            step.status, step.ended_at, step.state_message = StepState.CANCELLED.value, time.time(), "cancelled by request"
            events.record(s, cluster_id, "STEP_CANCELLED", f"step {step_id} cancelled before it started", step_id=step_id)
        elif state is not StepState.CANCEL_PENDING:
            step.status = StepState.CANCEL_PENDING.value
            bump_plan_version(s, _cluster(s, cluster_id))
            events.record(s, cluster_id, "STEP_CANCEL_REQUESTED", f"step {step_id}: stopping its processes", step_id=step_id)
    cp.notifier.bump(cluster_id)
    return get_step(cp, cluster_id, step_id)


def read_log(cp: "ControlPlane", cluster_id: str, step_id: str, stream: str, offset: int, limit: int) -> tuple[bytes, Step]:
    step = get_step(cp, cluster_id, step_id)
    return cp.logs.read(cluster_id, step_id, stream, offset, limit), step
