"""Cluster requests: create (idempotent by client token), list, get, terminate.

These only write rows and targets; the reconciler does the work. A create either
commits the whole cluster (groups, nodes, initial steps, operation) or nothing.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from corral import ids
from corral.control import events
from corral.control.context import ControlPlane
from corral.control.steps import capabilities, local_path_problem, prepare_steps, upload_how
from corral.domain.secrets import spec_secrets
from corral.domain.spec import ClusterSpec, validate_cluster_spec
from corral.domain.states import ClusterState, ClusterTarget, NodeState, NodeTarget, StateChangeCode
from corral.services.registry import spec_view
from corral.errors import Conflict, FieldError, NotFound, ValidationFailed
from corral.jobs.files import node_name
from corral.reconcile import deadlines
from corral.store.models import Cluster, Event, Node, NodeGroup, Operation, Step, bump_plan_version

ROLE_ORDER = {"MASTER": 0, "CORE": 1, "TASK": 2}


def spec_hash(spec: ClusterSpec) -> str:
    body = spec.model_dump(mode="json", exclude={"client_token"})
    # model_dump masks secrets; a different password is a different request
    body["secret_digests"] = {k: hashlib.sha256(v.encode()).hexdigest() for k, v in spec_secrets(spec).items()}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def load_cluster(session: Session, cluster_id: str) -> Cluster:
    cluster = session.scalar(
        select(Cluster).where(Cluster.id == cluster_id).options(selectinload(Cluster.nodes), selectinload(Cluster.groups))
    )
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


def create_cluster(cp: ControlPlane, spec: ClusterSpec) -> tuple[Cluster, bool]:
    """Returns (cluster, created); a repeated client token returns the first cluster."""
    existing = _by_token(cp, spec)
    if existing is not None:
        return existing, False
    validate_cluster_spec(spec)
    available = capabilities(spec.services, spec.object_storage is not None)
    bootstrap, bootstrap_errors = _bootstrap_artifacts(cp, spec)
    steps, step_errors = prepare_steps(cp, spec.steps, available, loc_prefix=("steps",), view=spec_view(spec))
    if bootstrap_errors or step_errors:
        raise ValidationFailed(bootstrap_errors + step_errors)
    now = time.time()
    cluster = Cluster(
        id=ids.cluster_id(), name=spec.name, client_token=spec.client_token, spec_hash=spec_hash(spec),
        release=spec.release, services=spec.services_in_order(),
        configurations=[c.model_dump(mode="json") for c in spec.configurations],
        bootstrap_actions=bootstrap, auto_terminate=spec.auto_terminate, provider="local",
        object_storage=spec.object_storage.model_dump(mode="json", exclude={"secret_key"}) if spec.object_storage else None,
        metastore=spec.metastore.model_dump(mode="json", exclude={"password"}) if spec.metastore else None,
        log_uri=spec.log_uri, secrets=spec_secrets(spec),
        agent_token=secrets.token_urlsafe(32), status=ClusterState.STARTING.value, target=ClusterTarget.ACTIVE.value,
        state_code=None, state_message="Provisioning nodes", plan_version=1, created_at=now, status_changed_at=now,
        deadline_at=now + deadlines.STARTING_SECONDS,
    )
    try:
        with cp.store.session() as s:
            s.add(cluster)
            s.flush()
            for group_spec in sorted(spec.node_groups, key=lambda g: ROLE_ORDER[g.role.value]):
                group = NodeGroup(id=ids.group_id(), cluster_id=cluster.id, role=group_spec.role.value,
                                  instance_type=group_spec.instance_type, target_count=group_spec.count)
                s.add(group)
                s.flush()  # nodes reference the group; no ORM relationship orders the inserts
                for i in range(group_spec.count):
                    s.add(Node(id=ids.node_id(), cluster_id=cluster.id, group_id=group.id, role=group.role,
                               instance_type=group.instance_type, status=NodeState.REQUESTED.value,
                               target=NodeTarget.RUNNING.value, provider_data={}, components={},
                               created_at=now + i * 1e-6))
            for seq, step in enumerate(steps):
                step.cluster_id, step.seq = cluster.id, seq
                s.add(step)
            events.start_operation(s, ids.operation_id(), cluster.id, "CREATE_CLUSTER", events.CREATE_STEPS)
            s.flush()
            events.progress(s, cluster.id, "CREATE_CLUSTER", "VALIDATE", "DONE", "spec is valid")
            events.record(s, cluster.id, "CLUSTER_CREATED",
                          f"cluster '{spec.name}' requested: {', '.join(spec.services)}; "
                          + ", ".join(f"{g.count} x {g.role.value} {g.instance_type}" for g in spec.node_groups))
    except IntegrityError:
        again = _by_token(cp, spec)  # a concurrent create with the same token won
        if again is None:
            raise
        return again, False
    cp.notifier.poke_reconciler()
    return cluster, True


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
