"""Response models of the public API. Secrets (the agent token) have no field here."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel

from corral.domain.secrets import masked_properties
from corral.control.views import cluster_view, effective_properties, groups_in_order, node_size
from corral.domain.catalog import INSTANCE_TYPES, InstanceType
from corral.services.registry import get_service
from corral.store.models import Cluster, Event, Node, NodeGroup, Operation, Step


def ts(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, timezone.utc) if value is not None else None


class StateChangeReason(BaseModel):
    code: str | None
    message: str | None


class Timeline(BaseModel):
    created_at: datetime
    ready_at: datetime | None
    ended_at: datetime | None


class NodeGroupOut(BaseModel):
    id: str
    name: str  # what --group takes: MASTER, CORE, TASK or the user's name
    role: str
    instance_type: str  # "host": each node sized by its own host (ssh, no instance type in the spec)
    status: str  # RUNNING, RESIZING, TERMINATING, TERMINATED (corral.domain.states.GroupState)
    status_reason: str | None = None  # e.g. why the last resize failed
    requested_count: int  # the target count
    running_count: int  # nodes RUNNING and in service
    decommissioning_count: int = 0
    decommission_timeout: int | None = None  # seconds, of the last shrink requested
    host_labels: dict[str, str] = {}  # ssh: the labels its hosts were selected by
    hosts: list[str] = []  # ssh: the hosts the spec named

    @classmethod
    def of(cls, c: Cluster, g: NodeGroup) -> "NodeGroupOut":
        mine = [n for n in c.nodes if n.group_id == g.id and n.status != "TERMINATED"]
        return cls(id=g.id, name=g.name, role=g.role, instance_type=g.instance_type, status=g.status,
                   status_reason=g.status_reason, requested_count=g.target_count,
                   running_count=sum(1 for n in mine if n.status == "RUNNING" and n.decommission_state is None),
                   decommissioning_count=sum(1 for n in mine if n.decommission_state is not None),
                   decommission_timeout=g.decommission_timeout,
                   host_labels=dict(g.host_labels or {}), hosts=list(g.host_names or []))


class ComponentOut(BaseModel):
    status: str
    pid: int | None = None
    restarts: int = 0
    message: str | None = None


class NodeOut(BaseModel):
    id: str
    role: str
    instance_type: str
    status: str
    address: str | None
    host: str | None = None  # ssh: the name of the host the node runs on (one node per host)
    vcpus: int | None = None  # what its daemons are sized from: its instance type's, or its host's
    memory_mib: int | None = None
    phase: str | None
    error: str | None
    error_code: str | None
    # Node health (corral.reconcile.health): why the node is LOST (or was terminated
    # without being cleaned), and since when it is LOST.
    status_reason: str | None = None
    lost_at: datetime | None = None
    group: str | None = None  # its node group's name
    # A leaving node's graceful decommission: DECOMMISSIONING (what it waits for in the
    # detail: containers, applications, blocks), DECOMMISSIONED; and Corral's deadline.
    decommission_state: str | None = None
    decommission_detail: str | None = None
    decommission_deadline: datetime | None = None
    components: dict[str, ComponentOut]
    last_heartbeat: datetime | None
    ready_at: datetime | None


class ClusterSummary(BaseModel):
    id: str
    name: str
    status: str
    state_change_reason: StateChangeReason
    timeline: Timeline
    node_count: int

    @classmethod
    def of(cls, c: Cluster) -> "ClusterSummary":
        return cls(id=c.id, name=c.name, status=c.status, node_count=len(c.nodes),
                   state_change_reason=StateChangeReason(code=c.state_code, message=c.state_message),
                   timeline=Timeline(created_at=ts(c.created_at), ready_at=ts(c.ready_at), ended_at=ts(c.ended_at)))  # type: ignore[arg-type]


class ClusterDetail(ClusterSummary):
    release: str
    provider: str = "local"  # local or ssh
    services: list[str]
    target: str
    auto_terminate: bool
    master_address: str | None
    node_groups: list[NodeGroupOut]
    nodes: list[NodeOut]
    configurations: list[dict[str, Any]]
    bootstrap_actions: list[dict[str, Any]]
    object_storage: dict[str, Any] | None = None  # endpoint, region, access key: never the secret key
    metastore: dict[str, Any] | None = None  # type, JDBC URL, user: never the password
    log_uri: str | None = None
    web_uis: dict[str, str]
    endpoints: dict[str, str]  # what clients connect to: hdfs://, jdbc:hive2:// ...
    ready_check: str | None
    auto_termination: dict[str, int] | None = None  # {idle_timeout: seconds}, EMR's AutoTerminationPolicy
    idle_since: datetime | None = None  # since when it is idle, while auto-termination is on
    unhealthy_node_replacement: bool = True  # a gone or lost CORE/TASK node is replaced
    monitoring: bool = True  # metric history, node metrics, Prometheus endpoints, alerts

    @classmethod
    def of(cls, c: Cluster) -> "ClusterDetail":
        view = cluster_view(c)
        master = next((n for n in c.nodes if n.role == "MASTER"), None)
        up = c.status in ("WAITING", "RUNNING")
        uis: dict[str, str] = {}
        endpoints: dict[str, str] = {}
        if master is not None and master.address and up:
            for name in c.services:
                uis.update(get_service(name).web_uis(view))
                endpoints.update(get_service(name).endpoints(view))
        groups = [NodeGroupOut.of(c, g) for g in groups_in_order(c)]
        names = {g.id: g.name for g in c.groups}
        nodes = [NodeOut(id=n.id, role=n.role, instance_type=n.instance_type, status=n.status, address=n.address,
                         host=n.host_name, vcpus=_size(n)[0], memory_mib=_size(n)[1], phase=n.phase, error=n.error,
                         error_code=n.error_code, status_reason=n.status_reason, lost_at=ts(n.lost_at),
                         last_heartbeat=ts(n.last_heartbeat), ready_at=ts(n.ready_at), group=names.get(n.group_id),
                         decommission_state=n.decommission_state, decommission_detail=n.decommission_detail,
                         decommission_deadline=ts(n.decommission_deadline_at),
                         components={k: ComponentOut(**v) for k, v in (n.components or {}).items()})
                 for n in c.nodes]
        base = ClusterSummary.of(c).model_dump()
        return cls(**base, release=c.release, provider=c.provider, services=list(c.services), target=c.target,
                   auto_terminate=c.auto_terminate, master_address=master.address if master else None,
                   node_groups=groups, nodes=nodes,
                   configurations=[{**conf, "properties": masked_properties(conf.get("properties", {}))}
                                   for conf in c.configurations],
                   object_storage=c.object_storage, metastore=c.metastore, log_uri=c.log_uri,
                   bootstrap_actions=[{"name": b["name"], "file": b["file_name"], "args": b["args"]}
                                      for b in c.bootstrap_actions],
                   web_uis=uis, endpoints=endpoints, ready_check=c.ready_check,
                   auto_termination={"idle_timeout": c.idle_timeout} if c.idle_timeout is not None else None,
                   idle_since=ts(c.idle_since), unhealthy_node_replacement=c.unhealthy_node_replacement is not False,
                   monitoring=c.monitoring is not False)


def _size(node: Node) -> tuple[int | None, int | None]:
    """(vcpus, MiB) the node is sized by: kept in its row (ssh), else its catalog type's."""
    size: InstanceType | None = node_size(node) or INSTANCE_TYPES.get(node.instance_type)
    return (size.vcpus, size.memory_mib) if size is not None else (None, None)


