"""Node replacement (self-healing, EMR's ``UnhealthyNodeReplacement``), on by default.

A CORE or TASK node whose agent went silent and whose machine has none of it left (the
provider answers MISSING: its directory and processes are gone), or that stayed LOST past
``deadlines.NODE_LOST_SECONDS``, is replaced: its target becomes TERMINATED (released, and
cleaned by the provider if its machine comes back), and the resize pass grows its group
back to its target with a new node; HDFS re-replicates the old DataNode's blocks once the
NameNode declares it dead. Which nodes and how fast is ``corral.elastic.replacement``
(at most one replacement in flight and four an hour per cluster). A MASTER is never
replaced: its agent is restarted in place on its kept directory, or the cluster fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from corral.control import events
from corral.control.clusters import load_cluster
from corral.control.context import ControlPlane
from corral.domain.states import NodeState, NodeTarget
from corral.elastic.replacement import HOUR, NodeHealth, ReplacementRules, decide
from corral.reconcile import deadlines, health
from corral.store.models import Cluster, Node, bump_plan_version

if TYPE_CHECKING:
    from corral.reconcile.clusters import ClusterReconciler

RULES = ReplacementRules()


def replaceable(cluster: Cluster, node: Node) -> bool:
    """Whether a failing ``node`` is replaced rather than failing the cluster."""
    return cluster.unhealthy_node_replacement is not False and node.role != "MASTER"


def note_missing(cp: ControlPlane, node: Node, now: float) -> None:
    """The provider found nothing of the node: record since when."""
    with cp.store.session() as s:
        row = s.get(Node, node.id)
        if row is not None and not (row.provider_data or {}).get("missing_since"):
            row.provider_data = {**(row.provider_data or {}), "missing_since": now}


def _health(node: Node, now: float) -> NodeHealth:
    silent = node.last_heartbeat is not None and now - node.last_heartbeat >= deadlines.AGENT_LOST_SECONDS
    gone = bool((node.provider_data or {}).get("missing_since")) or health.lost_too_long(node, now)
    return NodeHealth(node.id, node.role, lost_since=node.last_heartbeat if silent else None, processes_gone=gone)


def watch(rec: "ClusterReconciler", cluster: Cluster) -> None:
    if cluster.unhealthy_node_replacement is False:
        return
    workers = [n for n in cluster.nodes if n.role != "MASTER" and n.target == NodeTarget.RUNNING.value
               and n.status not in (NodeState.TERMINATING.value, NodeState.TERMINATED.value)
               and n.decommission_state is None]
    if not any((n.provider_data or {}).get("missing_since") or n.status == NodeState.LOST.value for n in workers):
        return
    replaced = [float((n.provider_data or {}).get("replaced_at") or 0) for n in cluster.nodes]
    recent = sum(1 for at in replaced if rec.now - at < HOUR)
    in_flight = sum(1 for n in cluster.nodes if n.ready_at is None and n.target == NodeTarget.RUNNING.value
                    and n.role != "MASTER" and n.status != NodeState.TERMINATED.value) if recent else 0
    verdicts = decide([_health(n, rec.now) for n in workers], RULES, rec.now, in_flight, recent)
    if not verdicts:
        return
    with rec.cp.store.session() as s:
        c = load_cluster(s, cluster.id)
        for verdict in verdicts:
            node = next(n for n in c.nodes if n.id == verdict.node_id)
            held = (node.provider_data or {}).get("replacement_held")
            if not verdict.replace:
                if held != verdict.reason:
                    node.provider_data = {**(node.provider_data or {}), "replacement_held": verdict.reason}
                    events.record(s, c.id, "NODE_REPLACEMENT_HELD", f"{node.role} node {node.id}: {verdict.reason}",
                                  level="WARN", node_id=node.id)
                continue
            node.target = NodeTarget.TERMINATED.value
            node.status_reason = f"replaced: {verdict.reason}"
            node.provider_data = {**(node.provider_data or {}), "replaced_at": rec.now}
            events.record(s, c.id, "NODE_REPLACED", f"{node.role} node {node.id} is replaced: {verdict.reason}",
                          level="WARN", node_id=node.id)
        bump_plan_version(s, c)
    rec.cp.notifier.bump(cluster.id)
