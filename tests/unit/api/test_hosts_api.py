"""Host selection through the API: the new spec fields pass, a refusal is a 422 naming the
group, and every node shows its host and size."""

from __future__ import annotations

from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.control.context import ControlPlane
from corral.store.models import Cluster
from tests.unit.helpers import count_rows, spec_dict
from tests.unit.hosts.pool import add_host, register_ssh_provider


@pytest.fixture(autouse=True)
def _ssh_provider(request: pytest.FixtureRequest) -> None:
    register_ssh_provider(request)


@pytest.fixture
def api(cp: ControlPlane) -> Iterator[TestClient]:
    with TestClient(create_app(cp, run_reconciler=False), base_url="http://testserver/api/v1") as client:
        yield client


def ssh_dict(**extra: object) -> dict[str, object]:
    return spec_dict(provider="ssh", services=["hdfs", "yarn", "spark"],
                     node_groups=[{"role": "MASTER", "hosts": ["m"]}, {"role": "CORE", "host_labels": {"rack": "r1"}, "count": 2}],
                     **extra)


def test_create_on_hosts_answers_with_each_nodes_host(cp: ControlPlane, api: TestClient) -> None:
    add_host(cp.store, "m", cores=8, memory=32768)
    add_host(cp.store, "w1", {"rack": "r1"}, cores=4, memory=16384)
    add_host(cp.store, "w2", {"rack": "r1"}, cores=4, memory=16384)
    resp = api.post("/clusters", json=ssh_dict())
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["provider"] == "ssh"
    assert sorted((g["role"], g["instance_type"], g["host_labels"], g["hosts"]) for g in body["node_groups"]) == [
        ("CORE", "host", {"rack": "r1"}, []), ("MASTER", "host", {}, ["m"])]
    assert sorted((n["role"], n["host"], n["vcpus"], n["memory_mib"]) for n in body["nodes"]) == [
        ("CORE", "w1", 4, 16384), ("CORE", "w2", 4, 16384), ("MASTER", "m", 8, 32768)]
    assert body["master_address"] == next(n["address"] for n in body["nodes"] if n["host"] == "m")


def test_local_nodes_show_their_instance_types_size_and_no_host(api: TestClient) -> None:
    body = api.post("/clusters", json=spec_dict()).json()
    assert body["provider"] == "local"
    assert sorted((n["role"], n["host"], n["vcpus"], n["memory_mib"]) for n in body["nodes"]) == [
        ("CORE", None, 2, 4096), ("CORE", None, 2, 4096), ("MASTER", None, 1, 2048)]


def test_too_few_hosts_is_a_422_naming_the_group(cp: ControlPlane, api: TestClient) -> None:
    add_host(cp.store, "m")
    add_host(cp.store, "w1", {"rack": "r1"})
    resp = api.post("/clusters", json=ssh_dict())
    assert resp.status_code == 422
    assert resp.json()["detail"] == [{"loc": ["body", "node_groups", 1], "type": "value_error",
                                      "msg": "CORE needs 2 READY hosts with label rack=r1; 1 matches: w1"}]
    assert count_rows(cp.store, Cluster) == 0


def test_host_fields_on_local_are_a_422_naming_the_field(api: TestClient) -> None:
    resp = api.post("/clusters", json=spec_dict(node_groups=[{"role": "MASTER", "hosts": ["m"]}, {"role": "CORE"}]))
    assert resp.status_code == 422
    assert resp.json()["detail"] == [{"loc": ["body", "node_groups", 0, "hosts"], "type": "value_error",
                                      "msg": "only with provider: ssh"}]


def test_a_hosts_size_in_the_api_is_the_one_selection_uses(cp: ControlPlane, api: TestClient) -> None:
    from corral.hosts.selection import HostInfo
    from tests.unit.hosts.pool import host_row

    add_host(cp.store, "odd", cores=0, memory=16384, memory_mb_override=6144)
    body = api.get("/hosts/odd").json()
    info = HostInfo.of(host_row(cp.store, "odd"))
    assert (body["cores"], body["memory_mb"]) == (info.cores, info.memory_mib) == (None, 6144)


def test_remove_with_force_frees_a_host_whose_cluster_ended_and_is_audited_as_such(
        cp: ControlPlane, api: TestClient) -> None:
    from sqlalchemy import select, update

    from corral.store.models import AuditRecord, Node

    add_host(cp.store, "m", cores=8, memory=32768)
    add_host(cp.store, "w1", {"rack": "r1"})
    add_host(cp.store, "w2", {"rack": "r1"})
    cluster = api.post("/clusters", json=ssh_dict()).json()
    live = api.delete("/hosts/w1", params={"force": "true"})
    assert live.status_code == 409 and f"of cluster {cluster['id']} (STARTING)" in live.json()["detail"]
    assert "--force removes a host only once its node's cluster has ended" in live.json()["detail"]
    bad = api.delete("/hosts/w1", params={"force": "maybe"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "force"]
    # The cluster ended while w1 did not answer: its node keeps the reservation, to be cleaned.
    with cp.store.session() as s:
        s.execute(update(Cluster).where(Cluster.id == cluster["id"]).values(status="TERMINATED_WITH_ERRORS"))
        s.execute(update(Node).where(Node.cluster_id == cluster["id"]).values(status="TERMINATED"))
    refused = api.delete("/hosts/w1")
    assert refused.status_code == 409 and "`corral host remove --force w1`" in refused.json()["detail"]
    forced = api.delete("/hosts/w1", params={"force": "true"})
    assert forced.status_code == 200, forced.text
    body = forced.json()
    assert (body["status"], body["node_id"], body["cluster_id"]) == ("REMOVED", None, None)
    assert body["status_reason"].startswith("removed by force while reserved by node ")
    assert "CORRAL_NODE_ID=" in body["status_reason"] and f"/nodes/{cluster['id']}/" in body["status_reason"]
    assert api.get("/hosts/m").json()["status"] == "ALLOCATED"  # the others wait for their cleanup
    with cp.store.session() as s:
        rows = [(r.action, r.target, r.status_code) for r in s.scalars(select(AuditRecord).order_by(AuditRecord.id))
                if r.action.startswith("host.")]
    assert rows == [("host.force_remove", "w1", 409), ("host.remove", "w1", 422), ("host.remove", "w1", 409),
                    ("host.force_remove", "w1", 200)]
