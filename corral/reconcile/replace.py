"""Node replacement (self-healing, EMR's ``UnhealthyNodeReplacement``), on by default.

Two causes (the rules and rate limits are ``corral.elastic.replacement``):

lost       a CORE or TASK node whose agent went silent and whose machine has none of it
           left (the provider answers MISSING: its directory and processes are gone), or
           that stayed LOST past ``deadlines.NODE_LOST_SECONDS``: its target becomes
           TERMINATED (released, and cleaned by the provider if its machine comes back);
           HDFS re-replicates its blocks once the NameNode declares the DataNode dead
unhealthy  a node whose services report it unhealthy (``Service.unhealthy_nodes``: a
           NodeManager UNHEALTHY, e.g. a disk above YARN's 90 % threshold) for longer than
           ``deadlines.NODE_UNHEALTHY_SECONDS``, its agent still answering: it leaves
           gracefully, as a scale-in would (DECOMMISSIONING: YARN drains it, HDFS copies its
           blocks away, then it is released), so nothing it holds is lost

Either way the resize pass grows the group back to its target with a new node. Health is
asked every HEALTH_CHECK_SECONDS; since when a node is unhealthy is kept in its row, so a
control-plane restart continues the same grace period. A MASTER is never replaced: its
agent is restarted in place on its kept directory, or the cluster fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from corral.control import events
from corral.control.clusters import load_cluster
from corral.control.context import ControlPlane
from corral.control.groups import DEFAULT_DECOMMISSION_TIMEOUT, hosts_for_group, uses_hosts
from corral.control.hosts import drain_after_replacement
from corral.control.views import in_service_view
from corral.domain.states import DecommissionState, NodeState, NodeTarget
from corral.elastic.replacement import HOUR, NodeHealth, ReplacementRules, decide
from corral.errors import ValidationFailed
from corral.hosts import selection
from corral.reconcile import deadlines, health
from corral.services.base import NotObserved
from corral.services.registry import get_service
from corral.store.models import Cluster, Node, bump_plan_version

if TYPE_CHECKING:
    from corral.reconcile.clusters import ClusterReconciler

RULES = ReplacementRules(lost_grace=deadlines.NODE_REPLACE_LOST_SECONDS,
                         unhealthy_grace=deadlines.NODE_UNHEALTHY_SECONDS)
HEALTH_CHECK_SECONDS = 15.0
_last_health_check: dict[str, float] = {}


def replaceable(cluster: Cluster, node: Node) -> bool:
    """Whether a failing ``node`` is replaced rather than failing the cluster."""
    return cluster.unhealthy_node_replacement is not False and node.role != "MASTER"


def note_missing(cp: ControlPlane, node: Node, now: float) -> None:
    """The provider found nothing of the node: record since when."""
    with cp.store.session() as s:
        row = s.get(Node, node.id)
        if row is not None and not (row.provider_data or {}).get("missing_since"):
            row.provider_data = {**(row.provider_data or {}), "missing_since": now}


def _workers(cluster: Cluster) -> list[Node]:
    """CORE and TASK nodes in service: meant to run, not leaving."""
    return [n for n in cluster.nodes if n.role != "MASTER" and n.target == NodeTarget.RUNNING.value
            and n.status not in (NodeState.TERMINATING.value, NodeState.TERMINATED.value)
            and n.decommission_state is None]


def _data(node: Node) -> dict[str, Any]:
    return dict(node.provider_data or {})


def _health(node: Node, now: float) -> NodeHealth:
    data = _data(node)
    silent = node.last_heartbeat is not None and now - node.last_heartbeat >= deadlines.AGENT_LOST_SECONDS
    gone = bool(data.get("missing_since")) or health.lost_too_long(node, now)
    unhealthy = data.get("unhealthy_since")
    return NodeHealth(node.id, node.role, lost_since=node.last_heartbeat if silent else None, processes_gone=gone,
                      unhealthy_since=float(unhealthy) if unhealthy else None,
                      health_report=str(data.get("health_report") or ""))


def observe_health(rec: "ClusterReconciler", cluster: Cluster) -> bool:
    """Every HEALTH_CHECK_SECONDS ask the services which in-service workers are unhealthy
    and keep since when in each node's row (events when a node turns unhealthy or
    recovers). Returns whether anything was written. An unanswered question changes nothing."""
    if rec.now - _last_health_check.get(cluster.id, 0.0) < HEALTH_CHECK_SECONDS:
        return False
    _last_health_check[cluster.id] = rec.now
    view = in_service_view(cluster)
    said: dict[str, list[str]] = {}
    for name in cluster.services:
        try:
            answer = get_service(name).unhealthy_nodes(view, timeout=3.0)
        except NotObserved:
            return False
        for node_id, report in answer.items():
            said.setdefault(node_id, [])
            if report and report not in said[node_id]:
                said[node_id].append(report)
    reports = {node_id: "; ".join(texts) or "unhealthy" for node_id, texts in said.items()}
    asked = {n.node_id for n in view.nodes}  # a node not RUNNING now was not asked about: unchanged
    changed = [n.id for n in _workers(cluster) if n.id in asked
               and (n.id in reports) != bool(_data(n).get("unhealthy_since"))
               or (n.id in reports and _data(n).get("health_report") != reports[n.id])]
    if not changed:
        return False
    with rec.cp.store.session() as s:
        c = load_cluster(s, cluster.id)
        for node in (n for n in c.nodes if n.id in changed):
            data = _data(node)
            if node.id in reports:
                if not data.get("unhealthy_since"):
                    data["unhealthy_since"] = rec.now
                    events.record(s, c.id, "NODE_UNHEALTHY", f"{node.role} node {node.id} is unhealthy: "
                                  f"{reports[node.id]}", level="WARN", node_id=node.id)
                data["health_report"] = reports[node.id]
            else:
                data.pop("unhealthy_since", None)
                data.pop("health_report", None)
                data.pop("replacement_held", None)
                events.record(s, c.id, "NODE_HEALTHY", f"{node.role} node {node.id} is healthy again", node_id=node.id)
            node.provider_data = data
    return True


def watch(rec: "ClusterReconciler", cluster: Cluster) -> None:
    if observe_health(rec, cluster):
        cluster = rec._load()
    if cluster.unhealthy_node_replacement is False:
        return
    workers = _workers(cluster)
    if not any(_data(n).get("missing_since") or _data(n).get("unhealthy_since") or n.status == NodeState.LOST.value
               for n in workers):
        return
    replaced = [float(_data(n).get("replaced_at") or 0) for n in cluster.nodes]
    recent = sum(1 for at in replaced if rec.now - at < HOUR)
    # In flight: a replacement joining, or a replaced node still draining its blocks away.
    in_flight = sum(1 for n in cluster.nodes if n.ready_at is None and n.target == NodeTarget.RUNNING.value
                    and n.role != "MASTER" and n.status != NodeState.TERMINATED.value) if recent else 0
    in_flight += sum(1 for n in cluster.nodes if replacing(n) and n.status != NodeState.TERMINATED.value)
    healths = {n.id: _health(n, rec.now) for n in workers}
    verdicts = decide(list(healths.values()), RULES, rec.now, in_flight, recent)
    if not verdicts:
        return
    wrote = False
    with rec.cp.store.session() as s:
        c = load_cluster(s, cluster.id)
        for verdict in verdicts:
            node = next(n for n in c.nodes if n.id == verdict.node_id)
            data = _data(node)
            mine = healths[node.id]
            lost = mine.lost_since is not None and mine.processes_gone
            reason = verdict.reason if not verdict.replace else None
            if verdict.replace and not lost and not _spare_host(s, c, node):
                reason = f"held: no READY host for a new node in its group; due because {verdict.reason}"
            if reason is not None:  # said once per cause, not again as its duration grows
                if (data.get("replacement_held") or "").split("; due because")[0] != reason.split("; due because")[0]:
                    node.provider_data = {**data, "replacement_held": reason}
                    events.record(s, c.id, "NODE_REPLACEMENT_HELD", f"{node.role} node {node.id}: {reason}",
                                  level="WARN", node_id=node.id)
                continue
            wrote = True
            node.status_reason = f"replaced: {verdict.reason}"
            if lost:
                node.target = NodeTarget.TERMINATED.value  # nothing left to drain
                how = "released"
            else:  # its agent answers: it leaves as a scale-in leaver does, holding nothing back
                group = next(g for g in c.groups if g.id == node.group_id)
                timeout = group.decommission_timeout if group.decommission_timeout is not None \
                    else DEFAULT_DECOMMISSION_TIMEOUT
                node.decommission_state = DecommissionState.DECOMMISSIONING.value
                node.decommission_started_at, node.decommission_deadline_at = rec.now, rec.now + timeout
                node.decommission_detail = "replaced: waiting for the ResourceManager and NameNode to start"
                data["replacing"] = True
                how = f"decommissioned first (timeout {timeout} s)"
                if mine.unhealthy_since is not None and drain_after_replacement(s, node, verdict.reason, rec.now):
                    how += "; its host is drained"
            node.provider_data = {**data, "replaced_at": rec.now}
            events.record(s, c.id, "NODE_REPLACED", f"{node.role} node {node.id} is replaced, {how}: {verdict.reason}",
                          level="WARN", node_id=node.id)
        if wrote:
            bump_plan_version(s, c)
    if wrote:
        rec.cp.notifier.bump(cluster.id)


def _spare_host(s: Session, cluster: Cluster, node: Node) -> bool:
    """Whether a new node can join ``node``'s group before it leaves: always off the ssh
    provider; on it, a READY host matching the group (else draining the sick node would
    only shrink the group, past what a user's shrink may do)."""
    if not uses_hosts(cluster):
        return True
    group = next(g for g in cluster.groups if g.id == node.group_id)
    try:
        hosts_for_group(selection.load_pool(s), group, 1)
    except ValidationFailed:
        return False
    return True


def replacing(node: Node) -> bool:
    """A leaver that is being replaced: a grow must not take it back into service."""
    return bool(_data(node).get("replacing"))


def forget(cluster_id: str) -> None:
    _last_health_check.pop(cluster_id, None)
