"""The reconciler's watch over a cluster's active and just-failed steps.

- **Timeouts**: a RUNNING step past ``started_at + timeout_seconds`` is cancelled as a
  user cancel is (CANCEL_PENDING: the agent stops its process group, the services kill
  its applications) and marked ``failure_code`` TIMEOUT, so that the agent's CANCELLED
  report records it FAILED (``corral.control.agents``). The deadline lives in the step
  row: a restarted control plane still enforces it.
- **Waits**: every WAIT_CHECK_SECONDS each RUNNING step's services say whether its work
  waits for cluster resources (``Service.waiting_reason``); the first answer in service
  order becomes the step's state message, and is cleared once none says so.
- **Failure reasons**: once, when a step is FAILED with applications, the services give
  their failed containers' own error lines (``Service.failure_details``), which go into
  the step's state message.

All calls to services happen outside database transactions, in the reconciler's pool,
never in a request handler. Times are epoch seconds from the caller's (injectable) clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from corral.control import events
from corral.control.context import ControlPlane
from corral.domain import secrets
from corral.domain.states import StepFailureCode, StepState
from corral.services.base import ClusterView, NotYet, StepWork, WaitMemo
from corral.services.registry import get_service
from corral.store.models import Cluster, Step, bump_plan_version, cluster_row

log = logging.getLogger("corral.reconcile")
WAIT_CHECK_SECONDS = 5.0
NEW_LOG_LIMIT = 64 << 10  # at most this much of a step's new stderr is read per check
# A step that failed longer ago than this (e.g. before the control plane was upgraded) is
# not diagnosed: its cluster's daemons may have forgotten it.
DIAGNOSE_WITHIN_SECONDS = 600.0
# A service that is not ready to say (NotYet: logs still being aggregated) is asked again
# this often, for this long after the step ended; then the others' answers are taken.
DIAGNOSE_RETRY_SECONDS = 3.0
DIAGNOSE_PATIENCE_SECONDS = 90.0
_diagnose_asked: dict[str, float] = {}  # step id -> when its services last said NotYet
WAITING_EVENT = "STEP_WAITING"


@dataclass
class _Watch:
    checked_at: float = float("-inf")
    log_offset: int = 0
    memos: dict[str, WaitMemo] = field(default_factory=dict)


_watches: dict[str, dict[str, _Watch]] = {}  # cluster id -> step id -> its watch, in this process


def _steps(session: Session, cluster_id: str, status: StepState, *where: ColumnElement[bool]) -> list[Step]:
    """The cluster's steps in ``status`` (a pass runs twice a second: not every step)."""
    query = select(Step).where(Step.cluster_id == cluster_id, Step.status == status.value, *where)
    return list(session.scalars(query.order_by(Step.seq)))


def application_ids(step: Step) -> list[str]:
    """Every application the step submitted: YARN's, then a standalone Spark Master's."""
    return [*(step.yarn_application_ids or []), *(step.spark_application_ids or [])]


def timeout_message(step: Step) -> str:
    message = f"TIMEOUT: the step ran longer than its timeout of {step.timeout_seconds} s and was cancelled"
    if _is_wait(step.state_message):
        message += f"; it was {step.state_message}"
    return message


def enforce_timeouts(session: Session, cluster_id: str, now: float) -> bool:
    """Cancel the RUNNING steps past their timeout; returns whether any was (plan bumped)."""
    timed_out = False
    for step in _steps(session, cluster_id, StepState.RUNNING, Step.timeout_seconds.is_not(None)):
        if step.started_at is None or now < step.started_at + (step.timeout_seconds or 0):
            continue
        StepState(step.status).check_transition(StepState.CANCEL_PENDING)
        step.status = StepState.CANCEL_PENDING.value
        step.failure_code = StepFailureCode.TIMEOUT.value
        step.state_message = timeout_message(step)
        events.record(session, cluster_id, "STEP_TIMED_OUT", f"step {step.id} '{step.name}': {step.state_message}",
                      level="WARN", step_id=step.id)
        timed_out = True
    if timed_out:
        bump_plan_version(session, cluster_row(session, cluster_id))
    return timed_out


def _new_log(cp: ControlPlane, step: Step, watch: _Watch) -> str:
    size = cp.logs.size(step.cluster_id, step.id, "stderr")
    start = max(watch.log_offset, size - NEW_LOG_LIMIT)
    watch.log_offset = size
    if size <= start:
        return ""
    return cp.logs.read(step.cluster_id, step.id, "stderr", start, size - start).decode("utf-8", "replace")


