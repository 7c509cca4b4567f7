"""Node group requests: resize, add a TASK group, remove one (EMR's ModifyInstanceGroups,
AddInstanceGroups and a removal by a graceful scale-in to zero).

These only check the request and write the group's target (and its operation); the
reconciler (``corral.reconcile.resize``) does the work. A request refused leaves the
store as it was. A new target while a group is RESIZING supersedes the previous one: its
operation ends FAILED ("superseded"), nothing stacks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Mapping

from sqlalchemy.orm import Session

from corral import ids
from corral.control import events
from corral.control.clusters import load_cluster
from corral.control.context import ControlPlane
from corral.control.views import effective_properties, in_service_view
from corral.domain.catalog import HOST_SIZED, INSTANCE_TYPES
from corral.domain.spec import GROUP_NAME
from corral.domain.states import ClusterState, DecommissionState, GroupState, NodeRole, NodeState
from corral.elastic.policy import load_policy
from corral.errors import Conflict, FieldError, NotFound, ValidationFailed
from corral.hosts import selection
from corral.services.registry import get_service
from corral.store.models import Cluster, Node, NodeGroup, bump_plan_version

# EMR's default for a graceful shrink (yarn.resourcemanager.nodemanager-graceful-decommission-timeout-secs
# on EMR): an hour for YARN to drain a node before it is forced out.
DEFAULT_DECOMMISSION_TIMEOUT = 3600
MAX_DECOMMISSION_TIMEOUT = 7 * 24 * 3600
MAX_GROUP_COUNT = 64  # as at create (NodeGroupSpec.count)
GROW_STEPS = ("VALIDATE", "PROVISION_NODES", "START_SERVICES", "CHECK_READY")
SHRINK_STEPS = ("VALIDATE", "DECOMMISSION_NODES", "RELEASE_NODES")


_ROLE_ORDER = {"MASTER": 0, "CORE": 1, "TASK": 2}


def operation_kind(group: NodeGroup) -> str:
    return f"RESIZE_GROUP:{group.id}"


@dataclass(frozen=True)
class ResizeRequest:
    """``count``: the group's new target; ``decommission_timeout``: seconds YARN may drain
    each leaving node (None: DEFAULT_DECOMMISSION_TIMEOUT); ``nodes``: exactly which nodes
    leave (a shrink by that many); ``rebalance``: run the HDFS balancer after a CORE grow."""

    count: int
    decommission_timeout: int | None = None
    nodes: tuple[str, ...] = ()
    rebalance: bool = False


def members(cluster: Cluster, group: NodeGroup) -> list[Node]:
    """The group's nodes that are or will be part of the cluster (not released, not
    being released)."""
    return [n for n in cluster.nodes if n.group_id == group.id and n.target == "RUNNING"
            and n.status != NodeState.TERMINATED.value]


def in_service(cluster: Cluster, group: NodeGroup) -> list[Node]:
    return [n for n in members(cluster, group) if n.decommission_state is None]


def find_group(cluster: Cluster, name: str) -> NodeGroup:
    """The cluster's live group called ``name``; NotFound (404) naming the known ones."""
    for group in cluster.groups:
        if group.name == name and group.status != GroupState.TERMINATED.value:
            return group
    live = [g for g in cluster.groups if g.status != GroupState.TERMINATED.value]
    known = ", ".join(g.name for g in sorted(live, key=lambda g: (_ROLE_ORDER[g.role], g.name)))
    raise NotFound("node group", f"{name!r} in cluster {cluster.id} (groups: {known})")


def _require_up(cluster: Cluster) -> None:
    if not ClusterState(cluster.status).is_up() or cluster.target != "ACTIVE":
        raise Conflict(f"cluster {cluster.id} is {cluster.status}: node groups change only while it is "
                       "WAITING or RUNNING")


