"""Autoscaling applied: the one metrics sampler and each group's policy evaluation.

Every EVALUATION_SECONDS (10 s, EMR's and Dataproc's order) per up cluster: the services'
``metric_values`` make one ``Sample`` (EMR's CloudWatch names) appended to the cluster's
``History`` (``corral.metrics.samples``, the samples monitoring reads too), then each group
with a policy is evaluated (``corral.elastic.autoscale.evaluate``). A change only sets the
group's target, as a user's resize does (``corral.control.groups``); a CORE shrink HDFS
cannot take is clamped to the largest safe one, with the reason (EMR's partial shrink).
Every evaluation is kept (the last KEEP_EVALUATIONS, for ``autoscaling get --explain``),
every change is an AUTOSCALING_DECISION event with the values that caused it. The state
an evaluation hands the next (cooldown, the last evaluation time that time rules fire
after) is in the group's row, so a control-plane restart loses nothing; the samples are
in memory: after a restart, load rules wait for new ones (no data is no breach).
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
from corral.metrics.samples import History, Sample
from corral.services.registry import get_service
from corral.services.sizing import nodemanager_mib
from corral.store.models import Cluster, NodeGroup

if TYPE_CHECKING:
    from corral.reconcile.clusters import ClusterReconciler

log = logging.getLogger("corral.reconcile")
EVALUATION_SECONDS = 10.0
KEEP_EVALUATIONS = 20
HISTORIES: dict[str, History] = {}  # cluster id -> its recent samples (the one sampler's)
_last_sample: dict[str, float] = {}


def history(cluster_id: str) -> History:
    return HISTORIES.setdefault(cluster_id, History())


def sample(cluster: Cluster, now: float) -> Sample:
    """One reading of every service's metrics, appended to the cluster's history."""
    view = in_service_view(cluster)
    values: dict = {}
    for name in cluster.services:
        values.update(get_service(name).metric_values(view, now, timeout=3.0))
    taken = Sample(now, values)
    history(cluster.id).add(taken)
    return taken


def tick(rec: "ClusterReconciler", cluster: Cluster) -> None:
    """Sample and evaluate, at most every EVALUATION_SECONDS, only while some group has a
    policy (monitoring will sample every cluster)."""
    policed = [g for g in cluster.groups if g.autoscaling_policy and g.status != GroupState.TERMINATED.value]
    if not policed or rec.now - _last_sample.get(cluster.id, 0.0) < EVALUATION_SECONDS:
        return
    _last_sample[cluster.id] = rec.now
    sample(cluster, rec.now)
    changed = False
    for group in policed:
        try:
            changed |= _evaluate(rec, cluster, group)
        except Exception:  # noqa: BLE001 - one group's policy must not stop the others
            log.exception("autoscaling of %s/%s failed", cluster.id, group.name)
    if changed:
        rec.cp.notifier.bump(cluster.id)


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
        _set_target(s, c, g, ResizeRequest(count=desired, decommission_timeout=evaluation.decommission_timeout),
                    "AUTOSCALING")
    return True