class EffectiveConfig(BaseModel):
    classification: str
    properties: dict[str, str]
    user_set: list[str]


def effective_configs(c: Cluster) -> list[EffectiveConfig]:
    props, user = effective_properties(cluster_view(c))
    return [EffectiveConfig(classification=k, properties=masked_properties(v), user_set=sorted(user.get(k, {})))
            for k, v in sorted(props.items())]


class StepOut(BaseModel):
    id: str
    cluster_id: str
    name: str
    type: str
    args: list[str]
    action_on_failure: str
    status: str
    # While RUNNING: what its work waits for ("waiting for YARN: ..."), if anything; once
    # ended: why (a FAILED step's reason, "TIMEOUT: ..." when its timeout stopped it).
    state_message: str | None
    failure_code: str | None = None  # StepFailureCode (TIMEOUT) when Corral failed the step
    timeout: int | None = None  # seconds it may run
    exit_code: int | None
    yarn_application_ids: list[str] = []
    spark_application_ids: list[str] = []  # a standalone Spark Master's app-... ids
    files: dict[str, str] = {}  # each local file shipped with the step (client path) -> its sha256
    # What its YARN applications used, recorded once it ended (corral.metrics.cost): per
    # application and in total, containers, memory_seconds (MiB x s), vcore_seconds,
    # elapsed_seconds. None until recorded, or for a step without applications.
    cost: dict[str, Any] | None = None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None

    @classmethod
    def of(cls, s: Step) -> "StepOut":
        return cls(id=s.id, cluster_id=s.cluster_id, name=s.name, type=s.type, args=list(s.args),
                   action_on_failure=s.action_on_failure, status=s.status, state_message=s.state_message,
                   failure_code=s.failure_code, timeout=s.timeout_seconds,
                   exit_code=s.exit_code, yarn_application_ids=list(s.yarn_application_ids or []),
                   spark_application_ids=list(s.spark_application_ids or []),
                   files={a["path"]: a["sha256"] for a in s.artifacts or []}, cost=s.cost,
                   created_at=ts(s.created_at), started_at=ts(s.started_at),  # type: ignore[arg-type]
                   ended_at=ts(s.ended_at))


class StepsOut(BaseModel):
    steps: list[StepOut]


class EventOut(BaseModel):
    id: int
    time: datetime
    level: str
    code: str
    message: str
    node_id: str | None
    step_id: str | None
    component: str | None

    @classmethod
    def of(cls, e: Event) -> "EventOut":
        return cls(id=e.id, time=ts(e.time), level=e.level, code=e.code, message=e.message,  # type: ignore[arg-type]
                   node_id=e.node_id, step_id=e.step_id, component=e.component)


class OperationStepOut(BaseModel):
    name: str
    status: str
    detail: str | None
    started_at: datetime | None
    ended_at: datetime | None


class OperationOut(BaseModel):
    id: str
    cluster_id: str
    kind: str
    status: str
    message: str | None
    created_at: datetime
    ended_at: datetime | None
    steps: list[OperationStepOut]

    @classmethod
    def of(cls, o: Operation) -> "OperationOut":
        return cls(id=o.id, cluster_id=o.cluster_id, kind=o.kind, status=o.status, message=o.message,
                   created_at=ts(o.created_at), ended_at=ts(o.ended_at),  # type: ignore[arg-type]
                   steps=[OperationStepOut(name=s.name, status=s.status, detail=s.detail,
                                           started_at=ts(s.started_at), ended_at=ts(s.ended_at)) for s in o.steps])
