"""Build the service-facing view of a cluster and its effective configuration."""

from __future__ import annotations

import dataclasses

from corral.domain.catalog import HOST_SIZED, InstanceType, host_instance_type
from corral.domain.states import DecommissionState, NodeRole, NodeState
from corral.services.base import ClusterView, NodeView
from corral.services import registry
from corral.store.models import Cluster, Node, NodeGroup

Properties = dict[str, dict[str, str]]


def node_size(node: Node) -> InstanceType | None:
    """The size kept in the node's row at create (ssh: ``host:<name>`` when sized by its
    host, else its instance type's), or None (local: the catalog's ``instance_type``)."""
    if node.vcpus is None or node.memory_mib is None:
        return None
    if node.instance_type == HOST_SIZED:
        return host_instance_type(node.host_name or node.host_id or node.id, node.vcpus, node.memory_mib)
    return InstanceType(node.instance_type, vcpus=node.vcpus, memory_mib=node.memory_mib)


def cluster_view(cluster: Cluster) -> ClusterView:
    """Nodes that have an address and are not gone; the MASTER is always among them once
    provisioned."""
    nodes = tuple(
        NodeView(node_id=n.id, role=NodeRole(n.role), address=n.address, directory=n.directory or "",
                 instance_type=n.instance_type, size=node_size(n), decommission=n.decommission_state,
                 decommission_deadline=n.decommission_deadline_at)
        for n in cluster.nodes
        if n.address and n.status != NodeState.TERMINATED.value
    )
    user: Properties = {}
    for conf in cluster.configurations:
        user.setdefault(conf["classification"], {}).update(conf.get("properties", {}))
    departed = tuple(
        NodeView(node_id=n.id, role=NodeRole(n.role), address=n.address, directory=n.directory or "",
                 instance_type=n.instance_type, size=node_size(n), decommission=n.decommission_state)
        for n in cluster.nodes if departed_unforgotten(n))
    return ClusterView(cluster_id=cluster.id, release=cluster.release, services=tuple(cluster.services),
                       nodes=nodes, user_configurations=user, object_storage=cluster.object_storage,
                       metastore=cluster.metastore, log_uri=cluster.log_uri,
                       derived_configurations=dict(cluster.derived_properties or {}), departed=departed,
                       monitoring=cluster.monitoring is not False)


def departed_unforgotten(node: Node) -> bool:
    """A node released after a graceful decommission that some daemon may still count as
    live (``ClusterView.departed``); ``forgotten_at`` is set once none does."""
    return (node.status == NodeState.TERMINATED.value and node.decommission_state == DecommissionState.DECOMMISSIONED.value
            and bool(node.address) and not (node.provider_data or {}).get("forgotten_at"))


def in_service_view(cluster: Cluster) -> ClusterView:
    """Like ``cluster_view``, with only the nodes that should be serving: the MASTER, and
    every other node that is RUNNING and not leaving. What the services' health checks of
    a running cluster expect to see, while nodes join or leave."""
    view = cluster_view(cluster)
    running = {n.id for n in cluster.nodes if n.status == NodeState.RUNNING.value}
    nodes = tuple(n for n in view.nodes if n.role is NodeRole.MASTER or (n.node_id in running and not n.leaving))
    return dataclasses.replace(view, nodes=nodes)


def shape_view(cluster: Cluster) -> ClusterView:
    """Like ``cluster_view``, with every node not gone, addressed or not yet: what sizes
    and placement checks need (they do not depend on addresses)."""
    view = cluster_view(cluster)
    nodes = tuple(
        NodeView(node_id=n.id, role=NodeRole(n.role), address=n.address or "0.0.0.0", directory=n.directory or "",
                 instance_type=n.instance_type, size=node_size(n))
        for n in cluster.nodes
        if n.status != NodeState.TERMINATED.value
    )
    return ClusterView(cluster_id=view.cluster_id, release=view.release, services=view.services, nodes=nodes,
                       user_configurations=view.user_configurations, object_storage=view.object_storage,
                       metastore=view.metastore, log_uri=view.log_uri,
                       derived_configurations=view.derived_configurations, monitoring=view.monitoring)


def effective_properties(view: ClusterView) -> tuple[Properties, Properties]:
    """(effective properties, the user-set subset) per classification: user over defaults."""
    return registry.effective_properties(view), view.user_configurations


def has_master(view: ClusterView) -> bool:
    return any(n.role is NodeRole.MASTER for n in view.nodes)


_ROLE_ORDER = {"MASTER": 0, "CORE": 1, "TASK": 2}


def groups_in_order(cluster: Cluster) -> list[NodeGroup]:
    """The cluster's node groups as users read them: MASTER, CORE, then TASK groups by name."""
    return sorted(cluster.groups, key=lambda g: (_ROLE_ORDER.get(g.role, 3), g.name))
