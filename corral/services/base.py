"""The service plug-in contract and the cluster view services render from.

A service declares its components and where they are placed (by node group), the config
files it writes, default properties derived from instance types, ports, start commands
and health checks. The orchestrator knows nothing service-specific: it asks every service
of a cluster for these and hands the result to the node agents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from corral.agent.protocol import ComponentSpec, FileSpec
from corral.domain.catalog import INSTANCE_TYPES, InstanceType
from corral.domain.states import NodeRole
from corral.errors import FieldError

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

    @property
    def itype(self) -> InstanceType:
        return INSTANCE_TYPES[self.instance_type]

    def path(self, *parts: str) -> str:
        return "/".join((self.directory.rstrip("/"), *parts))

    @property
    def tmp_dir(self) -> str:
        """Where every process of the node keeps temporary files (TMPDIR, java.io.tmpdir):
        inside the node's directory, so they go with the node instead of piling up in the
        host's /tmp."""
        return self.path("tmp")


@dataclass(frozen=True)
class ClusterView:
    """What a service sees of a cluster: its nodes (those with an address) and settings."""

    cluster_id: str
    release: str
    services: tuple[str, ...]
    nodes: tuple[NodeView, ...]
    user_configurations: dict[str, dict[str, str]] = field(default_factory=dict)
    # The spec's object store and external metastore without their secrets: services
    # write secrets.placeholder(...) where the key or password goes.
    object_storage: dict[str, Any] | None = None
    metastore: dict[str, Any] | None = None
    log_uri: str | None = None

    @property
    def master(self) -> NodeView:
        return next(n for n in self.nodes if n.role is NodeRole.MASTER)

    def with_roles(self, *roles: NodeRole) -> list[NodeView]:
        return [n for n in self.nodes if n.role in roles]


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


class Service(Protocol):
    name: str
    requires: tuple[str, ...]  # other services this one needs in the same cluster
    classifications: tuple[str, ...]  # configuration classifications it owns
    uses_hadoop: bool  # its nodes need the release's Hadoop runtime

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

    def cancel_applications(self, cluster: ClusterView, application_ids: list[str]) -> None:
        """Stop work a cancelled step submitted to this service (e.g. YARN applications);
        idempotent, best effort. Services that run no applications do nothing."""


class ServiceBase:
    """What most services leave as is: no own checks, step environment, UIs or endpoints,
    and no applications to stop (work submitted to YARN is stopped by the yarn service)."""

    requires: tuple[str, ...] = ()
    classifications: tuple[str, ...] = ()
    uses_hadoop = False

    def validate(self, spec: "ClusterSpec") -> list[FieldError]:
        return []

    def step_env(self, cluster: ClusterView) -> dict[str, str]:
        return {}

    def web_uis(self, cluster: ClusterView) -> dict[str, str]:
        return {}

    def endpoints(self, cluster: ClusterView) -> dict[str, str]:
        return {}

    def cancel_applications(self, cluster: ClusterView, application_ids: list[str]) -> None:
        return None
