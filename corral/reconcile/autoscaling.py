"""Autoscaling applied: each group's policy evaluated on the one metrics sampler's samples.

The sampler (``corral.reconcile.sampler``) appends one ``Sample`` (EMR's CloudWatch names)
per up cluster every 10 s to the cluster's ``History``; each reconcile pass after a new
sample evaluates every group with a policy (``corral.elastic.autoscale.evaluate``), once
per sample. A change only sets the group's target, as a user's resize does
(``corral.control.groups``); a CORE shrink HDFS cannot take is clamped to the largest safe
one, with the reason (EMR's partial shrink). Every evaluation is kept (the last
KEEP_EVALUATIONS, for ``autoscaling get --explain``), every change is an
AUTOSCALING_DECISION event with the values that caused it. The state an evaluation hands
the next (cooldown, the last evaluation time that time rules fire after) is in the group's
row, and the samples of a monitored cluster are in the stored history, which a restarted
control plane's in-memory history starts from: a restart loses nothing.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TYPE_CHECKING

from corral.control import events
from corral.control.clusters import load_cluster
from corral.control.groups import ResizeRequest, _set_target, in_service
from corral.control.views import effective_properties, in_service_view
from corral.domain.states import GroupState, NodeRole, NodeState
from corral.elastic.autoscale import Evaluation, ScalingState, evaluate
from corral.elastic.policy import load_policy
from corral.reconcile.sampler import history
from corral.services.registry import get_service
from corral.services.sizing import nodemanager_mib
from corral.store.models import Cluster, NodeGroup

if TYPE_CHECKING:
    from corral.reconcile.clusters import ClusterReconciler

log = logging.getLogger("corral.reconcile")
KEEP_EVALUATIONS = 20
_evaluated: dict[str, float] = {}  # cluster id -> the time of the last sample evaluated


def tick(rec: "ClusterReconciler", cluster: Cluster) -> None:
    """Evaluate every group with a policy once per new sample of the cluster."""
    policed = [g for g in cluster.groups if g.autoscaling_policy and g.status != GroupState.TERMINATED.value]
    if not policed:
        return
    latest = history(cluster.id, rec.cp, rec.now).latest()
    if latest is None or latest.at <= _evaluated.get(cluster.id, float("-inf")):
        return
    _evaluated[cluster.id] = latest.at
    changed = False
    for group in policed:
        try:
            changed |= _evaluate(rec, cluster, group)
        except Exception:  # noqa: BLE001 - one group's policy must not stop the others
            log.exception("autoscaling of %s/%s failed", cluster.id, group.name)
    if changed:
        rec.cp.notifier.bump(cluster.id)


def forget(cluster_id: str) -> None:
    _evaluated.pop(cluster_id, None)


def _node_memory(cluster: Cluster, group: NodeGroup) -> float:
    view = in_service_view(cluster)
    mine = {n.id for n in in_service(cluster, group)}
    nodes = [n for n in view.nodes if n.node_id in mine]
    return float(nodemanager_mib(view, nodes[0])) if nodes else 0.0


def _clamped(cluster: Cluster, group: NodeGroup, evaluation: Evaluation) -> tuple[int, str | None]:
    """A CORE shrink HDFS can take: the smallest count from the desired one up that is safe."""
    current = len(in_service(cluster, group))
    if group.role != NodeRole.CORE.value or evaluation.desired >= current:
        return evaluation.desired, None
    view = in_service_view(cluster)
    props, _ = effective_properties(view)
    running = [n for n in in_service(cluster, group) if n.status == NodeState.RUNNING.value]
    first = None
    for count in range(evaluation.desired, current):
        leaving = [n.id for n in running[count:]]
        problems = [p for name in cluster.services
                    if (p := get_service(name).scale_in_problem(view, props, NodeRole.CORE, leaving, timeout=3.0))]
        if not problems:
            return count, (f"clamped to {count}: {first}" if first else None)
        first = first or problems[0]
    return current, f"no shrink: {first}"


def _evaluate(rec: "ClusterReconciler", cluster: Cluster, group: NodeGroup) -> bool:
    policy = load_policy(group.autoscaling_policy)
    saved = dict(group.scaling_state or {})
    state = ScalingState(evaluated_at=saved.get("evaluated_at"), cooldown_until=float(saved.get("cooldown_until") or 0.0))
    evaluation = evaluate(policy, history(cluster.id), state, group.target_count, rec.now, _node_memory(cluster, group))
    desired, clamp = evaluation.desired, None
    if evaluation.changed:
        desired, clamp = _clamped(cluster, group, evaluation)
    record = {"at": evaluation.at, "current": evaluation.current, "desired": desired, "low": evaluation.low,
              "high": evaluation.high, "cause": evaluation.cause + (f"; {clamp}" if clamp else ""),
              "changed": desired != evaluation.current, "rule": evaluation.rule,
              "metrics": {str(k): round(v, 3) for k, v in evaluation.metrics.items()}}
    with rec.cp.store.session() as s:
        c = load_cluster(s, cluster.id)
        g = next(x for x in c.groups if x.id == group.id)
        if g.autoscaling_policy != group.autoscaling_policy or g.target_count != group.target_count:
            return False  # changed meanwhile (a user's resize, a new policy): evaluated again next time
        kept = [*(saved.get("evaluations") or []), record][-KEEP_EVALUATIONS:]
        g.scaling_state = {**asdict(evaluation.state), "evaluations": kept}
        if desired == evaluation.current:
            return False
        if g.status == GroupState.TERMINATING.value:
            return False
        events.record(s, c.id, "AUTOSCALING_DECISION",
                      f"{g.name}: {evaluation.current} -> {desired}: {record['cause']}"
                      + (f" [{', '.join(f'{k}={v:g}' for k, v in record['metrics'].items())}]" if record["metrics"] else ""))
        rec.cp.telemetry.autoscaling_decision(c.id, g.name, evaluation.current, desired)  # corral_autoscaling_decisions_total
        _set_target(s, c, g, ResizeRequest(count=desired, decommission_timeout=evaluation.decommission_timeout),
                    "AUTOSCALING")
    return True
