"""GET /api/v1/clusters/{id}/metrics over a real stored history: exact points, step
averages, node series, and bad parameters refused naming the parameter."""

from __future__ import annotations

import time
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.control.context import ControlPlane
from corral.metrics.samples import Metric, NodeMetric, Sample
from tests.unit.control.test_groups import _up_cluster


@pytest.fixture
def api(cp: ControlPlane) -> Iterator[TestClient]:
    with TestClient(create_app(cp, run_reconciler=False), base_url="http://testserver/api/v1") as client:
        yield client


def _fill(cp: ControlPlane, cid: str, now: float) -> list[float]:
    times = [now - 60 + 10 * i for i in range(6)]
    for i, at in enumerate(times):
        cp.history.append(cid, Sample(at, {Metric.APPS_RUNNING: float(i), Metric.MEMORY_ALLOCATED_MB: 1024.0 * i},
                                      {"n-one": {NodeMetric.CPU_UTILIZATION: 10.0 * i},
                                       "n-two": {NodeMetric.CPU_UTILIZATION: 5.0}}))
    return times


def test_points_series_and_units(cp: ControlPlane, api: TestClient) -> None:
    cid = _up_cluster(cp)
    now = time.time()
    times = _fill(cp, cid, now)
    body = api.get(f"/clusters/{cid}/metrics", params={"names": "AppsRunning,CPUUtilization", "start": "5m"}).json()
    by = {(s["metric"], s["node_id"]): s for s in body["series"]}
    assert set(by) == {("AppsRunning", None), ("CPUUtilization", "n-one"), ("CPUUtilization", "n-two")}
    assert by[("AppsRunning", None)]["points"] == [[t, float(i)] for i, t in enumerate(times)]
    assert by[("AppsRunning", None)]["unit"] == "count" and by[("CPUUtilization", "n-one")]["unit"] == "percent"
    only = api.get(f"/clusters/{cid}/metrics", params={"names": "CPUUtilization", "node_id": "n-two"}).json()
    assert [(s["metric"], s["node_id"]) for s in only["series"]] == [("CPUUtilization", "n-two")]
    everything = api.get(f"/clusters/{cid}/metrics").json()
    assert {s["metric"] for s in everything["series"]} == {"AppsRunning", "MemoryAllocatedMB", "CPUUtilization"}
    start = times[0] - times[0] % 30
    averaged = api.get(f"/clusters/{cid}/metrics", params={"names": "AppsRunning", "start": str(start),
                                                           "end": str(times[-1]), "step": "30s"}).json()
    points = averaged["series"][0]["points"]
    assert averaged["step"] == 30 and sum(len([t for t in times if b <= t < b + 30]) for b, _ in points) == 6
    for bucket, mean in points:
        inside = [float(i) for i, t in enumerate(times) if bucket <= t < bucket + 30]
        assert mean == pytest.approx(sum(inside) / len(inside))


@pytest.mark.parametrize("params, field, words", [
    ({"names": "AppsRunning,Nope"}, "names", "unknown metric 'Nope'"),
    ({"start": "yesterday"}, "start", "not epoch seconds or a duration"),
    ({"start": "nan"}, "start", "not a time"),
    ({"end": "inf"}, "end", "not a time"),
    ({"start": "10", "end": "5"}, "start", "is after end"),
    ({"step": "0"}, "step", "must be positive"),
    ({"start": "14d", "step": "1"}, "step", "at most 11000"),
])
def test_bad_parameters_are_refused_naming_the_parameter(cp: ControlPlane, api: TestClient, params: dict[str, str],
                                                         field: str, words: str) -> None:
    cid = _up_cluster(cp)
    response = api.get(f"/clusters/{cid}/metrics", params=params)
    assert response.status_code == 422
    (detail,) = [d for d in response.json()["detail"] if d["loc"] == ["query", field]]
    assert words in detail["msg"]


def test_an_unknown_cluster_is_404(api: TestClient) -> None:
    assert api.get("/clusters/c-nope/metrics").status_code == 404
