"""Each service's ``node_ports`` (what the host check wants free) holds every port its
daemons are configured to bind, for every role and cluster shape."""

from __future__ import annotations

import pytest

from corral.control.views import effective_properties
from corral.domain.states import NodeRole
from corral.hosts.check import required_ports
from corral.services.base import ClusterView, NodeView
from corral.services.registry import SERVICES


def _view(services: tuple[str, ...]) -> ClusterView:
    roles = (NodeRole.MASTER, NodeRole.CORE, NodeRole.TASK)
    nodes = tuple(NodeView(node_id=f"n-{i}", role=r, address=f"127.7.0.{i + 2}", directory=f"/nodes/n-{i}",
                           instance_type="local.medium") for i, r in enumerate(roles))
    return ClusterView(cluster_id="c-ports", release="corral-1.0", services=services, nodes=nodes)


@pytest.mark.parametrize("services", [("hdfs", "yarn", "mapreduce", "spark", "hive"), ("spark",), ("hdfs", "spark")])
def test_every_daemon_port_is_declared(services: tuple[str, ...]) -> None:
    v = _view(services)
    props, _ = effective_properties(v)
    for name in services:
        service = SERVICES[name]
        for node in v.nodes:
            bound = {p for c in service.components(v, node, props) for p in c.ports}
            assert bound <= set(service.node_ports.get(node.role, ())), (name, node.role, bound)


def test_the_check_wants_the_union_over_roles() -> None:
    ports = required_ports()
    for port in (8020, 9870, 9864, 9866, 9867, 8030, 8031, 8032, 8033, 8088, 8040, 8041, 8042, 20888, 10020, 19888,
                 18080, 7077, 8080, 8081, 9083, 10000):
        assert port in ports
    assert ports[8088] == ["yarn on MASTER"]
    assert ports[8042] == ["yarn on CORE", "yarn on TASK"]
