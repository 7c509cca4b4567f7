"""Tables of the control plane's state. Times are epoch seconds (float) in every backend.

Every cluster and node row keeps a ``status`` and a ``target``; the reconciler moves the
first toward the second. ``attempts``/``next_attempt_at`` implement retry with backoff.
Schema changes go through Alembic migrations (``corral/store/migrations``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.orm.attributes import set_committed_value

from corral.errors import NotFound
from corral.secretbox import EncryptedJSON, EncryptedText


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Cluster(Base):
    __tablename__ = "clusters"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    client_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    spec_hash: Mapped[str] = mapped_column(String(64))
    release: Mapped[str] = mapped_column(String(32))
    services: Mapped[list[Any]] = mapped_column(JSON)
    configurations: Mapped[list[Any]] = mapped_column(JSON)
    bootstrap_actions: Mapped[list[Any]] = mapped_column(JSON)  # with artifact refs
    auto_terminate: Mapped[bool] = mapped_column(Boolean, default=False)
    provider: Mapped[str] = mapped_column(String(32))
    # Secret columns are encrypted at rest (``corral.secretbox``) and in no API schema.
    agent_token: Mapped[str] = mapped_column(EncryptedText)  # never leaves the store via the API

    status: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(String(32))
    state_code: Mapped[str | None] = mapped_column(String(64))
    state_message: Mapped[str | None] = mapped_column(Text)
    failure_code: Mapped[str | None] = mapped_column(String(64))  # set => ends TERMINATED_WITH_ERRORS
    failure_message: Mapped[str | None] = mapped_column(Text)
    plan_version: Mapped[int] = mapped_column(Integer, default=1)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0)
    deadline_at: Mapped[float | None] = mapped_column(Float)  # when the current state times out
    ready_check: Mapped[str | None] = mapped_column(Text)  # last readiness detail, for progress display
    # Object store, external metastore and LogUri, without their secrets (those are in
    # ``secrets``: placeholder name -> value, which no API response includes).
    object_storage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metastore: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    log_uri: Mapped[str | None] = mapped_column(Text)
    secrets: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON, default=dict)
    # Properties derived from the node count, as computed when the cluster was created
    # (dfs.replication, Spark's initial executors): a resize does not change them, a
    # user's configuration still overrides them (``corral.services.registry.COUNT_DERIVED``).
    derived_properties: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Idle auto-termination (EMR's AutoTerminationPolicy.IdleTimeout), seconds; None: off.
    # ``idle_since`` is when the cluster was last seen busy (``corral.elastic.idle``).
    idle_timeout: Mapped[int | None] = mapped_column(Integer)
    idle_since: Mapped[float | None] = mapped_column(Float)
    # Replace a CORE/TASK node that is gone or lost (EMR's UnhealthyNodeReplacement, on by
    # default; None in rows from before it: on). ``corral.reconcile.replace``.
    unhealthy_node_replacement: Mapped[bool | None] = mapped_column(Boolean, default=True)
    # Metric history, node measurements and the daemons' Prometheus endpoints (on by
    # default; None in rows from before it: on). ``corral.reconcile.sampler``.
    monitoring: Mapped[bool | None] = mapped_column(Boolean, default=True)

    created_at: Mapped[float] = mapped_column(Float)
    status_changed_at: Mapped[float] = mapped_column(Float)
    ready_at: Mapped[float | None] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)

    groups: Mapped[list["NodeGroup"]] = relationship(back_populates="cluster", order_by="NodeGroup.id")
    nodes: Mapped[list["Node"]] = relationship(back_populates="cluster", order_by="Node.created_at")


def cluster_row(session: Session, cluster_id: str) -> Cluster:
    """The cluster's row alone (its nodes and groups load when asked for); NotFound when there is none."""
    cluster = session.get(Cluster, cluster_id)
    if cluster is None:
        raise NotFound("cluster", cluster_id)
    return cluster


def bump_plan_version(session: Session, cluster: Cluster) -> int:
    """Increment the cluster's plan version in the database itself and return the new one.

    The API, agent reports and the reconciler bump it from separate sessions; a Python-side
    ``+= 1`` on a row each read earlier loses one of two concurrent bumps, and an agent
    then never sees the plan that carries a newly dispatched step.
    """
    result = session.execute(update(Cluster).where(Cluster.id == cluster.id)
                             .values(plan_version=Cluster.plan_version + 1)
                             .returning(Cluster.plan_version)
                             .execution_options(synchronize_session=False))
    version = int(result.scalar_one())
    set_committed_value(cluster, "plan_version", version)  # the object shows it without a reload
    return version


