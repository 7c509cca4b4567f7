"""The service plug-in contract and the cluster view services render from.

A service declares its components and where they are placed (by node group), the config
files it writes, default properties derived from instance types, ports, start commands
and health checks. The orchestrator knows nothing service-specific: it asks every service
of a cluster for these and hands the result to the node agents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol

import httpx

from corral.agent.protocol import ComponentSpec, FileSpec
from corral.domain.catalog import INSTANCE_TYPES, InstanceType
from corral.domain.states import NodeRole
from corral.errors import FieldError
from corral.formats import Format

# One client for the services' checks of their daemons' REST APIs: a new client per request
# (httpx.get) costs ~50 ms of CPU building its SSL context, a shared one ~0.3 ms.
HTTP = httpx.Client()

if TYPE_CHECKING:
    from corral.domain.spec import ClusterSpec


@dataclass(frozen=True)
class NodeView:
    node_id: str
    role: NodeRole
    address: str
    directory: str  # the node's root directory on its host
    instance_type: str
    # The node's own size when it is not the catalog's (a whole host on the ssh provider,
    # resolved at create and kept in the node's row); None: INSTANCE_TYPES[instance_type].
    size: InstanceType | None = None
    # A leaving node's graceful decommission (``corral.domain.states.DecommissionState``)
    # and Corral's deadline for it (epoch seconds); None for a node in service.
    decommission: str | None = None
    decommission_deadline: float | None = None

    @property
    def leaving(self) -> bool:
        return self.decommission is not None

    @property
    def itype(self) -> InstanceType:
        """What the node's daemons are sized from: its own size, else its catalog type."""
        return self.size if self.size is not None else INSTANCE_TYPES[self.instance_type]

    def path(self, *parts: str) -> str:
        return "/".join((self.directory.rstrip("/"), *parts))

    @property
    def tmp_dir(self) -> str:
        """Where every process of the node keeps temporary files (TMPDIR, java.io.tmpdir):
        inside the node's directory, so they go with the node instead of piling up in the
        host's /tmp."""
        return self.path("tmp")


@dataclass(frozen=True)
class MetricsEndpoint:
    """One daemon's Prometheus endpoint: ``http://{address}{path}``, for scraping
    (``corral.control.monitoring``'s service discovery)."""

    node_id: str
    role: NodeRole
    component: str  # the daemon, as the plan names it (namenode, nodemanager, ...), or spark-driver
    address: str  # host:port
    path: str  # /prom, /metrics/prometheus, ...
    labels: tuple[tuple[str, str], ...] = ()  # more labels, e.g. (("application_id", "application_..."),)


@dataclass(frozen=True)
class ClusterView:
    """What a service sees of a cluster: its nodes (those with an address) and settings."""

    cluster_id: str
    release: str
    services: tuple[str, ...]
    nodes: tuple[NodeView, ...]
    user_configurations: dict[str, dict[str, str]] = field(default_factory=dict)
    # Count-derived defaults as computed at create (``registry.COUNT_DERIVED``).
    derived_configurations: dict[str, dict[str, str]] = field(default_factory=dict)
    # The spec's object store and external metastore without their secrets: services
    # write secrets.placeholder(...) where the key or password goes.
    object_storage: dict[str, Any] | None = None
    metastore: dict[str, Any] | None = None
    log_uri: str | None = None
    # Nodes released after a graceful decommission that a daemon may still count as live
    # (the NameNode takes ~90 s to declare a stopped DataNode dead): they stay in the
    # exclude files until ``Service.remembered`` says no daemon does. Taking one out
    # sooner has the NameNode put it back in service while it still looks alive, find
    # its blocks over-replicated and delete good replicas elsewhere
    # (DatanodeAdminManager.stopDecommission -> processExtraRedundancyBlocksOnInService).
    departed: tuple[NodeView, ...] = ()
    # Monitoring on (``clusters.monitoring``): the daemons' Prometheus endpoints are enabled.
    monitoring: bool = True

    @property
    def master(self) -> NodeView:
        return next(n for n in self.nodes if n.role is NodeRole.MASTER)

    def with_roles(self, *roles: NodeRole) -> list[NodeView]:
        return [n for n in self.nodes if n.role in roles]

    def leaving(self, *roles: NodeRole) -> list[NodeView]:
        """Nodes of ``roles`` being decommissioned (in the exclude files until released)."""
        return [n for n in self.with_roles(*roles) if n.leaving]

    def excluded(self, *roles: NodeRole) -> list[NodeView]:
        """What the exclude files list for ``roles``: nodes leaving, and departed ones still
        remembered, unless a node in service now has that address (it was reused)."""
        serving = {n.address for n in self.with_roles(*roles) if not n.leaving}
        gone = [n for n in self.departed if n.role in roles and n.address not in serving]
        return self.leaving(*roles) + gone


