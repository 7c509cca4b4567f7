"""The step ``timeout`` over REST: steps, steps inside a cluster spec, data transfers.
Bad values are 422 naming the field and queue nothing; a good one is stored and shown
with the step's failure code and application ids."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.control import clusters
from corral.control.context import ControlPlane
from corral.domain.spec import MAX_STEP_TIMEOUT_SECONDS
from corral.store.models import Step
from tests.unit.helpers import count_rows, make_spec, spec_dict

BAD_TIMEOUTS = [0, -5, MAX_STEP_TIMEOUT_SECONDS + 1, "60", 1.5, True, None]


@pytest.fixture
def api(cp: ControlPlane) -> Iterator[TestClient]:
    with TestClient(create_app(cp, run_reconciler=False)) as client:
        yield client


@pytest.fixture
def cluster_id(cp: ControlPlane) -> str:
    cluster, _ = clusters.create_cluster(cp, make_spec(services=["hdfs", "yarn", "mapreduce", "spark"]))
    return cluster.id


def locs(resp: Any) -> list[list[Any]]:
    assert resp.status_code == 422, resp.text
    return [d["loc"] for d in resp.json()["detail"]]


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS[:-1])
def test_a_bad_step_timeout_is_422_naming_it(api: TestClient, cp: ControlPlane, cluster_id: str, timeout: Any) -> None:
    resp = api.post(f"/api/v1/clusters/{cluster_id}/steps",
                    json={"steps": [{"type": "SHELL", "args": ["true"]}, {"type": "SHELL", "args": ["true"], "timeout": timeout}]})
    assert locs(resp) == [["body", "steps", 1, "timeout"]]
    assert count_rows(cp.store, Step) == 0


@pytest.mark.parametrize("timeout", BAD_TIMEOUTS[:-1])
def test_a_bad_timeout_in_a_cluster_spec_or_a_transfer_is_422_naming_it(api: TestClient, cp: ControlPlane,
                                                                        cluster_id: str, timeout: Any) -> None:
    spec = spec_dict(steps=[{"type": "SHELL", "args": ["true"], "timeout": timeout}])
    assert locs(api.post("/api/v1/clusters", json=spec)) == [["body", "steps", 0, "timeout"]]
    body = {"from": "s3a://b/in/", "to": "/in", "timeout": timeout}
    assert locs(api.post(f"/api/v1/clusters/{cluster_id}/data/imports", json=body)) == [["body", "timeout"]]
    assert count_rows(cp.store, Step) == 0


def test_a_timeout_is_stored_and_shown(api: TestClient, cp: ControlPlane, cluster_id: str) -> None:
    resp = api.post(f"/api/v1/clusters/{cluster_id}/steps",
                    json={"steps": [{"type": "SHELL", "args": ["true"], "timeout": 90}, {"type": "SHELL", "args": ["true"]}]})
    assert resp.status_code == 201, resp.text
    first, second = resp.json()["steps"]
    assert (first["timeout"], second["timeout"]) == (90, None)
    assert first["failure_code"] is None and first["spark_application_ids"] == []
    shown = api.get(f"/api/v1/clusters/{cluster_id}/steps/{first['id']}").json()
    assert shown["timeout"] == 90
    resp = api.post(f"/api/v1/clusters/{cluster_id}/data/imports",
                    json={"from": "jdbc:postgresql://db.example:5432/shop", "table": "sales", "to": "/sales", "user": "etl",
                          "timeout": MAX_STEP_TIMEOUT_SECONDS})
    assert resp.status_code == 201, resp.text
    assert resp.json()["timeout"] == MAX_STEP_TIMEOUT_SECONDS
    spec = spec_dict(steps=[{"type": "SHELL", "args": ["true"], "timeout": 1}])
    created = api.post("/api/v1/clusters", json=spec)
    assert created.status_code in (200, 201), created.text
    steps = api.get(f"/api/v1/clusters/{created.json()['id']}/steps").json()["steps"]
    assert [s["timeout"] for s in steps] == [1]