class NodeGroup(Base):
    """A named, resizable set of nodes of one role (EMR's instance group).

    ``target_count`` is what the user or a policy wants, ``status`` follows
    ``corral.domain.states.GroupState``: the reconciler (``corral.reconcile.resize``) moves
    the group's live nodes toward the target, decommissioning leavers gracefully with
    ``decommission_timeout`` (seconds; None: wait as long as it takes) and, when the user
    named them, exactly ``leaving_node_ids``."""

    __tablename__ = "node_groups"
    __table_args__ = (Index("ix_node_groups_cluster_name", "cluster_id", "name", unique=True),)

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    instance_type: Mapped[str] = mapped_column(String(32))
    target_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="RUNNING")
    status_reason: Mapped[str | None] = mapped_column(Text)
    decommission_timeout: Mapped[int | None] = mapped_column(Integer)
    leaving_node_ids: Mapped[list[Any] | None] = mapped_column(JSON, default=list)
    rebalance: Mapped[bool | None] = mapped_column(Boolean, default=False)
    resize_requested_at: Mapped[float | None] = mapped_column(Float)
    # Autoscaling (``corral.elastic.policy``, as the user gave it) and what its evaluations
    # remember between passes (``corral.elastic.autoscale.ScalingState``).
    autoscaling_policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    scaling_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Host selection on the ssh provider (the spec's ``host_labels`` / ``hosts``); empty elsewhere.
    host_labels: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    host_names: Mapped[list[Any] | None] = mapped_column(JSON, default=list)

    cluster: Mapped[Cluster] = relationship(back_populates="groups")


class Node(Base):
    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id"), index=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("node_groups.id"))
    role: Mapped[str] = mapped_column(String(16))
    instance_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(32))

    address: Mapped[str | None] = mapped_column(String(255))  # as long as a host's (ssh)
    directory: Mapped[str | None] = mapped_column(Text)
    provider_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    agent_pid: Mapped[int | None] = mapped_column(Integer)
    phase: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))  # e.g. BOOTSTRAP_FAILURE, DEPLOY_FAILURE
    components: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    plan_version: Mapped[int] = mapped_column(Integer, default=0)
    last_heartbeat: Mapped[float | None] = mapped_column(Float)
    last_event_seq: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0)
    # The host the node runs on (ssh provider; one node per host); None on the local provider.
    host_id: Mapped[str | None] = mapped_column(String(16), index=True)
    # The host's name and the node's size (vcpus, MiB) as resolved at create: the instance
    # type's on a floor, else the host's effective cores and memory. Kept here so a later
    # change of the host does not change a running cluster's sizes; None on local (the
    # catalog's ``instance_type`` sizes the node).
    host_name: Mapped[str | None] = mapped_column(String(128))
    vcpus: Mapped[int | None] = mapped_column(Integer)
    memory_mib: Mapped[int | None] = mapped_column(Integer)
    # Node health shared by resize, self-healing and monitoring: a node whose agent stopped
    # reporting and whose host cannot be reached is LOST (status) since ``lost_at``, for
    # ``status_reason``; it returns to its previous state when its agent re-attaches.
    lost_at: Mapped[float | None] = mapped_column(Float)
    status_reason: Mapped[str | None] = mapped_column(Text)
    # Graceful decommission on a scale-in (``corral.domain.states.DecommissionState``): the
    # node stays RUNNING while YARN drains it and HDFS re-replicates its blocks; Corral's
    # own deadline is kept here, so a ResourceManager or control-plane restart loses
    # nothing (the RM forgets its timeouts, YARN-5464). ``decommission_detail`` says what
    # it waits for ("2 containers, 1 application, 35 blocks").
    decommission_state: Mapped[str | None] = mapped_column(String(16))
    decommission_started_at: Mapped[float | None] = mapped_column(Float)
    decommission_deadline_at: Mapped[float | None] = mapped_column(Float)
    decommission_detail: Mapped[str | None] = mapped_column(Text)

    created_at: Mapped[float] = mapped_column(Float)
    ready_at: Mapped[float | None] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)

    cluster: Mapped[Cluster] = relationship(back_populates="nodes")


