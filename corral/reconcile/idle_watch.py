"""Idle auto-termination of a running cluster (EMR's AutoTerminationPolicy), applied on the
reconciler's passes every IDLE_CHECK_SECONDS: the decision rules are ``corral.elastic.idle``.

Busy means a step PENDING, RUNNING or being cancelled (from the store), else whatever a
service reports (``Service.busy_reason``: YARN applications other than Corral's own, SQL
queries). ``clusters.idle_since`` is kept in the store, so a control-plane restart
continues the same idle period; a cluster is terminated (TERMINATED, reason IDLE_TIMEOUT)
only on an observation that found it idle.
"""

from __future__ import annotations

from sqlalchemy import select

from corral.control import events
from corral.control.clusters import load_cluster, request_termination
from corral.control.context import ControlPlane
from corral.control.views import in_service_view
from corral.domain.states import StateChangeCode, StepState
from corral.elastic import idle
from corral.services.base import NotObserved
from corral.services.registry import get_service
from corral.store.models import Cluster, Step

IDLE_CHECK_SECONDS = 10.0
_last_check: dict[str, float] = {}
_ACTIVE = (StepState.PENDING.value, StepState.RUNNING.value, StepState.CANCEL_PENDING.value)


def observe(cp: ControlPlane, cluster: Cluster) -> tuple[str | None, bool]:
    """(why the cluster is busy or None, whether the look succeeded)."""
    with cp.store.session() as s:
        step = s.scalar(select(Step.id).where(Step.cluster_id == cluster.id, Step.status.in_(_ACTIVE)).limit(1))
    if step is not None:
        return f"step {step} is pending or running", True
    view = in_service_view(cluster)
    for name in cluster.services:
        try:
            busy = get_service(name).busy_reason(view, timeout=3.0)
        except NotObserved:
            return None, False
        if busy:
            return busy, True
    return None, True


def watch(cp: ControlPlane, cluster: Cluster, now: float) -> bool:
    """Advance the cluster's idle clock; True when it was asked to terminate."""
    if cluster.idle_timeout is None:
        if cluster.idle_since is not None:
            with cp.store.session() as s:
                load_cluster(s, cluster.id).idle_since = None
        return False
    if now - _last_check.get(cluster.id, 0.0) < IDLE_CHECK_SECONDS:
        return False
    _last_check[cluster.id] = now
    busy, observed = observe(cp, cluster)
    with cp.store.session() as s:
        c = load_cluster(s, cluster.id)
        if c.idle_timeout is None:
            return False
        since = idle.idle_since(c.idle_since, busy, observed, now)
        if since is not None and c.idle_since is None:
            events.record(s, c.id, "CLUSTER_IDLE", f"idle: terminates after {c.idle_timeout} s unless work arrives")
        elif since is None and c.idle_since is not None and observed:
            events.record(s, c.id, "CLUSTER_BUSY", f"no longer idle: {busy}")
        c.idle_since = since
        if idle.expired(since, c.idle_timeout, observed, now):
            request_termination(s, c, StateChangeCode.IDLE_TIMEOUT,
                                f"Idle for {now - (since or now):.0f} s (idle timeout {c.idle_timeout} s)", failure=False)
            return True
    return False


def forget(cluster_id: str) -> None:
    _last_check.pop(cluster_id, None)