def waiting_reason(view: ClusterView, work: StepWork, memos: dict[str, WaitMemo], now: float) -> str | None:
    """The first service's (in the cluster's service order) reason the step waits. Every
    service is asked, so each keeps its memory of the step current."""
    reasons = []
    for name in view.services:
        try:
            reasons.append(get_service(name).waiting_reason(view, work, memos.setdefault(name, WaitMemo()), now))
        except Exception:  # noqa: BLE001 - a service's bad answer must not stop the pass
            log.exception("waiting_reason of %s for step %s failed", name, work.step_id)
    return next((r for r in reasons if r), None)


def watch_waits(cp: ControlPlane, cluster: Cluster, view: ClusterView, now: float) -> None:
    """Put each RUNNING step's wait, if any, in its state message; clear it when it ends."""
    with cp.store.session() as s:
        running = _steps(s, cluster.id, StepState.RUNNING)
    watches = _watches.setdefault(cluster.id, {})
    for step_id in set(watches) - {st.id for st in running}:
        del watches[step_id]
    for step in running:
        watch = watches.setdefault(step.id, _Watch())
        if now - watch.checked_at < WAIT_CHECK_SECONDS:
            continue
        watch.checked_at = now
        work = StepWork(step_id=step.id, application_ids=tuple(application_ids(step)), new_log=_new_log(cp, step, watch))
        reason = waiting_reason(view, work, watch.memos, now)
        if reason == step.state_message or (reason is None and not _is_wait(step.state_message)):
            continue
        with cp.store.session() as s:
            row = s.get(Step, step.id)
            if row is None or row.status != StepState.RUNNING.value:
                continue
            if reason is not None and not _is_wait(row.state_message):
                events.record(s, cluster.id, WAITING_EVENT, f"step {row.id}: {reason}", level="WARN", step_id=row.id)
            elif reason is None:
                events.record(s, cluster.id, "STEP_WAIT_OVER", f"step {row.id} is no longer waiting", step_id=row.id)
            row.state_message = reason


def _is_wait(message: str | None) -> bool:
    return message is not None and message.startswith("waiting for ")


def forget(cluster_id: str) -> None:
    """The cluster is ending: drop what was remembered about its steps."""
    _watches.pop(cluster_id, None)


def with_container_errors(message: str | None, errors: list[str]) -> str:
    """``message`` with ``container error: ...`` on its first line, before a closing
    clause that introduces the lines after it (``exit code 1; last lines of stderr:``)."""
    note = "container error: " + "; ".join(errors)
    first, newline, rest = (message or "").partition("\n")
    if first.endswith(":") and "; " in first:
        lead, intro = first.rsplit("; ", 1)
        first = f"{lead}; {note}; {intro}"
    else:
        first = f"{first}; {note}" if first else note
    return first + newline + rest


def diagnose_failures(cp: ControlPlane, cluster: Cluster, view: ClusterView, now: float) -> None:
    """Ask the services, once per FAILED step with applications, for their failed
    containers' error lines; later services override earlier ones per application."""
    with cp.store.session() as s:
        undiagnosed = or_(Step.diagnosed.is_(None), Step.diagnosed.is_(False))
        pending = [st for st in _steps(s, cluster.id, StepState.FAILED, undiagnosed) if application_ids(st)]
        for st in pending:
            if st.ended_at is not None and now - st.ended_at > DIAGNOSE_WITHIN_SECONDS:
                st.diagnosed = True
        pending = [st for st in pending if not st.diagnosed]
    for step in pending:
        if now - _diagnose_asked.get(step.id, float("-inf")) < DIAGNOSE_RETRY_SECONDS:
            continue
        apps = application_ids(step)
        details: dict[str, str] = {}
        waiting = False
        for name in view.services:
            try:
                details.update(get_service(name).failure_details(view, apps))
            except NotYet:
                waiting = True
            except Exception:  # noqa: BLE001 - best effort: the step keeps its own reason
                log.exception("failure_details of %s for step %s failed", name, step.id)
        if waiting and now - (step.ended_at or now) < DIAGNOSE_PATIENCE_SECONDS:
            _diagnose_asked[step.id] = now
            continue
        _diagnose_asked.pop(step.id, None)
        lines = list(dict.fromkeys(details[app] for app in apps if app in details))
        with cp.store.session() as s:
            row = s.get(Step, step.id)
            if row is None or row.diagnosed:
                continue
            row.diagnosed = True
            if lines:
                hidden = [*(row.secrets or {}).values(), *(cluster.secrets or {}).values()]
                row.state_message = with_container_errors(row.state_message, [secrets.scrub(x, hidden) for x in lines])
                events.record(s, cluster.id, "STEP_FAILURE_DETAIL", f"step {row.id}: container error: {lines[0]}",
                              level="ERROR", step_id=row.id)
