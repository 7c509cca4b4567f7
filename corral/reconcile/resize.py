"""Moving each node group of a running cluster toward its target count.

On every pass of a WAITING/RUNNING cluster, per group (``corral.store.models.NodeGroup``):

grow     recommission leavers still DECOMMISSIONING first (a new target superseded the
         shrink), then add REQUESTED nodes (on the ssh provider each with a READY host of
         the pool matching the group, reserved with it; none left: the grow is given up
         with the reason); the provider creates them, their agents deploy
         and start the DataNode/NodeManager; the group is RUNNING again once every new node
         is RUNNING and the services see them (``Service.check_ready`` on the in-service view)
shrink   cancel nodes not yet RUNNING first, then choose leavers (``corral.elastic.scalein``:
         the user's ``--nodes``, else no ApplicationMaster, fewest containers, newest) and
         mark them DECOMMISSIONING with Corral's own deadline; the plans put them in the
         ResourceManager's and NameNode's exclude files, whose hooks run ``refreshNodes``
drain    every DRAIN_CHECK_SECONDS each service says how far each leaver is
         (``Service.drain_status``); once all are done it is DECOMMISSIONED
release  a DECOMMISSIONED (or cancelled) node gets target TERMINATED: its agent stops its
         daemons, the provider releases it
forget   a released leaver stays in the exclude files until no daemon counts it as live
         (``Service.remembered``: the NameNode declares a stopped DataNode dead after ~90 s;
         dropped sooner, it would be put back in service and its blocks' other replicas
         deleted as excess), then the plans drop it

Every write is a short transaction of its own and every decision is re-derived from the
store, so a control plane killed at any point continues on restart; deadlines are in the
rows (``nodes.decommission_deadline_at``), not in memory.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from corral import ids
from corral.control import events
from corral.control.clusters import load_cluster
from corral.control.steps import add_steps
from corral.control.groups import (DEFAULT_DECOMMISSION_TIMEOUT, GROW_STEPS, SHRINK_STEPS, in_service, members,
                                   hosts_for_group, operation_kind, uses_hosts)
from corral.control.views import cluster_view, departed_unforgotten, in_service_view
from corral.domain.spec import StepRequest
from corral.domain.states import DecommissionState, GroupState, NodeRole, NodeState, NodeTarget, StepType
from corral.elastic import scalein
from corral.errors import ValidationFailed
from corral.hosts import selection
from corral.providers.base import NodeBroken, NodeUnreachable
from corral.reconcile import deadlines, replace
from corral.services.registry import get_service
from corral.store.models import Cluster, Node, NodeGroup, bump_plan_version

if TYPE_CHECKING:
    from corral.reconcile.clusters import ClusterReconciler

log = logging.getLogger("corral.reconcile")
DRAIN_CHECK_SECONDS = 3.0
_last_drain_check: dict[str, float] = {}  # cluster id -> when its leavers were last asked about
_last_forget_check: dict[str, float] = {}  # cluster id -> when its departed nodes were last asked about
_forced: set[str] = set()  # nodes whose deadline passed and whose exclude files were re-sent with 0 s
_NOT_UP = (NodeState.REQUESTED.value, NodeState.PROVISIONING.value, NodeState.BOOTSTRAPPING.value,
           NodeState.STARTING.value)


def _settled(cluster: Cluster) -> bool:
    """Nothing to do: every group at its target and RUNNING, no node joining or leaving."""
    for group in cluster.groups:
        if group.status in (GroupState.RESIZING.value, GroupState.TERMINATING.value):
            return False
        if group.status == GroupState.RUNNING.value and group.role != NodeRole.MASTER.value \
                and len(in_service(cluster, group)) != group.target_count:
            return False
    return not any((n.decommission_state is not None and n.status != NodeState.TERMINATED.value)
                   or departed_unforgotten(n)
                   or n.status in (NodeState.TERMINATING.value, NodeState.REQUESTED.value)
                   or (n.status == NodeState.PROVISIONING.value and n.last_heartbeat is None)
                   or (n.target == NodeTarget.TERMINATED.value and n.status != NodeState.TERMINATED.value)
                   for n in cluster.nodes)


def reconcile_groups(rec: "ClusterReconciler", cluster: Cluster) -> None:
    """One pass over every group of an up cluster (see the module's docstring)."""
    if _settled(cluster):
        return
    changed = False
    for group in cluster.groups:
        if group.status == GroupState.TERMINATED.value or group.role == NodeRole.MASTER.value:
            continue
        try:
            changed |= _converge(rec, cluster, group)
        except selection.HostTaken as exc:  # a concurrent create reserved it first: rolled back, next pass
            log.info("resize of %s: %s; selecting again", group.name, exc)
    if changed:
        rec.cp.notifier.bump(cluster.id)
        cluster = rec._load()
    changed = _release(rec, cluster)
    if changed:
        cluster = rec._load()
    _drain(rec, cluster)
    _forget(rec, rec._load())
    cluster = rec._load()
    new = [n for n in cluster.nodes if n.status in (NodeState.REQUESTED.value, NodeState.PROVISIONING.value)
           and n.target == NodeTarget.RUNNING.value]
    if new:
        _, broken = rec.provision(cluster, new)
        if broken is not None:
            _give_up(rec, cluster, broken[0], broken[1])
    _new_node_problems(rec, rec._load())
    _finish(rec, rec._load())


def _converge(rec: "ClusterReconciler", cluster: Cluster, group: NodeGroup) -> bool:
    """Add, recommission, cancel or mark leavers so that the group's in-service nodes match
    its target; returns whether anything was written."""
    serving = in_service(cluster, group)
    wanted = group.target_count
    if len(serving) == wanted:
        return False
    with rec.cp.store.session() as s:
        c = load_cluster(s, cluster.id)
        g = next(x for x in c.groups if x.id == group.id)
        serving = in_service(c, g)
        kind = operation_kind(g)
        if g.status == GroupState.RUNNING.value:  # a replaced node: the group grows back to its target
            g.status = GroupState.RESIZING.value
            steps = GROW_STEPS if len(serving) < wanted else SHRINK_STEPS
            events.start_operation(s, ids.operation_id(), c.id, kind, steps)
            s.flush()
        if len(serving) < wanted:
            draining = [n for n in members(c, g) if n.decommission_state == DecommissionState.DECOMMISSIONING.value
                        and not replace.replacing(n)]
            back = draining[:wanted - len(serving)]
            short = wanted - len(serving) - len(back)
            # Hosts first (ssh): a grow given up recommissions nobody; one that waits for a
            # host still takes its leavers back now.
            picks = _hosts_for(s, c, g, short) if short else []
            if picks is None:
                bump_plan_version(s, c)
                return True  # refused: the group is back at its size, with the reason
            for node in back:
                node.decommission_state = node.decommission_started_at = node.decommission_deadline_at = None
                node.decommission_detail = None
                node.provider_data = {k: v for k, v in (node.provider_data or {}).items() if k != "released_early"}
                _forced.discard(node.id)
                events.record(s, c.id, "NODE_RECOMMISSIONED", f"{node.role} node {node.id} back in service: "
                              f"{g.name}'s target is now {wanted}", node_id=node.id)
            if picks is _NOT_YET:  # a host it needs is still remembered by the NameNode: next pass
                bump_plan_version(s, c)
                return bool(back)
            now = rec.now
            reservations = []
            for i in range(short):
                node = Node(id=ids.node_id(), cluster_id=c.id, group_id=g.id, role=g.role, instance_type=g.instance_type,
                            status=NodeState.REQUESTED.value, target=NodeTarget.RUNNING.value, provider_data={},
                            components={}, created_at=now + i * 1e-6)
                if picks:  # a registered host for it (ssh), reserved with it
                    pick = picks[i]
                    node.host_id, node.host_name, node.address = pick.host.id, pick.host.name, pick.host.address
                    node.vcpus, node.memory_mib = pick.size.vcpus, pick.size.memory_mib
                    reservations.append((pick.host, node.id))
                s.add(node)
                events.record(s, c.id, "NODE_REQUESTED", f"{g.role} node {node.id} requested for {g.name} "
                              f"(target {wanted})" + (f" on host {node.host_name}" if picks else ""), node_id=node.id)
            if reservations:
                s.flush()
                selection.reserve(s, reservations, c.id, now)  # HostTaken: all rolled back, tried next pass
            events.progress(s, c.id, kind, "PROVISION_NODES", "RUNNING", f"{len(serving)}/{wanted} nodes in service")
        else:
            excess = len(serving) - wanted
            # Nodes that never ran hold nothing: they go first, without a decommission. A
            # node that ran once (a daemon restarting makes it STARTING) is drained as any other.
            starting = sorted((n for n in serving if n.status in _NOT_UP and n.ready_at is None),
                              key=lambda n: n.created_at, reverse=True)
            for node in starting[:excess]:
                node.target = NodeTarget.TERMINATED.value
                events.record(s, c.id, "NODE_CANCELLED", f"{node.role} node {node.id} not started: {g.name}'s "
                              f"target is now {wanted}", node_id=node.id)
            excess -= min(excess, len(starting))
            if excess:
                running = [n for n in serving if n not in starting]
                load = _placement_load(c)
                candidates = [scalein.Candidate(n.id, *load.get(n.id, (0, 0)), launched_at=n.ready_at or n.created_at)
                              for n in running]
                named = [n for n in (g.leaving_node_ids or []) if n in {r.id for r in running}]
                try:
                    chosen = scalein.choose_leaving(candidates, excess, named if len(named) == excess else ())
                except ValueError as exc:  # the named nodes changed meanwhile: choose by load
                    log.info("resize of %s: %s; choosing by load", g.name, exc)
                    chosen = scalein.choose_leaving(candidates, excess)
                timeout = g.decommission_timeout if g.decommission_timeout is not None else DEFAULT_DECOMMISSION_TIMEOUT
                for node in running:
                    if node.id in chosen:
                        node.decommission_state = DecommissionState.DECOMMISSIONING.value
                        node.decommission_started_at = rec.now
                        node.decommission_deadline_at = rec.now + timeout
                        node.decommission_detail = "waiting for the ResourceManager and NameNode to start"
                        events.record(s, c.id, "NODE_DECOMMISSIONING",
                                      f"{node.role} node {node.id} ({node.address}) decommissioning, timeout {timeout} s",
                                      node_id=node.id)
                events.progress(s, c.id, kind, "DECOMMISSION_NODES", "RUNNING", f"{len(chosen)} nodes decommissioning")
        bump_plan_version(s, c)
    return True


_NOT_YET: list[selection.Pick] = []  # _hosts_for's "wait": only remembered hosts would do


def _hosts_for(s: Session, cluster: Cluster, group: NodeGroup, count: int) -> list[selection.Pick] | None:
    """The hosts for ``count`` new nodes of ``group`` ([] off the ssh provider); ``_NOT_YET``
    while only hosts this cluster released and a daemon still remembers would do (their
    address is still excluded: ``ClusterView.departed``); None when the pool no longer has
    them (taken since the request was accepted): the grow is given up in ``s``, as a node
    that cannot be provisioned is (``_give_up``)."""
    if not uses_hosts(cluster):
        return []
    pool = selection.load_pool(s)
    remembered = {n.address for n in cluster.nodes if departed_unforgotten(n)}
    try:
        return hosts_for_group([h for h in pool if h.address not in remembered], group, count)
    except ValidationFailed as exc:
        if remembered:
            try:
                hosts_for_group(pool, group, count)
                return _NOT_YET
            except ValidationFailed:
                pass
        reason = "; ".join(e.msg for e in exc.errors)
        group.target_count = len(in_service(cluster, group))
        group.status_reason = f"resize failed: {reason}"
        events.record(s, cluster.id, "RESIZE_FAILED", f"{group.name}: {reason}; target set back to "
                      f"{group.target_count}", level="ERROR")
        events.finish_operation(s, cluster.id, operation_kind(group), ok=False, message=reason)
        return None


def _placement_load(cluster: Cluster) -> dict[str, tuple[int, int]]:
    """node id -> (ApplicationMasters, running containers) on it, from the services."""
    view = cluster_view(cluster)
    load: dict[str, tuple[int, int]] = {}
    for name in cluster.services:
        for node_id, (ams, containers) in get_service(name).node_load(view, timeout=3.0).items():
            old = load.get(node_id, (0, 0))
            load[node_id] = (old[0] + ams, old[1] + containers)
    return load


def _drain(rec: "ClusterReconciler", cluster: Cluster) -> None:
    """Ask the services how far each leaver is; DECOMMISSIONING -> DECOMMISSIONED when every
    service is done with it. Past its deadline a leaver's exclude files are sent once more
    (with 0 s left, so a ResourceManager that forgot the timeout forces it out now);
    HDFS is never cut short: a CORE node leaves only once the NameNode is done with it."""
    leaving = [n for n in cluster.nodes if n.decommission_state == DecommissionState.DECOMMISSIONING.value
               and n.target == NodeTarget.RUNNING.value]
    if not leaving or rec.now - _last_drain_check.get(cluster.id, 0.0) < DRAIN_CHECK_SECONDS:
        return
    _last_drain_check[cluster.id] = rec.now
    view = cluster_view(cluster)
    answers = [get_service(name).drain_status(view, timeout=3.0) for name in cluster.services]
    overdue = [n.id for n in leaving if n.decommission_deadline_at is not None and rec.now > n.decommission_deadline_at
               and n.id not in _forced and not (n.provider_data or {}).get("released_early")]
    # Waits that would only end at the timeout, with nothing of theirs left on the node.
    early = [n.id for n in leaving if n.id not in _forced and n.id not in overdue
             and not (n.provider_data or {}).get("released_early")
             and any(a[n.id].release_now for a in answers if n.id in a)]
    with rec.cp.store.session() as s:
        c = load_cluster(s, cluster.id)
        for node in c.nodes:
            if node.id not in {n.id for n in leaving}:
                continue
            mine = [a[node.id] for a in answers if node.id in a]
            waiting = [d.waiting for d in mine if not d.done]
            if node.id in early:  # its deadline is now: the exclude file says 0 s left
                node.decommission_deadline_at = rec.now
                node.provider_data = {**(node.provider_data or {}), "released_early": True}
                events.record(s, c.id, "DECOMMISSION_RELEASED", f"{node.role} node {node.id}: "
                              f"{'; '.join(d.waiting for d in mine if d.release_now)}: YARN's wait ends now",
                              node_id=node.id)
            if not waiting:
                node.decommission_state = DecommissionState.DECOMMISSIONED.value
                node.decommission_detail = "decommissioned"
                events.record(s, c.id, "NODE_DECOMMISSIONED", f"{node.role} node {node.id} decommissioned "
                              f"after {rec.now - (node.decommission_started_at or rec.now):.0f} s", node_id=node.id)
            else:
                node.decommission_detail = "waiting for " + "; ".join(waiting)
        if overdue:
            events.record(s, c.id, "DECOMMISSION_TIMEOUT", f"decommission timeout passed for {', '.join(overdue)}: "
                          "YARN forces them out; HDFS still re-replicates their blocks first", level="WARN")
        if overdue or early:
            _forced.update(overdue + early)
            bump_plan_version(s, c)
    if overdue or early:
        rec.cp.notifier.bump(cluster.id)


def _forget(rec: "ClusterReconciler", cluster: Cluster) -> None:
    """Released leavers stay in the exclude files until no daemon counts them as live
    (``ClusterView.departed``); asked every DRAIN_CHECK_SECONDS, then dropped from the files."""
    view = cluster_view(cluster)
    if not view.departed or rec.now - _last_forget_check.get(cluster.id, 0.0) < DRAIN_CHECK_SECONDS:
        return
    _last_forget_check[cluster.id] = rec.now
    remembered: set[str] = set()
    for name in cluster.services:
        remembered |= get_service(name).remembered(view, timeout=3.0)
    forgotten = [n.node_id for n in view.departed if n.node_id not in remembered]
    if not forgotten:
        return
    with rec.cp.store.session() as s:
        c = load_cluster(s, cluster.id)
        for node in (n for n in c.nodes if n.id in forgotten):
            node.provider_data = {**(node.provider_data or {}), "forgotten_at": rec.now}
        bump_plan_version(s, c)  # the exclude files drop them
    rec.cp.notifier.bump(cluster.id)


def _release(rec: "ClusterReconciler", cluster: Cluster) -> bool:
    """Stop and release DECOMMISSIONED and cancelled nodes (target TERMINATED in an up
    cluster): the agent stops its daemons first (``STOP_GRACE_SECONDS``), then the provider
    releases the node."""
    changed = False
    provider = rec.cp.provider(cluster.provider)
    with rec.cp.store.session() as s:
        c = load_cluster(s, cluster.id)
        for node in c.nodes:
            if node.decommission_state == DecommissionState.DECOMMISSIONED.value and node.target == NodeTarget.RUNNING.value:
                node.target = NodeTarget.TERMINATED.value
                changed = True
            if node.target == NodeTarget.TERMINATED.value and node.status not in (NodeState.TERMINATING.value,
                                                                                 NodeState.TERMINATED.value):
                if node.status == NodeState.REQUESTED.value:  # never created: nothing to release
                    node.status, node.ended_at = NodeState.TERMINATED.value, rec.now
                    events.record(s, c.id, "NODE_TERMINATED", f"{node.role} node {node.id} cancelled", node_id=node.id)
                else:
                    node.status = NodeState.TERMINATING.value
                    node.provider_data = {**(node.provider_data or {}), "release_requested_at": rec.now}
                changed = True
        if changed:
            bump_plan_version(s, c)
    if changed:
        rec.cp.notifier.bump(cluster.id)
        cluster = rec._load()
    for node in cluster.nodes:
        if node.status != NodeState.TERMINATING.value or node.next_attempt_at > rec.now:
            continue
        asked = (node.provider_data or {}).get("release_requested_at") or rec.now
        stale = node.last_heartbeat is None or rec.now - node.last_heartbeat > 5
        if not (node.phase == "STOPPED" or stale or rec.now - asked > deadlines.STOP_GRACE_SECONDS):
            continue
        try:
            provider.terminate_node(node.id, timeout=5.0)
        except (NodeUnreachable, NodeBroken) as exc:
            rec._node_terminated(node, "host unreachable: cleaned when it returns"
                                 if isinstance(exc, NodeUnreachable) else f"not cleaned: {exc}", str(exc))
        except Exception as exc:  # noqa: BLE001 - retried with backoff
            log.exception("terminate_node %s failed", node.id)
            rec._node_failed(node, f"release failed: {exc}")
            continue
        else:
            rec._node_terminated(node, None, None)
        changed = True
        with rec.cp.store.session() as s:
            bump_plan_version(s, load_cluster(s, cluster.id))  # YARN's exclude file drops it; HDFS's in _forget
        _forced.discard(node.id)
        rec.cp.notifier.bump(cluster.id)
    return changed


def _give_up(rec: "ClusterReconciler", cluster: Cluster, node: Node, reason: str) -> None:
    """A new node that cannot be provisioned or started: the resize fails loudly (its
    operation FAILED, the group's reason says why) and the target returns to what the group
    has, so it does not retry forever ("scaling that silently does nothing")."""
    with rec.cp.store.session() as s:
        c = load_cluster(s, cluster.id)
        row = next(n for n in c.nodes if n.id == node.id)
        group = next(g for g in c.groups if g.id == row.group_id)
        row.target = NodeTarget.TERMINATED.value
        group.target_count = len(in_service(c, group))
        group.status_reason = f"resize failed: {reason}"
        events.record(s, c.id, "RESIZE_FAILED", f"{group.name}: {reason}; target set back to {group.target_count}",
                      level="ERROR", node_id=row.id)
        events.finish_operation(s, c.id, operation_kind(group), ok=False, message=reason)
        bump_plan_version(s, c)
    rec.cp.notifier.bump(cluster.id)


def _new_node_problems(rec: "ClusterReconciler", cluster: Cluster) -> None:
    """A joining node whose deploy or bootstrap failed, whose daemon failed, or that is not
    RUNNING within the bootstrapping deadline gives the resize up (``_give_up``)."""
    for node in cluster.nodes:
        joining = node.ready_at is None and node.decommission_state is None  # never RUNNING yet, not leaving
        if not joining or node.target != NodeTarget.RUNNING.value or node.status not in _NOT_UP \
                or node.role == NodeRole.MASTER.value:
            continue
        failed = [f"{name}: {comp.get('message')}" for name, comp in (node.components or {}).items()
                  if comp.get("status") == "FAILED"]
        if node.phase == "FAILED":
            _give_up(rec, cluster, node, f"node {node.id} failed: {node.error}")
        elif failed:
            _give_up(rec, cluster, node, f"node {node.id}: {'; '.join(failed)}")
        elif rec.now - node.created_at > deadlines.BOOTSTRAPPING_SECONDS:
            _give_up(rec, cluster, node, f"node {node.id} not RUNNING after {deadlines.BOOTSTRAPPING_SECONDS:.0f} s "
                                         f"({node.status})")


def _finish(rec: "ClusterReconciler", cluster: Cluster) -> None:
    """A RESIZING group whose nodes all match its target, and whose new nodes the services
    see, is RUNNING again (its operation SUCCEEDED); a removed group is TERMINATED."""
    busy = [g for g in cluster.groups if g.status in (GroupState.RESIZING.value, GroupState.TERMINATING.value)]
    if not busy:
        return
    view = None
    for group in busy:
        kind = operation_kind(group)
        nodes = [n for n in cluster.nodes if n.group_id == group.id and n.status != NodeState.TERMINATED.value]
        serving = in_service(cluster, group)
        leaving = [n for n in nodes if n.decommission_state is not None or n.target == NodeTarget.TERMINATED.value]
        not_up = [n for n in serving if n.status != NodeState.RUNNING.value]
        if len(serving) != group.target_count or leaving or not_up:
            with rec.cp.store.session() as s:
                if not_up:
                    events.progress(s, cluster.id, kind, "START_SERVICES", "RUNNING",
                                    f"{len(serving) - len(not_up)}/{group.target_count} nodes RUNNING")
                elif leaving:
                    draining = [n for n in leaving if n.decommission_state == DecommissionState.DECOMMISSIONING.value]
                    step = "DECOMMISSION_NODES" if draining else "RELEASE_NODES"
                    detail = "; ".join(f"{n.id}: {n.decommission_detail}" for n in draining) or \
                        f"{len(leaving)} nodes being released"
                    events.progress(s, cluster.id, kind, step, "RUNNING", detail)
            continue
        if group.role != NodeRole.MASTER.value and group.target_count and view is None:
            view = in_service_view(cluster)
            checks = [get_service(name).check_ready(view, timeout=2.0) for name in cluster.services]
            if not all(c.ready for c in checks):
                with rec.cp.store.session() as s:
                    events.progress(s, cluster.id, kind, "CHECK_READY", "RUNNING", "; ".join(c.detail for c in checks))
                view = None
                continue
        with rec.cp.store.session() as s:
            c = load_cluster(s, cluster.id)
            g = next(x for x in c.groups if x.id == group.id)
            final = GroupState.TERMINATED if g.status == GroupState.TERMINATING.value else GroupState.RUNNING
            g.status = final.value
            message = f"{g.name} has {g.target_count} nodes in service"
            events.finish_operation(s, c.id, kind, ok=True, message=message)
            events.record(s, c.id, "GROUP_REMOVED" if final is GroupState.TERMINATED else "GROUP_RESIZED",
                          f"{g.name} removed" if final is GroupState.TERMINATED else message)
            rebalance = bool(g.rebalance and g.role == NodeRole.CORE.value and final is GroupState.RUNNING)
            g.rebalance = False
        if rebalance:  # a step of its own: visible, and cancellable as any other
            add_steps(rec.cp, cluster.id, [StepRequest(type=StepType.SHELL, name=f"HDFS balancer after {group.name} resize",
                                                       args=["hdfs balancer -threshold 10"])])