def _shrink_problems(cluster: Cluster, group: NodeGroup, request: ResizeRequest, current: list[Node]) -> list[FieldError]:
    """A user's shrink refused up front (EMR refuses a CORE shrink below replication)."""
    errors: list[FieldError] = []
    if request.nodes:
        ids_ = [n.id for n in current]
        strangers = [n for n in request.nodes if n not in ids_]
        if strangers:
            errors.append(FieldError(("nodes",), f"not a node in service in group {group.name}: {', '.join(strangers)}"))
        elif len(set(request.nodes)) != len(current) - request.count:
            errors.append(FieldError(("nodes",), f"{len(set(request.nodes))} nodes named, but {group.name} shrinks by "
                                                 f"{len(current) - request.count} ({len(current)} -> {request.count})"))
        if errors:
            return errors
    view = in_service_view(cluster)
    props, _ = effective_properties(view)
    # As the reconciler does: nodes not yet RUNNING go first (they hold nothing), then running ones.
    joining = [n for n in current if n.status != NodeState.RUNNING.value and n.ready_at is None]
    excess = len(current) - request.count
    running = [n for n in current if n not in joining]
    leaving = set(request.nodes) or {n.id for n in running[len(running) - max(0, excess - len(joining)):]}
    if not leaving:
        return errors
    for name in cluster.services:
        problem = get_service(name).scale_in_problem(view, props, NodeRole(group.role), sorted(leaving), timeout=5.0)
        if problem:
            errors.append(FieldError(("count",), problem))
    return errors


def resize_group(cp: ControlPlane, cluster_id: str, group_name: str, request: ResizeRequest) -> NodeGroup:
    """Set the group's target. Raises NotFound (cluster, group), Conflict (cluster not up,
    group being removed), ValidationFailed at ``group`` (MASTER), ``count`` (out of
    0..64 or of the autoscaling policy's min/max, a CORE shrink HDFS cannot take),
    ``nodes`` or ``decommission_timeout``."""
    with cp.store.session() as s:
        cluster = load_cluster(s, cluster_id)
        _require_up(cluster)
        group = find_group(cluster, group_name)
        if group.status == GroupState.TERMINATING.value:
            raise Conflict(f"node group {group.name} is being removed")
        errors = _request_errors(group, request)
        current = in_service(cluster, group)
        if not errors and request.count > len(current):
            errors = _host_problems(s, cluster, group, request.count)
        if not errors and request.count < len(current):
            errors = _shrink_problems(cluster, group, request, current)
        elif not errors and request.nodes:
            errors = [FieldError(("nodes",), f"nodes name leavers of a shrink; {group.name} grows "
                                             f"({len(current)} -> {request.count})")]
        if errors:
            raise ValidationFailed(errors)
        _set_target(s, cluster, group, request, "USER")
    cp.notifier.bump(cluster_id)
    return group


def new_hosts_needed(cluster: Cluster, group: NodeGroup, count: int) -> int:
    """How many new nodes a grow of ``group`` to ``count`` creates: leavers still
    DECOMMISSIONING come back first (those being replaced do not)."""
    draining = [n for n in members(cluster, group) if n.decommission_state == DecommissionState.DECOMMISSIONING.value
                and not (n.provider_data or {}).get("replacing")]
    return max(0, count - len(in_service(cluster, group)) - len(draining))


def _host_problems(s: Session, cluster: Cluster, group: NodeGroup, count: int) -> list[FieldError]:
    """On the ssh provider a grow needs that many READY hosts matching the group (its
    labels, named hosts, instance type floor): refused up front when the pool has too few,
    at ``count``. The hosts are reserved when the reconciler creates the nodes."""
    if not uses_hosts(cluster):
        return []
    try:
        hosts_for_group(selection.load_pool(s), group, new_hosts_needed(cluster, group, count))
    except ValidationFailed as exc:
        return list(exc.errors)
    return []


def hosts_for_group(pool: list[selection.HostInfo], group: NodeGroup, count: int) -> list[selection.Pick]:
    """``selection.hosts_for_growth`` for ``count`` more nodes of ``group`` (its labels, named
    hosts and instance type floor); raises ValidationFailed at ``count`` when too few match."""
    return selection.hosts_for_growth(pool, group.role, group.instance_type, group.host_labels or {},
                                      group.host_names or [], count)


def uses_hosts(cluster: Cluster) -> bool:
    """Whether the cluster's nodes are registered hosts (``provider: ssh``), one node each."""
    return cluster.provider == "ssh"


