"""Recording what a finished step's YARN applications used (``corral.metrics.cost``), once,
soon after it ends: the ResourceManager forgets finished applications (it keeps the last
1000), and its history servers need a few seconds to have them.

On the reconciler's passes of an up cluster: every step COMPLETED, FAILED or CANCELLED
with applications and no ``cost`` yet is asked about (each service's
``application_usage``, outside any transaction); while one says NotYet (an application
still finishing, a history server behind), again every RETRY_SECONDS for up to
PATIENCE_SECONDS after the step ended, then what is known is recorded (with the
applications no daemon remembered under ``missing``). Figures are recorded only once two
asks RETRY_SECONDS apart agree: the RM can report an application FINISHED while the
completions of some of its containers (those its NodeManagers report on their next
heartbeat, or that the scheduler kills when the attempt is removed) are still to be
counted, so memorySeconds can still grow (seen in CI: 39338 MiB-s recorded, 44064 in the
RM's report moments later). A step that ended longer ago (before an
upgrade, or while the control plane was down) gets what the daemons still remember.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from corral.control.context import ControlPlane
from corral.domain.states import StepState
from corral.metrics.cost import step_cost
from corral.reconcile.step_watch import application_ids
from corral.services.base import ClusterView, NotYet
from corral.services.registry import get_service
from corral.store.models import Cluster, Step

log = logging.getLogger("corral.reconcile")
RETRY_SECONDS = 3.0
PATIENCE_SECONDS = 60.0
TIMEOUT = 5.0
_ENDED = (StepState.COMPLETED.value, StepState.FAILED.value, StepState.CANCELLED.value)
_asked: dict[str, float] = {}  # step id -> when a service last said NotYet or answered unsettled figures
_last: dict[str, list[object]] = {}  # step id -> the answers of its last ask, until two agree


def record_costs(cp: ControlPlane, cluster: Cluster, view: ClusterView, now: float) -> None:
    for stale in [k for k, at in _asked.items() if now - at > 2 * PATIENCE_SECONDS]:
        del _asked[stale]  # a step whose cluster ended while it waited: never asked again
        _last.pop(stale, None)
    with cp.store.session() as s:
        pending = [st for st in s.scalars(select(Step).where(Step.cluster_id == cluster.id, Step.status.in_(_ENDED),
                                                             Step.cost.is_(None)))
                   if application_ids(st)]
    for step in pending:
        if now - _asked.get(step.id, float("-inf")) < RETRY_SECONDS:
            continue
        apps = application_ids(step)
        answers, waiting = [], False
        for name in view.services:
            try:
                answers.append(get_service(name).application_usage(view, apps, timeout=TIMEOUT))
            except NotYet:
                waiting = True
            except Exception:  # noqa: BLE001 - best effort: the others' figures still count
                log.exception("application_usage of %s for step %s failed", name, step.id)
        ended = step.ended_at if step.ended_at is not None else now
        settled = not waiting and _last.get(step.id) == answers
        if not settled and now - ended < PATIENCE_SECONDS:
            _asked[step.id] = now
            _last[step.id] = answers
            continue
        _asked.pop(step.id, None)
        _last.pop(step.id, None)
        with cp.store.session() as s:
            row = s.get(Step, step.id)
            if row is not None and row.cost is None:
                row.cost = step_cost(apps, answers, now)

