"""Metric rules on each sample: the metrics sampler's listener (``corral.reconcile.sampler``
calls it after every sample of a cluster, on the sampler's worker, one job per cluster at
a time, so one cluster's alerts are never evaluated twice at once).

Each effective metric rule (``records.effective_rules``) is evaluated on the sample
(``corral.alerts.evaluate``) against the cluster's unresolved alerts, and the transitions
are written in one transaction with their events and deliveries (``records.apply``).
Unresolved alerts of rules no longer in effect on the cluster (disabled, removed from its
scope, replaced by a cluster rule of the same name) resolve. A cluster with monitoring
off has no alerts.
"""

from __future__ import annotations

from corral.alerts import records
from corral.alerts.evaluate import Transition, evaluate, values_of
from corral.domain.states import NodeState, NodeTarget
from corral.metrics.samples import Sample
from corral.store.db import Store
from corral.store.models import Cluster

_ENDED = (NodeState.TERMINATING.value, NodeState.TERMINATED.value)


def serving_nodes(cluster: Cluster) -> set[str]:
    """The cluster's nodes that still belong to it (not ended or on their way out); a node
    alert of any other node resolves."""
    return {n.id for n in cluster.nodes if n.status not in _ENDED and n.target != NodeTarget.TERMINATED.value}


def evaluate_sample(store: Store, cluster: Cluster, sample: Sample) -> list[tuple[str, Transition]]:
    """Evaluate every metric rule in effect on ``cluster`` (a loaded row with its nodes) on
    ``sample`` at ``sample.at``; the transitions written, as (rule name, transition)."""
    if cluster.monitoring is False:
        return []
    now = sample.at
    scope = records.Scope(cluster.id, cluster.name)
    serving = serving_nodes(cluster)
    written: list[tuple[str, Transition]] = []
    with store.session() as s:
        rules = records.effective_rules(s, cluster.id, "metric")
        active = records.active_alerts(s, cluster.id)
        in_effect = {r.id for r in rules}
        for alert in active:
            if alert.rule_id not in in_effect:
                records.resolve(s, alert, now, "its rule is no longer in effect on this cluster")
        for rule in rules:
            spec = records.spec_of(rule)
            mine = {a.node_id: a for a in active if a.rule_id == rule.id}
            current = {key: records.current_of(a) for key, a in mine.items()}
            gone = [key for key in current if key is not None and key not in serving]
            for t in evaluate(spec, values_of(spec, sample), current, now, gone):
                records.apply(s, rule, scope, t, mine.get(t.key), now)
                if t.to is not None:
                    written.append((rule.name, t))
    return written