class Step(Base):
    __tablename__ = "steps"
    __table_args__ = (Index("ix_steps_cluster_seq", "cluster_id", "seq", unique=True),)

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id"))
    seq: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(256))
    type: Mapped[str] = mapped_column(String(16))
    args: Mapped[list[Any]] = mapped_column(JSON)
    artifacts: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{index, sha256, name}]
    action_on_failure: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    dispatched: Mapped[bool] = mapped_column(Boolean, default=False)  # in the master's plan
    state_message: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    # YARN applications the step submitted, read from its log as it arrives (Dataproc's
    # yarnApplications): shown to users, and killed when the step is cancelled.
    yarn_application_ids: Mapped[list[str] | None] = mapped_column(JSON, default=list)
    # Applications it submitted to a standalone Spark Master (``app-...``), read the same way.
    spark_application_ids: Mapped[list[str] | None] = mapped_column(JSON, default=list)
    # Optional limit on its run time in seconds, from started_at (Dataproc's job time
    # limit): a step over it is cancelled and ends FAILED with failure_code TIMEOUT.
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    # What its YARN applications used, from the RM's application reports when it ended
    # (``corral.metrics.cost``): containers, memory-seconds, vcore-seconds, duration.
    cost: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    failure_code: Mapped[str | None] = mapped_column(String(32))  # StepFailureCode, e.g. TIMEOUT
    # Whether the services were asked, once, why the step's applications failed.
    diagnosed: Mapped[bool | None] = mapped_column(Boolean, default=False)
    # Secrets the step's command needs (a database password), by placeholder name; only
    # the master's plan carries the values. Encrypted at rest.
    secrets: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id"), index=True)
    node_id: Mapped[str | None] = mapped_column(String(16))
    step_id: Mapped[str | None] = mapped_column(String(16))
    component: Mapped[str | None] = mapped_column(String(64))
    time: Mapped[float] = mapped_column(Float)
    level: Mapped[str] = mapped_column(String(8))
    code: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)


class Operation(Base):
    """A long-running request (create, terminate) with its recorded progress steps."""

    __tablename__ = "operations"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    cluster_id: Mapped[str] = mapped_column(ForeignKey("clusters.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)

    steps: Mapped[list["OperationStep"]] = relationship(order_by="OperationStep.seq", cascade="all, delete-orphan")


class OperationStep(Base):
    __tablename__ = "operation_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operation_id: Mapped[str] = mapped_column(ForeignKey("operations.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # PENDING, RUNNING, DONE, FAILED, SKIPPED
    detail: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[float | None] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)


class AddressLease(Base):
    """A node address handed out by a provider; the primary key makes it unique in use."""

    __tablename__ = "address_leases"

    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(16), unique=True)  # node id
    provider: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[float] = mapped_column(Float)


class Host(Base):
    """A machine registered for the ssh provider (Ambari's and Cloudera Manager's hosts).

    ``status`` follows ``corral.domain.states.HostState``. A host runs at most one node:
    ``node_id`` is the reservation, taken only by a conditional UPDATE (``status='READY'
    AND node_id IS NULL``), so two creates never get the same host. ``private_key`` is
    encrypted at rest (``corral.secretbox``) and no API schema has a field for it.
    """

    __tablename__ = "hosts"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    address: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=22)
    user: Mapped[str] = mapped_column(String(64))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The pinned host key: "SHA256:<base64>" as OpenSSH prints it, and the key itself
    # ("<type> <base64>", known_hosts form) once seen.
    host_key_fingerprint: Mapped[str | None] = mapped_column(String(128))
    host_key: Mapped[str | None] = mapped_column(Text)
    private_key: Mapped[str | None] = mapped_column(EncryptedText)  # None = the control plane's own keys
    # What the user said overrides the check's findings (``host add --cores/--memory``).
    cores_override: Mapped[int | None] = mapped_column(Integer)
    memory_mb_override: Mapped[int | None] = mapped_column(Integer)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the last check's findings
    checks: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{name, ok, found, need, fix}]

    status: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(String(32))  # READY, DRAINED or REMOVED
    status_reason: Mapped[str | None] = mapped_column(Text)
    node_id: Mapped[str | None] = mapped_column(String(16), unique=True)
    cluster_id: Mapped[str | None] = mapped_column(String(16), index=True)

    created_at: Mapped[float] = mapped_column(Float)
    status_changed_at: Mapped[float] = mapped_column(Float)
    checked_at: Mapped[float | None] = mapped_column(Float)
    last_seen_at: Mapped[float | None] = mapped_column(Float)
    removed_at: Mapped[float | None] = mapped_column(Float)


class ApiToken(Base):
    """A bearer token for ``/api/v1``; only a hash of its secret is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # admin, operator, viewer
    secret_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)


class AuditRecord(Base):
    """One mutating API call: who, what, on which target, when, and how it ended."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(128))  # token name, or "local" without auth
    role: Mapped[str | None] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64))  # e.g. cluster.create, host.add
    target: Mapped[str | None] = mapped_column(String(255))
    status_code: Mapped[int] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(String(16))  # ok, denied, failed
    remote: Mapped[str | None] = mapped_column(String(64))

import corral.store.monitoring  # noqa: E402,F401 - its tables are in Base.metadata too
