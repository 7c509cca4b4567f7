"""/api/v1/clusters/{id}/node-groups over HTTP: a group read by name, refusals as 4xx
naming the field (and writing nothing), a resize answered 202 with the new target."""

from __future__ import annotations

from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.control.context import ControlPlane
from tests.unit.control.test_groups import _snapshot, _up_cluster


@pytest.fixture
def api(cp: ControlPlane) -> Iterator[TestClient]:
    with TestClient(create_app(cp, run_reconciler=False), base_url="http://testserver/api/v1") as client:
        yield client


def test_a_group_is_read_by_name_and_an_unknown_one_is_named_with_the_known(cp: ControlPlane, api: TestClient) -> None:
    cid = _up_cluster(cp)
    core = api.get(f"/clusters/{cid}/node-groups/CORE")
    assert core.status_code == 200, core.text
    assert (core.json()["name"], core.json()["role"], core.json()["requested_count"]) == ("CORE", "CORE", 2)
    missing = api.get(f"/clusters/{cid}/node-groups/BIG")
    assert missing.status_code == 404
    assert "'BIG'" in missing.text and "CORE" in missing.text and "TASK" in missing.text


@pytest.mark.parametrize(("group", "body", "status", "field"), [
    ("CORE", {"count": -1}, 422, "count"),
    ("CORE", {"count": 3, "decommission_timeout": 10**9}, 422, "decommission_timeout"),
    ("CORE", {"count": 3, "colour": "red"}, 422, "colour"),
    ("CORE", {"count": 1}, 422, "count"),  # below dfs.replication 2
    ("MASTER", {"count": 2}, 422, "group"),
])
def test_bad_resizes_are_refused_naming_the_field(cp: ControlPlane, api: TestClient, group: str,
                                                  body: dict[str, object], status: int, field: str) -> None:
    cid = _up_cluster(cp)
    before = _snapshot(cp, cid)
    resp = api.patch(f"/clusters/{cid}/node-groups/{group}", json=body)
    assert resp.status_code == status, resp.text
    assert any(d["loc"][-1] == field for d in resp.json()["detail"]), resp.text
    assert _snapshot(cp, cid) == before


def test_a_resize_is_accepted_with_its_target(cp: ControlPlane, api: TestClient) -> None:
    cid = _up_cluster(cp)
    resp = api.patch(f"/clusters/{cid}/node-groups/CORE", json={"count": 3, "decommission_timeout": 120})
    assert resp.status_code == 202, resp.text
    assert (resp.json()["requested_count"], resp.json()["status"]) == (3, "RESIZING")
    assert api.get(f"/clusters/{cid}/node-groups/CORE").json()["requested_count"] == 3
