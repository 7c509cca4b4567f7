"""Recording what happened: cluster events and the progress steps of operations."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.domain.states import OperationState
from corral.store.models import Event, Operation, OperationStep

CREATE_STEPS = ("VALIDATE", "PROVISION_NODES", "DEPLOY_AND_BOOTSTRAP", "START_SERVICES", "CHECK_READY")
TERMINATE_STEPS = ("STOP_SERVICES", "RELEASE_NODES")


def record(session: Session, cluster_id: str, code: str, message: str, *, level: str = "INFO",
           node_id: str | None = None, step_id: str | None = None, component: str | None = None,
           at: float | None = None) -> None:
    session.add(Event(cluster_id=cluster_id, node_id=node_id, step_id=step_id, component=component,
                      time=at or time.time(), level=level, code=code, message=message))


def start_operation(session: Session, op_id: str, cluster_id: str, kind: str, steps: tuple[str, ...]) -> Operation:
    now = time.time()
    op = Operation(id=op_id, cluster_id=cluster_id, kind=kind, status=OperationState.RUNNING.value, created_at=now)
    op.steps = [OperationStep(seq=i, name=name, status="PENDING") for i, name in enumerate(steps)]
    session.add(op)
    return op


def current_operation(session: Session, cluster_id: str, kind: str) -> Operation | None:
    return session.scalar(
        select(Operation).where(Operation.cluster_id == cluster_id, Operation.kind == kind)
        .order_by(Operation.created_at.desc()).limit(1)
    )


def progress(session: Session, cluster_id: str, kind: str, step: str, status: str, detail: str | None = None) -> None:
    """Mark ``step`` of the cluster's latest ``kind`` operation; earlier steps are done."""
    op = current_operation(session, cluster_id, kind)
    if op is None or op.status != OperationState.RUNNING.value:
        return
    now = time.time()
    for item in op.steps:
        if item.name == step:
            if item.status != status or (detail and item.detail != detail):
                if item.started_at is None:
                    item.started_at = now
                if status in ("DONE", "FAILED", "SKIPPED"):
                    item.ended_at = now
                item.status = status
                item.detail = detail or item.detail
            break
        if item.status in ("PENDING", "RUNNING"):
            item.status, item.ended_at = "DONE", now
            item.started_at = item.started_at or now


def finish_operation(session: Session, cluster_id: str, kind: str, ok: bool, message: str | None = None) -> None:
    op = current_operation(session, cluster_id, kind)
    if op is None or op.status != OperationState.RUNNING.value:
        return
    now = time.time()
    op.status = (OperationState.SUCCEEDED if ok else OperationState.FAILED).value
    op.message, op.ended_at = message, now
    for item in op.steps:
        if item.status == "RUNNING":
            item.status, item.ended_at = ("DONE" if ok else "FAILED"), now
        elif item.status == "PENDING":
            item.status = "DONE" if ok else "SKIPPED"
