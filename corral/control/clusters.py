"""Cluster requests: create (idempotent by client token), list, get, terminate.

These only write rows and targets; the reconciler does the work. A create either
commits the whole cluster (groups, nodes, initial steps, operation) or nothing.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from corral import ids
from corral.control import events
from corral.control.context import ControlPlane
from corral.control.steps import capabilities, local_path_problem, prepare_steps, upload_how
from corral.domain.secrets import spec_secrets
from corral.domain.catalog import HOST_SIZED
from corral.domain.spec import ClusterSpec, NodeGroupSpec, group_name, validate_cluster_spec
from corral.domain.states import ClusterState, ClusterTarget, GroupState, NodeState, NodeTarget, StateChangeCode
from corral.hosts import selection
from corral.services.registry import count_derived_properties, spec_view, validate_fit
from corral.errors import Conflict, FieldError, NotFound, ValidationFailed
from corral.jobs.files import node_name
from corral.reconcile import deadlines
from corral.store.models import Cluster, Event, Node, NodeGroup, Operation, Step, bump_plan_version

ROLE_ORDER = {"MASTER": 0, "CORE": 1, "TASK": 2}


def spec_hash(spec: ClusterSpec) -> str:
    body = spec.model_dump(mode="json", exclude={"client_token"})
    # Fields added with host selection, left out at their defaults: a local spec hashes as
    # it did before them, so a client token used before an upgrade still matches its spec.
    if body.get("provider") == "local":
        del body["provider"]
    if body.get("auto_termination") is None:
        body.pop("auto_termination", None)
    if body.get("unhealthy_node_replacement") is True:
        body.pop("unhealthy_node_replacement", None)
    if body.get("monitoring") is True:
        body.pop("monitoring", None)
    for group in body["node_groups"]:
        for key in ("host_labels", "hosts", "name"):
            if group.get(key) is None:
                group.pop(key, None)
    # model_dump masks secrets; a different password is a different request
    body["secret_digests"] = {k: hashlib.sha256(v.encode()).hexdigest() for k, v in spec_secrets(spec).items()}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# Built once (as heartbeats' statement): a statement per call leaves its bound parameter's
# reference cycle to the garbage collector, and reconcile passes and reads run this often.
_CLUSTER_WITH_NODES = (select(Cluster).where(Cluster.id == bindparam("cluster_id"))
                       .options(selectinload(Cluster.nodes), selectinload(Cluster.groups)))


def load_cluster(session: Session, cluster_id: str) -> Cluster:
    """The cluster with its nodes and groups; NotFound when there is none."""
    cluster = session.scalar(_CLUSTER_WITH_NODES, {"cluster_id": cluster_id})
    if cluster is None:
        raise NotFound("cluster", cluster_id)
    return cluster


def _by_token(cp: ControlPlane, spec: ClusterSpec) -> Cluster | None:
    if not spec.client_token:
        return None
    with cp.store.session() as s:
        existing = s.scalar(select(Cluster).where(Cluster.client_token == spec.client_token))
    if existing is not None and existing.spec_hash != spec_hash(spec):
        raise Conflict(f"client token {spec.client_token!r} was used for a different cluster spec ({existing.id})")
    return existing


def _bootstrap_artifacts(cp: ControlPlane, spec: ClusterSpec) -> tuple[list[dict[str, object]], list[FieldError]]:
    """Each bootstrap script is the client's file, uploaded before: its ``sha256`` must name
    a stored artifact (this machine's ``path`` is never opened)."""
    bootstrap: list[dict[str, object]] = []
    errors: list[FieldError] = []
    for i, action in enumerate(spec.bootstrap_actions):
        loc = ("bootstrap_actions", i, "path")
        problem = local_path_problem(action.path, "path")
        if problem:
            errors.append(FieldError(loc, problem))
        elif action.sha256 is None:
            errors.append(FieldError(loc, f"{action.path}: not uploaded — {upload_how()} and give its sha256"))
        elif not cp.artifacts.exists(action.sha256):
            errors.append(FieldError(loc, f"{action.path}: not uploaded (no artifact {action.sha256}) — "
                                          f"{upload_how(action.sha256)}"))
        else:
            name = node_name(action.path)
            bootstrap.append({"name": action.name or name, "args": action.args, "sha256": action.sha256,
                              "file_name": name})
    return bootstrap, errors


# A create whose hosts another create reserved first selects again, this often, before
# it gives up (each round reads the pool anew; a pool that lacks hosts is refused at once).
RESERVE_ATTEMPTS = 5


def create_cluster(cp: ControlPlane, spec: ClusterSpec) -> tuple[Cluster, bool]:
    """Returns (cluster, created); a repeated client token returns the first cluster.

    The order: the spec's own checks; on ssh, host selection and then the fit of every
    step type on the selected hosts' sizes; bootstrap scripts and steps; then one
    transaction writing every row and reserving the hosts. Raises ValidationFailed (bad
    spec, too few matching hosts; nothing written), Conflict (a client token reused for a
    different spec, or hosts taken by concurrent creates ``RESERVE_ATTEMPTS`` times)."""
    existing = _by_token(cp, spec)
    if existing is not None:
        return existing, False
    if spec.provider not in cp.providers:  # refused before any host is reserved for it
        raise ValidationFailed([FieldError(("provider",), f"provider {spec.provider!r} is not set up on this control plane "
                                                           f"(set up: {', '.join(sorted(cp.providers))})")])
    validate_cluster_spec(spec)
    for _ in range(RESERVE_ATTEMPTS):
        try:
            return _create_once(cp, spec)
        except selection.HostTaken:
            existing = _by_token(cp, spec)  # the winner may be the same request, retried
            if existing is not None:
                return existing, False
    raise Conflict(f"the hosts selected for '{spec.name}' were reserved by concurrent creates "
                   f"{RESERVE_ATTEMPTS} times in a row; try again")


def _select(cp: ControlPlane, spec: ClusterSpec) -> selection.Selection | None:
    """The hosts of an ssh spec, and the refusal of a spec whose step types could never
    run on their sizes (``registry.validate_fit``); None on local."""
    if spec.provider != "ssh":
        return None
    with cp.store.session() as s:
        pool = selection.load_pool(s)
    chosen = selection.select_hosts(spec, pool)
    errors = validate_fit(spec, chosen.sizes())
    if errors:
        raise ValidationFailed(errors)
    return chosen


def _create_once(cp: ControlPlane, spec: ClusterSpec) -> tuple[Cluster, bool]:
    chosen = _select(cp, spec)
    available = capabilities(spec.services, spec.object_storage is not None)
    bootstrap, bootstrap_errors = _bootstrap_artifacts(cp, spec)
    view = spec_view(spec, chosen.sizes() if chosen is not None else None)
    steps, step_errors = prepare_steps(cp, spec.steps, available, loc_prefix=("steps",), view=view)
    if bootstrap_errors or step_errors:
        raise ValidationFailed(bootstrap_errors + step_errors)
    now = time.time()
    cluster = Cluster(
        id=ids.cluster_id(), name=spec.name, client_token=spec.client_token, spec_hash=spec_hash(spec),
        release=spec.release, services=spec.services_in_order(),
        configurations=[c.model_dump(mode="json") for c in spec.configurations],
        bootstrap_actions=bootstrap, auto_terminate=spec.auto_terminate, provider=spec.provider,
        object_storage=spec.object_storage.model_dump(mode="json", exclude={"secret_key"}) if spec.object_storage else None,
        metastore=spec.metastore.model_dump(mode="json", exclude={"password"}) if spec.metastore else None,
        log_uri=spec.log_uri, secrets=spec_secrets(spec),
        agent_token=secrets.token_urlsafe(32), status=ClusterState.STARTING.value, target=ClusterTarget.ACTIVE.value,
        state_code=None, state_message="Provisioning nodes", plan_version=1, created_at=now, status_changed_at=now,
        deadline_at=now + deadlines.STARTING_SECONDS,
        idle_timeout=spec.auto_termination.idle_timeout if spec.auto_termination else None,
        unhealthy_node_replacement=spec.unhealthy_node_replacement,
        monitoring=spec.monitoring,
        derived_properties=count_derived_properties(view),
    )
    try:
        with cp.store.session() as s:
            s.add(cluster)
            s.flush()  # the cluster row first: the write that orders concurrent creates (SQLite's lock, the token's index)
            reservations: list[tuple[selection.HostInfo, str]] = []
            indexed = sorted(enumerate(spec.node_groups), key=lambda g: ROLE_ORDER[g[1].role.value])
            for index, group_spec in indexed:
                itype = group_spec.instance_type or HOST_SIZED
                group = NodeGroup(id=ids.group_id(), cluster_id=cluster.id, name=group_name(spec, index),
                                  role=group_spec.role.value, status=GroupState.RUNNING.value,
                                  instance_type=itype, target_count=group_spec.count,
                                  host_labels=dict(group_spec.host_labels or {}), host_names=list(group_spec.hosts or []))
                s.add(group)
                s.flush()  # nodes reference the group; no ORM relationship orders the inserts
                picks = chosen.of_group(index) if chosen is not None else []
                for i in range(group_spec.count):
                    node = Node(id=ids.node_id(), cluster_id=cluster.id, group_id=group.id, role=group.role,
                                instance_type=itype, status=NodeState.REQUESTED.value,
                                target=NodeTarget.RUNNING.value, provider_data={}, components={},
                                created_at=now + i * 1e-6)
                    if picks:
                        pick = picks[i]
                        node.host_id, node.host_name, node.address = pick.host.id, pick.host.name, pick.host.address
                        node.vcpus, node.memory_mib = pick.size.vcpus, pick.size.memory_mib
                        reservations.append((pick.host, node.id))
                    s.add(node)
            s.flush()
            selection.reserve(s, reservations, cluster.id, now)
            for seq, step in enumerate(steps):
                step.cluster_id, step.seq = cluster.id, seq
                s.add(step)
            events.start_operation(s, ids.operation_id(), cluster.id, "CREATE_CLUSTER", events.CREATE_STEPS)
            s.flush()
            events.progress(s, cluster.id, "CREATE_CLUSTER", "VALIDATE", "DONE", "spec is valid")
            events.record(s, cluster.id, "CLUSTER_CREATED",
                          f"cluster '{spec.name}' requested: {', '.join(spec.services)}; "
                          + ", ".join(_group_text(i, g, chosen) for i, g in enumerate(spec.node_groups)))
    except IntegrityError:
        again = _by_token(cp, spec)  # a concurrent create with the same token won
        if again is None:
            raise
        return again, False
    cp.notifier.poke_reconciler(cluster.id)
    return cluster, True


def _group_text(index: int, group: NodeGroupSpec, chosen: selection.Selection | None) -> str:
    """``2 x CORE local.medium`` (local); on ssh with the hosts: ``2 x CORE on h2, h3``."""
    text = f"{group.count} x {group.role.value}" + (f" {group.instance_type}" if group.instance_type else "")
    if chosen is not None and group.count:
        text += " on " + ", ".join(p.host.name for p in chosen.of_group(index))
    return text


def list_clusters(cp: ControlPlane, states: list[str] | None = None, after: tuple[float, str] | None = None,
                  limit: int | None = None) -> list[Cluster]:
    """Clusters newest first (``created_at``, then id, descending), optionally only those in
    ``states``; ``after`` is the (created_at, id) of the last cluster of the previous page."""
    with cp.store.session() as s:
        query = select(Cluster).options(selectinload(Cluster.nodes), selectinload(Cluster.groups))
        if states:
            query = query.where(Cluster.status.in_(states))
        if after is not None:
            created, cluster_id = after
            query = query.where(or_(Cluster.created_at < created,
                                    and_(Cluster.created_at == created, Cluster.id < cluster_id)))
        query = query.order_by(Cluster.created_at.desc(), Cluster.id.desc())
        return list(s.scalars(query if limit is None else query.limit(limit)))


def get_cluster(cp: ControlPlane, cluster_id: str) -> Cluster:
    with cp.store.session() as s:
        return load_cluster(s, cluster_id)


def request_termination(session: Session, cluster: Cluster, code: StateChangeCode, message: str,
                        failure: bool) -> None:
    """Set the cluster's target to TERMINATED; the reconciler takes it from there."""
    if ClusterState(cluster.status).is_terminal() or cluster.target == ClusterTarget.TERMINATED.value:
        return
    cluster.target = ClusterTarget.TERMINATED.value
    cluster.state_code, cluster.state_message = code.value, message
    if failure:
        cluster.failure_code, cluster.failure_message = code.value, message
    bump_plan_version(session, cluster)
    events.start_operation(session, ids.operation_id(), cluster.id, "TERMINATE_CLUSTER", events.TERMINATE_STEPS)
    events.record(session, cluster.id, "TERMINATION_REQUESTED", f"{code.value}: {message}",
                  level="ERROR" if failure else "INFO")


def terminate_cluster(cp: ControlPlane, cluster_id: str) -> Cluster:
    with cp.store.session() as s:
        cluster = load_cluster(s, cluster_id)
        request_termination(s, cluster, StateChangeCode.USER_REQUEST, "Terminated at the user's request", failure=False)
    cp.notifier.bump(cluster_id)
    return get_cluster(cp, cluster_id)


def update_cluster(cp: ControlPlane, cluster_id: str, idle_timeout: int | None) -> Cluster:
    """Change a running cluster's idle timeout (seconds, 60..7 days; None turns idle
    auto-termination off); a new timeout counts from the idle time already passed, as
    EMR's does. Raises NotFound, Conflict when the cluster has ended or is terminating."""
    with cp.store.session() as s:
        cluster = load_cluster(s, cluster_id)
        if ClusterState(cluster.status).is_terminal() or cluster.target == ClusterTarget.TERMINATED.value:
            raise Conflict(f"cluster {cluster_id} is {cluster.status}: nothing to update")
        if cluster.idle_timeout != idle_timeout:
            cluster.idle_timeout = idle_timeout
            events.record(s, cluster.id, "CLUSTER_UPDATED", "idle auto-termination off" if idle_timeout is None
                          else f"idle timeout {idle_timeout} s")
    cp.notifier.poke_reconciler(cluster_id)
    return get_cluster(cp, cluster_id)


def cluster_steps(session: Session, cluster_id: str) -> list[Step]:
    return list(session.scalars(select(Step).where(Step.cluster_id == cluster_id).order_by(Step.seq)))


def list_events(cp: ControlPlane, cluster_id: str, after: int = 0, limit: int | None = 1000) -> list[Event]:
    """The cluster's events with an id above ``after``, oldest first, at most ``limit``."""
    with cp.store.session() as s:
        load_cluster(s, cluster_id)
        query = select(Event).where(Event.cluster_id == cluster_id, Event.id > after).order_by(Event.id)
        return list(s.scalars(query if limit is None else query.limit(limit)))


def list_operations(cp: ControlPlane, cluster_id: str) -> list[Operation]:
    with cp.store.session() as s:
        load_cluster(s, cluster_id)
        return list(s.scalars(select(Operation).where(Operation.cluster_id == cluster_id)
                              .options(selectinload(Operation.steps)).order_by(Operation.created_at)))
