"""Host rows and snapshots for the selection tests (what the inventory would have registered)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from sqlalchemy import select, update

from corral.hosts.selection import HostInfo
from corral.store.db import Store
from corral.store.models import Cluster, Host, Node
from tests.unit.helpers import FakeProvider, make_spec

if TYPE_CHECKING:
    from corral.control.context import ControlPlane


class FakeSshProvider(FakeProvider):
    """Stands in for the ssh provider (another module's): creates here only write rows."""

    name = "ssh"


def register_ssh_provider(request: pytest.FixtureRequest) -> None:
    """Give the test's control plane (``cp`` or ``cp_any``) an ``ssh`` provider: a create
    on a control plane without one is refused before selection."""
    for name in ("cp", "cp_any"):
        if name in request.fixturenames:
            request.getfixturevalue(name).providers.setdefault("ssh", FakeSshProvider())


def info(name: str, labels: dict[str, str] | None = None, cores: int | None = 4, memory: int | None = 8192,
         status: str = "READY", node_id: str | None = None, cluster_id: str | None = None,
         reason: str | None = None) -> HostInfo:
    """A host as selection sees it (4 vcpus, 8 GiB unless told)."""
    return HostInfo(id=f"hst-{name}", name=name, address=f"198.18.1.{sum(map(ord, name)) % 250 + 1}", status=status,
                    labels=labels or {}, cores=cores, memory_mib=memory, node_id=node_id, cluster_id=cluster_id,
                    status_reason=reason)


def add_host(store: Store, name: str, labels: dict[str, str] | None = None, cores: int = 4, memory: int = 8192,
             status: str = "READY", host_id: str | None = None, address: str | None = None,
             **columns: Any) -> str:
    """Register ``name`` as the host check would leave it (``facts``: cores, memory_mb); its id."""
    now = time.time()
    ident = host_id or f"hst-{name}"
    with store.session() as s:
        s.add(Host(id=ident, name=name, address=address or f"198.18.1.{sum(map(ord, name)) % 250 + 1}", port=22,
                   user="corral", labels=labels or {}, facts={"cores": cores, "memory_mb": memory}, checks=[],
                   status=status, target="READY", created_at=now, status_changed_at=now, **columns))
    return ident


def host_row(store: Store, name: str) -> Host:
    with store.session() as s:
        host = s.query(Host).filter(Host.name == name).one()
        s.expunge(host)
        return host


def hold(cp: "ControlPlane", host_id: str, cluster_status: str, node_status: str,
         host_status: str = "ALLOCATED") -> tuple[str, str]:
    """Reserve the host for a node of a new cluster, the cluster and node in the given
    states (e.g. TERMINATED_WITH_ERRORS and TERMINATED: a host that did not answer when its
    node was terminated); (cluster id, node id)."""
    from corral.control import clusters  # noqa: PLC0415 - the selection tests need none of it

    cluster, _ = clusters.create_cluster(cp, make_spec())
    with cp.store.session() as s:
        s.execute(update(Cluster).where(Cluster.id == cluster.id).values(status=cluster_status))
        node = s.scalars(select(Node).where(Node.cluster_id == cluster.id)).first()
        assert node is not None
        node.status, node_id = node_status, node.id
        s.execute(update(Host).where(Host.id == host_id).values(status=host_status, node_id=node_id,
                                                                 cluster_id=cluster.id))
    return cluster.id, node_id