def require_core_nodes(spec: "ClusterSpec", message: str) -> list[FieldError]:
    """``message`` at the CORE group's count (or the groups) when the spec has no CORE node."""
    if spec.count(NodeRole.CORE) >= 1:
        return []
    group = spec.group(NodeRole.CORE)
    loc: tuple[str | int, ...] = ("node_groups", spec.node_groups.index(group), "count") if group else ("node_groups",)
    return [FieldError(loc, message)]


@dataclass(frozen=True)
class ReadyCheck:
    ready: bool
    detail: str


@dataclass(frozen=True)
class Drain:
    """Where one service stands with one leaving node: ``done`` once the service no longer
    needs it (YARN: DECOMMISSIONED; HDFS: every block re-replicated elsewhere), else what it
    still waits for (``waiting``: e.g. ``2 containers``, ``35 blocks``). ``release_now``:
    what the daemon still waits for will never end by itself and holds nothing on the
    node (YARN waiting only for Corral's always-on SQL endpoint application, whose
    containers have left it): the reconciler ends the wait at once rather than at the
    decommission timeout."""

    done: bool
    waiting: str = ""
    release_now: bool = False


class NotObserved(Exception):
    """Raised by ``Service.busy_reason`` when its daemon did not answer: the cluster's
    activity is unknown this time (idle time neither starts nor restarts on it)."""


class NotYet(Exception):
    """Raised by ``Service.failure_details`` while what it would read is still being
    written (YARN is still aggregating the containers' logs): ask again a little later."""


@dataclass(frozen=True)
class StepWork:
    """What a RUNNING step has set going, for a service to judge whether it waits.

    ``application_ids``: every application the step submitted (YARN's ``application_...``
    and a standalone Spark Master's ``app-...``; a service picks its own). ``new_log``: the
    step's stderr written since the previous check (a client-mode driver's log), decoded
    leniently; a service may look for its framework's own "still waiting" lines there.
    """

    step_id: str
    application_ids: tuple[str, ...]
    new_log: str = ""


@dataclass
class WaitMemo:
    """What a service remembers about one step between wait checks (kept by the caller):
    ``since`` maps a service-chosen key (e.g. an application and the size of what it asks
    for) to when that wait was first seen, in the caller's clock."""

    since: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)  # applications seen finished: not asked about again

    def first_seen(self, key: str, now: float) -> float:
        return self.since.setdefault(key, now)

    def keep_only(self, keys: set[str]) -> None:
        """Forget waits not seen in this check: one that comes back starts again."""
        for key in [k for k in self.since if k not in keys]:
            del self.since[key]