def _request_errors(group: NodeGroup, request: ResizeRequest) -> list[FieldError]:
    errors: list[FieldError] = []
    if group.role == NodeRole.MASTER.value:
        return [FieldError(("group",), "the MASTER group is never resized")]
    if not 0 <= request.count <= MAX_GROUP_COUNT:
        errors.append(FieldError(("count",), f"count must be 0..{MAX_GROUP_COUNT}, got {request.count}"))
    policy = group.autoscaling_policy or {}
    low, high = policy.get("min_count"), policy.get("max_count")
    if low is not None and high is not None and not low <= request.count <= high:
        errors.append(FieldError(("count",), f"count {request.count} is outside the group's autoscaling bounds "
                                             f"{low}..{high} (change or remove the policy first)"))
    timeout = request.decommission_timeout
    if timeout is not None and not 0 <= timeout <= MAX_DECOMMISSION_TIMEOUT:
        errors.append(FieldError(("decommission_timeout",),
                                 f"decommission_timeout must be 0..{MAX_DECOMMISSION_TIMEOUT} seconds, got {timeout}"))
    return errors


def _set_target(s: Session, cluster: Cluster, group: NodeGroup, request: ResizeRequest, source: str) -> None:
    """Write the new target and start its operation, superseding a resize in progress."""
    previous = group.target_count
    now = time.time()
    kind = operation_kind(group)
    if group.status == GroupState.RESIZING.value:
        events.finish_operation(s, cluster.id, kind, ok=False, message=f"superseded by a resize to {request.count}")
    current = len(in_service(cluster, group))
    group.target_count = request.count
    group.decommission_timeout = (request.decommission_timeout if request.decommission_timeout is not None
                                  else DEFAULT_DECOMMISSION_TIMEOUT)
    group.leaving_node_ids = list(dict.fromkeys(request.nodes))
    group.rebalance = request.rebalance
    group.resize_requested_at = now
    group.status_reason = None
    if group.status != GroupState.TERMINATING.value:
        group.status = GroupState.RESIZING.value
    steps = SHRINK_STEPS if request.count < current else GROW_STEPS
    events.start_operation(s, ids.operation_id(), cluster.id, kind, steps)
    s.flush()
    events.progress(s, cluster.id, kind, "VALIDATE", "DONE", f"{group.name}: {current} -> {request.count}")
    events.record(s, cluster.id, "GROUP_RESIZE_REQUESTED",
                  f"{group.name} ({group.role}) target {previous} -> {request.count} by {source}"
                  + (f", leaving: {', '.join(request.nodes)}" if request.nodes else "")
                  + (f", decommission timeout {group.decommission_timeout} s" if request.count < current else ""))
    bump_plan_version(s, cluster)


@dataclass(frozen=True)
class NewGroup:
    """A TASK group to add. ``instance_type``: a catalog type (on ssh a floor each host must
    reach), or ``host`` on ssh (each node sized from its host); ``host_labels`` (ssh only):
    labels each of its hosts must carry."""

    role: str
    instance_type: str
    count: int
    name: str | None = None
    host_labels: Mapping[str, str] = field(default_factory=dict)


def add_group(cp: ControlPlane, cluster_id: str, spec: NewGroup) -> NodeGroup:
    """Add a TASK group to a running cluster (EMR's AddInstanceGroups); its nodes join like a
    scale-out. Raises ValidationFailed at ``role`` (only TASK), ``name`` (taken, badly
    formed), ``instance_type`` (unknown, or not on this provider), ``count``."""
    import re  # noqa: PLC0415 - only here

    with cp.store.session() as s:
        cluster = load_cluster(s, cluster_id)
        _require_up(cluster)
        errors: list[FieldError] = []
        if spec.role != NodeRole.TASK.value:
            errors.append(FieldError(("role",), f"only TASK groups are added to a running cluster, not {spec.role}"))
        taken = {g.name for g in cluster.groups if g.status != GroupState.TERMINATED.value}
        name = spec.name or _free_task_name(taken)
        if not re.match(GROUP_NAME, name):
            errors.append(FieldError(("name",), f"group name {name!r} must match {GROUP_NAME}"))
        elif name in taken:
            errors.append(FieldError(("name",), f"cluster {cluster.id} already has a group named {name!r}"))
        known = [*INSTANCE_TYPES, HOST_SIZED] if uses_hosts(cluster) else list(INSTANCE_TYPES)
        if spec.instance_type not in known:
            errors.append(FieldError(("instance_type",), f"unknown instance type {spec.instance_type!r} "
                                                         f"(known: {', '.join(known)})"))
        if spec.host_labels and not uses_hosts(cluster):
            errors.append(FieldError(("host_labels",), f"only on the ssh provider (this cluster's: {cluster.provider})"))
        if not 0 <= spec.count <= MAX_GROUP_COUNT:
            errors.append(FieldError(("count",), f"count must be 0..{MAX_GROUP_COUNT}, got {spec.count}"))
        if errors:
            raise ValidationFailed(errors)
        group = NodeGroup(id=ids.group_id(), cluster_id=cluster.id, name=name, role=spec.role,
                          instance_type=spec.instance_type, target_count=0, status=GroupState.RUNNING.value,
                          host_labels=dict(spec.host_labels), host_names=[], leaving_node_ids=[])
        s.add(group)
        s.flush()
        errors = _host_problems(s, cluster, group, spec.count)
        if errors:  # the session rolls the group back
            raise ValidationFailed(errors)
        events.record(s, cluster.id, "GROUP_ADDED", f"TASK group {name} ({spec.instance_type}) added")
        cluster.groups.append(group)
        _set_target(s, cluster, group, ResizeRequest(count=spec.count), "USER")
        group_id = group.id
    cp.notifier.bump(cluster_id)
    with cp.store.session() as s:
        added = s.get(NodeGroup, group_id)
        assert added is not None
        return added


