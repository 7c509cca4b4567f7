"""The local provider's address leases: lowest free first, and never an address a released
node's DataNode may still be remembered by (``ClusterView.departed``) until it is forgotten."""

from __future__ import annotations

from sqlalchemy import select

from corral.control.context import ControlPlane
from corral.providers.local import LocalProvider
from corral.store.models import Cluster, Node
from tests.unit.control.test_groups import _up_cluster


def test_an_address_a_namenode_may_remember_is_not_handed_out_again(cp: ControlPlane) -> None:
    local = LocalProvider(cp.settings, cp.store)
    first = local._lease_address("n-a")
    assert local._lease_address("n-a") == first  # a node keeps its lease
    cid = _up_cluster(cp)
    with cp.store.session() as s:
        node = s.scalars(select(Node).where(Node.cluster_id == cid, Node.role == "CORE")).first()
        assert node is not None
        node.status, node.decommission_state, node.address = "TERMINATED", "DECOMMISSIONED", first
    local._release_address("n-a")
    second = local._lease_address("n-b")
    assert second != first
    with cp.store.session() as s:
        row = s.get(Node, node.id)
        assert row is not None
        row.provider_data = {"forgotten_at": 1.0}
    assert local._lease_address("n-c") == first  # forgotten: free again
    local._release_address("n-c")
    with cp.store.session() as s:
        row = s.get(Node, node.id)
        assert row is not None
        row.provider_data = {}
        cluster = s.get(Cluster, cid)
        assert cluster is not None
        cluster.status = "TERMINATED"
    assert local._lease_address("n-d") == first  # its cluster has ended: nobody remembers it