class Service(Protocol):
    name: str
    requires: tuple[str, ...]  # other services this one needs in the same cluster
    classifications: Mapping[str, Format]  # configuration classifications it owns, and their file formats
    uses_hadoop: bool  # its nodes need the release's Hadoop runtime
    # Every fixed port a daemon of the service binds on a node of each role (whatever the
    # cluster's shape: a standalone Spark master's too); the host check wants them free.
    node_ports: Mapping[NodeRole, tuple[int, ...]]

    def validate(self, spec: "ClusterSpec") -> list[FieldError]:
        """Checks on the spec that only this service knows (e.g. Spark needs CORE nodes)."""

    def default_properties(self, cluster: ClusterView) -> dict[str, dict[str, str]]:
        """Per classification, properties derived from the cluster's shape and instance types."""

    def config_files(self, cluster: ClusterView, node: NodeView, props: dict[str, dict[str, str]]) -> list[FileSpec]:
        """Files to write on ``node``, from the effective (defaults + user) properties."""

    def components(self, cluster: ClusterView, node: NodeView, props: dict[str, dict[str, str]]) -> list[ComponentSpec]:
        """Daemons of this service placed on ``node`` (empty when none is)."""

    def step_env(self, cluster: ClusterView) -> dict[str, str]:
        """Environment for steps and bootstrap actions on the master."""

    def check_ready(self, cluster: ClusterView, timeout: float) -> ReadyCheck:
        """Cluster-level readiness, beyond each daemon answering (e.g. all workers registered)."""

    def web_uis(self, cluster: ClusterView) -> dict[str, str]:
        """Name -> URL of the service's web UIs."""

    def endpoints(self, cluster: ClusterView) -> dict[str, str]:
        """Name -> URI clients connect to (``hdfs://``, ``thrift://``, ``jdbc:hive2://`` ...)."""

    def application_usage(self, cluster: ClusterView, application_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        """What each of a finished step's applications this service knows used, by key
        (``corral.metrics.cost``): YARN's ``memory_seconds`` (MiB x s), ``vcore_seconds``,
        ``elapsed_seconds``, ``attempts`` (ApplicationMaster containers), ``type``,
        ``final_status``, from the RM's application report; MapReduce's and Spark's
        ``task_containers`` (a job's task attempts launched, from the JobHistory Server;
        an application's executors, from the Spark History Server). Later services in the
        release's order add keys to earlier ones'. Raises NotYet while an application is
        not finished or its history not written yet; leaves out what no daemon knows."""

    def metrics_endpoints(self, cluster: ClusterView, timeout: float) -> list[MetricsEndpoint]:
        """The Prometheus endpoints of this service's daemons on ``cluster``'s nodes (the
        daemons' own: Hadoop's /prom, Spark's PrometheusServlet); [] with monitoring off.
        Best effort: what needs a daemon's answer (running Spark drivers) is left out
        when it does not answer."""

    def cancel_applications(self, cluster: ClusterView, application_ids: list[str]) -> None:
        """Stop work a cancelled step submitted to this service (e.g. YARN applications);
        idempotent, best effort. Services that run no applications do nothing."""

    def waiting_reason(self, cluster: ClusterView, work: StepWork, memo: WaitMemo, now: float) -> str | None:
        """Why the step's work has been waiting for cluster resources for longer than a
        short while, as one line for the step's state message (e.g. ``waiting for YARN:
        Queue's AM resource limit exceeded ...``), or None when it is not waiting (or this
        service has none of it). ``now`` is epoch seconds from the caller's clock; ``memo``
        is this service's memory of the step across checks. Best effort: a daemon that does
        not answer means None. Called by the reconciler every few seconds per RUNNING step."""

    def scale_in_problem(self, cluster: ClusterView, props: dict[str, dict[str, str]], role: NodeRole,
                         leaving: list[str], timeout: float) -> str | None:
        """Why this service cannot let the nodes ``leaving`` (ids, of group role ``role``)
        go from the in-service ``cluster``, or None (HDFS: fewer CORE nodes than
        dfs.replication, or too little capacity left for the data held)."""

    def metric_values(self, cluster: ClusterView, now: float, timeout: float) -> dict[Any, float]:
        """This service's share of one metrics sample (``corral.metrics.samples.Metric`` ->
        value), read from its daemons' own REST/JMX; {} when they do not answer."""

    def busy_reason(self, cluster: ClusterView, timeout: float) -> str | None:
        """What keeps the cluster from being idle in this service (a YARN application
        running or waiting that is not Corral's own always-on one, a query running on the
        SQL endpoint), or None. Raises NotObserved when the daemon does not answer."""

    def node_load(self, cluster: ClusterView, timeout: float) -> dict[str, tuple[int, int]]:
        """node id -> (ApplicationMasters, running containers) this service has on it: what
        a scale-in weighs when it chooses leavers (``corral.elastic.scalein``). Best effort:
        a daemon that does not answer gives {}."""

    def drain_status(self, cluster: ClusterView, timeout: float) -> dict[str, Drain]:
        """For each leaving node (``cluster.leaving()``) this service runs daemons on: node
        id -> how far its graceful decommission is, from the daemons' own REST/JMX. A node
        missing from the answer needs nothing from this service. Raises nothing: a daemon
        that does not answer gives ``Drain(False, "<daemon> not answering")``."""

    def remembered(self, cluster: ClusterView, timeout: float) -> set[str]:
        """The ids of ``cluster.departed`` nodes a daemon of this service still counts as
        live (HDFS: the NameNode lists the DataNode among its LiveNodes), so they stay in
        its exclude file; every one of them when the daemon does not answer."""

    def unhealthy_nodes(self, cluster: ClusterView, timeout: float) -> dict[str, str]:
        """node id -> the health report of each node whose daemons of this service say it
        is unhealthy (YARN: a NodeManager UNHEALTHY, e.g. "1/1 local-dirs usable space is
        below configured utilization percentage"): what node replacement weighs
        (``corral.elastic.replacement``). Raises NotObserved when the daemon does not answer."""

    def failure_details(self, cluster: ClusterView, application_ids: list[str]) -> dict[str, str]:
        """For the step's applications of this service that failed: application id -> the
        failed container's own error line (e.g. ``java.io.IOException: ...``), from the
        service's diagnostics or aggregated logs. Called once when a step ends FAILED, or
        again a few seconds later while it raises NotYet (for a bounded time); a later
        service in the release's order that answers for the same application overrides an
        earlier one (it knows that application's kind better). Best effort otherwise."""


class ServiceBase:
    """What most services leave as is: no own checks, step environment, UIs or endpoints,
    and no applications to stop, watch or diagnose (work submitted to YARN is the yarn
    service's)."""

    requires: tuple[str, ...] = ()
    classifications: Mapping[str, Format] = {}
    uses_hadoop = False
    node_ports: Mapping[NodeRole, tuple[int, ...]] = {}

    def validate(self, spec: "ClusterSpec") -> list[FieldError]:
        return []

    def step_env(self, cluster: ClusterView) -> dict[str, str]:
        return {}

    def web_uis(self, cluster: ClusterView) -> dict[str, str]:
        return {}

    def endpoints(self, cluster: ClusterView) -> dict[str, str]:
        return {}

    def metrics_endpoints(self, cluster: ClusterView, timeout: float) -> list[MetricsEndpoint]:
        return []

    def application_usage(self, cluster: ClusterView, application_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        return {}

    def cancel_applications(self, cluster: ClusterView, application_ids: list[str]) -> None:
        return None

    def waiting_reason(self, cluster: ClusterView, work: StepWork, memo: WaitMemo, now: float) -> str | None:
        return None

    def failure_details(self, cluster: ClusterView, application_ids: list[str]) -> dict[str, str]:
        return {}

    def drain_status(self, cluster: ClusterView, timeout: float) -> dict[str, Drain]:
        return {}

    def scale_in_problem(self, cluster: ClusterView, props: dict[str, dict[str, str]], role: NodeRole,
                         leaving: list[str], timeout: float) -> str | None:
        return None

    def node_load(self, cluster: ClusterView, timeout: float) -> dict[str, tuple[int, int]]:
        return {}

    def busy_reason(self, cluster: ClusterView, timeout: float) -> str | None:
        return None

    def unhealthy_nodes(self, cluster: ClusterView, timeout: float) -> dict[str, str]:
        return {}

    def remembered(self, cluster: ClusterView, timeout: float) -> set[str]:
        return set()

    def metric_values(self, cluster: ClusterView, now: float, timeout: float) -> dict[Any, float]:
        return {}
