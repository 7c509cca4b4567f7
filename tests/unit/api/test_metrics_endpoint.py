"""``GET /metrics`` (``corral.control.telemetry``): the store's counts as the store has
them, request latency by route template, the nodes' newest measurements with their roles,
and the viewer role when auth is on."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from corral.agent.protocol import DiskUsage, NodeMetrics
from corral.api.app import create_app
from corral.control import tokens
from corral.control.context import ControlPlane
from corral.domain.states import ClusterState, NodeState, StepState
from corral.store.models import AuditRecord, Cluster, Node, Step
from tests.unit.helpers import count_rows, spec_dict

NOW = 1_900_000_000.0  # the telemetry's clock in these tests, epoch seconds


@pytest.fixture
def api(cp: ControlPlane) -> Iterator[TestClient]:
    cp.telemetry.clock = lambda: NOW
    with TestClient(create_app(cp, run_reconciler=False)) as client:
        yield client


def scrape(api: TestClient, **headers: str) -> dict[str, list[Sample]]:
    """Sample name -> its samples, parsed as Prometheus parses them."""
    resp = api.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def by_label(samples: list[Sample], label: str) -> dict[str, float]:
    return {s.labels[label]: s.value for s in samples}


def create(api: TestClient, name: str, steps: int) -> str:
    resp = api.post("/api/v1/clusters", json=spec_dict(name=name, steps=[{"type": "SHELL", "args": ["true"]}] * steps))
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def two_clusters(cp: ControlPlane, api: TestClient) -> tuple[str, str]:
    """One up (WAITING, nodes RUNNING, steps ended in several ways) and one terminated."""
    up, ended = create(api, "up", 4), create(api, "ended", 1)
    with cp.store.session() as s:
        s.get(Cluster, up).status = ClusterState.WAITING.value  # type: ignore[union-attr]
        s.get(Cluster, ended).status = ClusterState.TERMINATED.value  # type: ignore[union-attr]
        for node in s.query(Node):
            node.status = (NodeState.RUNNING if node.cluster_id == up else NodeState.TERMINATED).value
        steps = s.query(Step).filter(Step.cluster_id == up).order_by(Step.seq).all()
        for step, state, started, ended_at in zip(steps, [StepState.COMPLETED, StepState.COMPLETED, StepState.FAILED,
                                                          StepState.RUNNING],
                                                  [100.0, 200.0, 300.0, 400.0], [112.5, 203.0, 301.0, None]):
            step.status, step.started_at, step.ended_at = state.value, started, ended_at
    return up, ended


def test_cluster_node_and_step_counts_are_the_stores(cp_any: ControlPlane) -> None:
    cp = cp_any  # SQLite and PostgreSQL: the collector's GROUP BYs and CASE run on both
    cp.telemetry.clock = lambda: NOW
    with TestClient(create_app(cp, run_reconciler=False)) as api:
        up, ended = two_clusters(cp, api)
        got = scrape(api)
    with cp.store.session() as s:
        clusters = Counter(c.status for c in s.query(Cluster))
        live = Counter(n.status for n in s.query(Node) if n.cluster_id == up)
        steps = Counter(st.status for st in s.query(Step))
        finished = [st for st in s.query(Step) if StepState(st.status).is_terminal() and st.ended_at is not None]
    assert by_label(got["corral_clusters"], "state") == {state.value: clusters[state.value] for state in ClusterState}
    assert clusters[ClusterState.WAITING.value] == clusters[ClusterState.TERMINATED.value] == 1
    # The terminated cluster's nodes are not counted; every status is there, 0 when none.
    assert by_label(got["corral_nodes"], "status") == {state.value: live[state.value] for state in NodeState}
    assert sum(by_label(got["corral_nodes"], "status").values()) == count_rows(cp.store, Node, cluster_id=up) == 3
    assert by_label(got["corral_steps"], "state") == {state.value: steps[state.value] for state in StepState}
    # Durations of finished steps only (the RUNNING one has none yet), by type and state.
    sums = {(x.labels["type"], x.labels["state"]): x.value for x in got["corral_step_duration_seconds_sum"]}
    counts = {(x.labels["type"], x.labels["state"]): x.value for x in got["corral_step_duration_seconds_count"]}
    expected: dict[tuple[str, str], list[float]] = {}
    for st in finished:
        expected.setdefault((st.type, st.status), []).append(st.ended_at - st.started_at)  # type: ignore[operator]
    assert sums == pytest.approx({k: sum(v) for k, v in expected.items()})
    assert counts == {k: len(v) for k, v in expected.items()}
    assert sums[("SHELL", "COMPLETED")] == pytest.approx(15.5) and counts[("SHELL", "FAILED")] == 1


def test_a_request_is_timed_under_its_route_template(cp: ControlPlane, api: TestClient) -> None:
    cid = create(api, "one", 0)
    assert api.get(f"/api/v1/clusters/{cid}").status_code == 200
    assert api.get("/api/v1/clusters/c-missing").status_code == 404
    assert api.post("/agent/v1/nodes/n-x/report", json={}, headers={"Authorization": "Bearer x"}).status_code >= 400
    assert api.get("/no/such/path").status_code == 404
    got = scrape(api)
    counts = {(x.labels["method"], x.labels["route"], x.labels["status"]): x.value
              for x in got["corral_api_request_duration_seconds_count"]}
    assert counts[("GET", "/api/v1/clusters/{cluster_id}", "2xx")] == 1
    assert counts[("GET", "/api/v1/clusters/{cluster_id}", "4xx")] == 1
    assert counts[("POST", "/api/v1/clusters", "2xx")] == 1
    assert counts[("POST", "/agent/v1/nodes/{node_id}/report", "4xx")] == 1
    assert counts[("GET", "unmatched", "4xx")] == 1
    assert not [route for _, route, _ in counts if cid in route or "c-missing" in route or "n-x" in route]
    buckets = [x for x in got["corral_api_request_duration_seconds_bucket"]
               if x.labels["route"] == "/api/v1/clusters/{cluster_id}" and x.labels["status"] == "2xx"]
    assert "0.1" in {x.labels["le"] for x in buckets}  # the p99 < 100 ms goal is a bucket boundary
    assert max(x.value for x in buckets) == 1  # the +Inf bucket holds it
    # The scrape itself is timed too: the next scrape shows the previous one.
    again = scrape(api)
    assert {x.labels["route"]: x.value for x in again["corral_api_request_duration_seconds_count"]}["/metrics"] == 1


def test_the_boards_readings_are_node_gauges_with_store_roles_and_no_unmeasured_fields(cp: ControlPlane,
                                                                                       api: TestClient) -> None:
    up, ended = two_clusters(cp, api)
    with cp.store.session() as s:
        core = s.query(Node).filter(Node.cluster_id == up, Node.role == "CORE").order_by(Node.id).first()
        master = s.query(Node).filter(Node.cluster_id == up, Node.role == "MASTER").one()
        gone = s.query(Node).filter(Node.cluster_id == ended).first()
        assert core is not None and gone is not None
        core_id, master_id, gone_id = core.id, master.id, gone.id
    host = NodeMetrics(at=NOW - 3, scope="host", cpu_cores_used=1.5, vcpus=4, memory_used_bytes=3 << 30,
                       memory_total_bytes=8 << 30, load1=0.75, net_rx_bytes_per_second=1000.0,
                       net_tx_bytes_per_second=250.0,
                       disks=[DiskUsage(path="/data/1", used_bytes=10, free_bytes=90, total_bytes=100),
                              DiskUsage(path="/data/2", used_bytes=20, free_bytes=80, total_bytes=100)])
    first = NodeMetrics(at=NOW - 1, scope="node", vcpus=2, memory_used_bytes=123, memory_total_bytes=456)  # no rates yet
    cp.node_metrics.put(up, core_id, host, received_at=NOW - 2)
    cp.node_metrics.put(up, master_id, first, received_at=NOW - 5)
    cp.node_metrics.put(ended, gone_id, first, received_at=NOW - 1)  # a terminated cluster's: not shown
    got = scrape(api)
    core_labels = {"cluster_id": up, "node_id": core_id, "role": "CORE"}
    master_labels = {"cluster_id": up, "node_id": master_id, "role": "MASTER"}

    def values(name: str) -> list[tuple[dict[str, str], float]]:
        return sorted(((x.labels, x.value) for x in got.get(name, [])), key=lambda p: sorted(p[0].items()))

    assert values("corral_node_cpu_cores_used") == [(core_labels, 1.5)]  # the master's is None: absent
    assert values("corral_node_load1") == [(core_labels, 0.75)]
    assert values("corral_node_network_receive_bytes_per_second") == [(core_labels, 1000.0)]
    assert values("corral_node_network_transmit_bytes_per_second") == [(core_labels, 250.0)]
    assert values("corral_node_vcpus") == sorted([(core_labels, 4.0), (master_labels, 2.0)],
                                                 key=lambda p: sorted(p[0].items()))
    assert {x.labels["node_id"]: x.value for x in got["corral_node_memory_used_bytes"]} == {core_id: 3 << 30,
                                                                                            master_id: 123}
    assert {x.labels["node_id"]: x.value for x in got["corral_node_memory_total_bytes"]} == {core_id: 8 << 30,
                                                                                             master_id: 456}
    assert values("corral_node_disk_used_bytes") == [({**core_labels, "path": "/data/1"}, 10.0),
                                                     ({**core_labels, "path": "/data/2"}, 20.0)]
    assert values("corral_node_disk_free_bytes") == [({**core_labels, "path": "/data/1"}, 90.0),
                                                     ({**core_labels, "path": "/data/2"}, 80.0)]
    assert {x.labels["node_id"]: x.value for x in got["corral_node_metrics_age_seconds"]} == {core_id: 2.0,
                                                                                              master_id: 5.0}
    everything = [x for samples in got.values() for x in samples]
    assert not [x for x in everything if x.labels.get("node_id") == gone_id or x.labels.get("cluster_id") == ended]


def test_agent_report_age_is_per_live_node_that_has_reported(cp: ControlPlane, api: TestClient) -> None:
    up, ended = two_clusters(cp, api)
    with cp.store.session() as s:
        nodes = s.query(Node).order_by(Node.id).all()
        ages = {}
        for i, node in enumerate(nodes):
            node.last_heartbeat = NOW - 2.0 * (i + 1)
            if node.cluster_id == up:
                ages[node.id] = (node.role, 2.0 * (i + 1))
        silent, leaving, lost = (n for n in nodes if n.cluster_id == up)
        silent.last_heartbeat = None  # never reported: no age
        leaving.status = NodeState.TERMINATING.value  # its agent is being stopped: silence is expected
        lost.status = NodeState.LOST.value  # silent and unreachable: its age is what an alert reads
        del ages[silent.id], ages[leaving.id]
    got = {x.labels["node_id"]: (x.labels["role"], x.labels["cluster_id"], x.value)
           for x in scrape(api)["corral_agent_report_age_seconds"]}
    assert got == {node_id: (role, up, age) for node_id, (role, age) in ages.items()}
    assert list(got) == [lost.id]


@pytest.fixture
def secured(cp: ControlPlane) -> Iterator[tuple[TestClient, dict[str, str]]]:
    cp.settings = dataclasses.replace(cp.settings, auth="required")
    secrets = {role: tokens.create_token(cp.store, role, role, created_by=None)[1] for role in ("admin", "viewer")}
    with TestClient(create_app(cp, run_reconciler=False)) as client:
        yield client, secrets


def test_with_auth_on_metrics_need_a_viewer_token_and_write_no_audit_row(cp: ControlPlane,
                                                                         secured: tuple[TestClient, dict[str, str]]) -> None:
    api, secrets = secured
    refused = api.get("/metrics")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert "corral_clusters" not in refused.text
    assert api.get("/metrics", headers={"Authorization": "Bearer crl_not-a-token"}).status_code == 401
    assert api.get("/api/v1/clusters/c-x").status_code == 401  # refused before routing, still named by template
    got = scrape(api, Authorization=f"Bearer {secrets['viewer']}")
    assert by_label(got["corral_clusters"], "state")[ClusterState.STARTING.value] == 0
    counts = {(x.labels["route"], x.labels["status"]): x.value for x in got["corral_api_request_duration_seconds_count"]}
    assert counts[("/metrics", "4xx")] == 2 and counts[("/api/v1/clusters/{cluster_id}", "4xx")] == 1
    assert count_rows(cp.store, AuditRecord) == 0  # reads are not audited