def _free_task_name(taken: set[str]) -> str:
    if "TASK" not in taken:
        return "TASK"
    return next(f"TASK-{i}" for i in range(2, 1000) if f"TASK-{i}" not in taken)


def remove_group(cp: ControlPlane, cluster_id: str, group_name: str, decommission_timeout: int | None = None) -> NodeGroup:
    """Remove a TASK group: a graceful scale-in to zero, then the group is TERMINATED.
    Raises ValidationFailed at ``group`` for a MASTER or CORE group (they are resized)."""
    with cp.store.session() as s:
        cluster = load_cluster(s, cluster_id)
        _require_up(cluster)
        group = find_group(cluster, group_name)
        if group.role != NodeRole.TASK.value:
            raise ValidationFailed([FieldError(("group",), f"only TASK groups are removed; {group.name} is {group.role} "
                                                           "(resize it instead)")])
        if group.status == GroupState.TERMINATING.value:
            return group
        errors = _request_errors(group, ResizeRequest(count=0, decommission_timeout=decommission_timeout))
        errors = [e for e in errors if e.loc != ("count",)]  # removal ignores the policy's bounds: it goes
        if errors:
            raise ValidationFailed(errors)
        group.autoscaling_policy = None
        _set_target(s, cluster, group, ResizeRequest(count=0, decommission_timeout=decommission_timeout), "USER")
        group.status = GroupState.TERMINATING.value
        events.record(s, cluster.id, "GROUP_REMOVAL_REQUESTED", f"TASK group {group.name}: scale-in to 0, then removed")
    cp.notifier.bump(cluster_id)
    return group


def put_policy(cp: ControlPlane, cluster_id: str, group_name: str, document: object) -> NodeGroup:
    """Attach (or replace) a CORE or TASK group's autoscaling policy
    (``corral.elastic.policy``). Raises ValidationFailed at ``group`` (MASTER) or at the
    policy's own field (an unknown metric, min > max, a bad cron ...); nothing changes then."""
    with cp.store.session() as s:
        cluster = load_cluster(s, cluster_id)
        _require_up(cluster)
        group = find_group(cluster, group_name)
        if group.role == NodeRole.MASTER.value:
            raise ValidationFailed([FieldError(("group",), "the MASTER group is never resized: no autoscaling")])
        policy = load_policy(document)
        group.autoscaling_policy = policy.model_dump(mode="json")
        group.scaling_state = {"evaluated_at": time.time(), "cooldown_until": 0.0, "evaluations": []}
        events.record(s, cluster.id, "AUTOSCALING_POLICY_SET", f"{group.name}: min {policy.min_count}, max "
                      f"{policy.max_count}, {len(policy.rules)} load rules, {len(policy.time_rules)} time rules"
                      + (", managed" if policy.managed else ""))
        group_id = group.id
    cp.notifier.poke_reconciler(cluster_id)
    with cp.store.session() as s:
        row = s.get(NodeGroup, group_id)
        assert row is not None
        return row


def remove_policy(cp: ControlPlane, cluster_id: str, group_name: str) -> NodeGroup:
    with cp.store.session() as s:
        cluster = load_cluster(s, cluster_id)
        group = find_group(cluster, group_name)
        if group.autoscaling_policy is None:
            raise NotFound("autoscaling policy", f"of group {group.name}")
        group.autoscaling_policy, group.scaling_state = None, None
        events.record(s, cluster.id, "AUTOSCALING_POLICY_REMOVED", f"{group.name}: autoscaling off")
        return group
