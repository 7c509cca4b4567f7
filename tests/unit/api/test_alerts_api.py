"""/api/v1/alerts over HTTP: rules and webhooks validated with 422 naming the field, 404
for unknown clusters, rules and webhooks, 409 for duplicates and built-ins, webhook URLs
never answered in full, alerts listed by state and cluster and paged, deliveries listed,
and the roles: reads a viewer's, rules an operator's, webhooks an admin's."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from corral.alerts.engine import AlertEngine
from corral.api.app import create_app
from corral.control import tokens
from corral.control.context import ControlPlane
from corral.paging import NEXT_MARKER_HEADER
from tests.unit.alerts.helpers import EXTERNAL, cluster_row, count_audit, sample, up_cluster
from tests.unit.apiserver import serve

SECRET_URL = "https://user:pw123@hooks.example.com/services/T0/B0/SECRETPART?token=tok456"


@pytest.fixture
def api(cp: ControlPlane) -> Iterator[TestClient]:
    with TestClient(create_app(cp, run_reconciler=False), base_url="http://testserver/api/v1") as client:
        yield client


def _loc(resp: httpx.Response) -> list[Any]:
    return [d["loc"][-1] for d in resp.json()["detail"]]


RULE = {"name": "Busy", "metric": "ContainerPending", "comparison": ">", "threshold": 10, "for": "5m"}


@pytest.mark.parametrize(("change", "field"), [
    ({"metric": "Bogus"}, "metric"), ({"comparison": "about"}, "comparison"), ({"threshold": "many"}, "threshold"),
    ({"for": "soon"}, "for"), ({"for": -5}, "for"), ({"severity": "page-me"}, "severity"),
    ({"message": "{oops}"}, "message"), ({"colour": "red"}, "colour"), ({"name": "has space"}, "name"),
    ({"metric": None, "comparison": None, "threshold": None, "for": None, "event_code": "ALERT_FIRING"}, "event_code"),
])
def test_bad_rules_are_422_naming_the_field(api: TestClient, change: dict[str, Any], field: str) -> None:
    resp = api.post("/alerts/rules", json={**RULE, **change})
    assert resp.status_code == 422, resp.text
    assert field in _loc(resp), resp.text
    assert [r["name"] for r in api.get("/alerts/rules").json() if not r["builtin"]] == []


def test_rules_are_added_listed_enabled_and_removed(cp: ControlPlane, api: TestClient) -> None:
    cid = up_cluster(cp)
    listed = api.get("/alerts/rules").json()
    assert {r["name"] for r in listed} >= {"MissingBlocks", "CorruptBlocks", "DataNodesDown", "NodeLost",
                                           "HDFSUtilizationHigh", "StepFailed", "ClusterFailed"}
    assert all(r["builtin"] and r["cluster_id"] is None for r in listed)
    made = api.post("/alerts/rules", json={**RULE, "comparison": "GREATER_THAN", "cluster_id": cid})
    assert made.status_code == 201, made.text
    rule = made.json()
    assert (rule["comparison"], rule["for_seconds"], rule["expression"], rule["cluster_id"], rule["kind"]) == (
        ">", 300.0, "ContainerPending > 10 for 5m", cid, "metric")
    assert api.post("/alerts/rules", json={**RULE, "cluster_id": cid}).status_code == 409
    assert api.post("/alerts/rules", json=RULE).status_code == 201  # the same name globally is another scope
    assert api.post("/alerts/rules", json={**RULE, "name": "MissingBlocks"}).status_code == 409  # a built-in's
    assert api.post("/alerts/rules", json={**RULE, "cluster_id": "c-nothere"}).status_code == 404
    assert rule["id"] in {r["id"] for r in api.get("/alerts/rules", params={"cluster_id": cid}).json()}
    other = up_cluster(cp)
    assert rule["id"] not in {r["id"] for r in api.get("/alerts/rules", params={"cluster_id": other}).json()}
    off = api.patch(f"/alerts/rules/{rule['id']}", json={"enabled": False})
    assert (off.status_code, off.json()["enabled"]) == (200, False)
    assert api.delete(f"/alerts/rules/{rule['id']}").status_code == 200
    assert api.delete(f"/alerts/rules/{rule['id']}").status_code == 404
    builtin = api.delete("/alerts/rules/ar-missingblk")
    assert builtin.status_code == 409 and "disable it" in builtin.json()["detail"]
    event = api.post("/alerts/rules", json={"name": "Unhealthy", "event_code": "node_unhealthy", "severity": "info"})
    assert (event.status_code, event.json()["expression"]) == (201, "event NODE_UNHEALTHY")


def test_webhooks_are_validated_and_their_urls_masked(cp: ControlPlane, api: TestClient) -> None:
    for url in ("ftp://hooks.example.com/x", "not a url", "http://"):
        resp = api.post("/alerts/webhooks", json={"url": url})
        assert resp.status_code == 422 and _loc(resp) == ["url"], resp.text
    made = api.post("/alerts/webhooks", json={"url": SECRET_URL, "name": "slack"})
    assert made.status_code == 201, made.text
    for shown in (made.text, api.get("/alerts/webhooks").text):
        for secret in ("pw123", "SECRETPART", "tok456"):
            assert secret not in shown
    assert made.json()["url"] == "https://***@hooks.example.com/***?***"
    assert api.post("/alerts/webhooks", json={"url": SECRET_URL, "name": "slack"}).status_code == 409
    default = api.post("/alerts/webhooks", json={"url": "http://127.0.0.1:9093/hook"}).json()
    assert default["name"] == "127.0.0.1:9093"
    assert api.post("/alerts/webhooks", json={"url": SECRET_URL, "cluster_id": "c-nothere"}).status_code == 404
    hook_id = made.json()["id"]
    assert api.get(f"/alerts/webhooks/{hook_id}/deliveries").json() == []
    assert api.get("/alerts/webhooks/wh-nothere/deliveries").status_code == 404
    assert api.delete(f"/alerts/webhooks/{hook_id}").status_code == 200
    assert api.delete(f"/alerts/webhooks/{hook_id}").status_code == 404


def test_alerts_are_listed_by_state_and_cluster_and_paged(cp: ControlPlane, api: TestClient) -> None:
    cid, other = up_cluster(cp), up_cluster(cp)
    api.get("/alerts/rules")  # the built-ins
    hook = api.post("/alerts/webhooks", json={"url": "http://127.0.0.1:9/hook"}).json()
    engine = AlertEngine(cp.store, EXTERNAL)
    try:
        engine.on_sample(cp, cluster_row(cp, cid), sample(100, MissingBlocks=4, LiveDataNodes=50))
        engine.on_sample(cp, cluster_row(cp, other), sample(101, CorruptBlocks=1))
    finally:
        engine.stop()
    everything = api.get("/alerts").json()
    assert sorted((a["name"], a["state"], a["cluster_id"]) for a in everything) == sorted([
        ("MissingBlocks", "FIRING", cid), ("DataNodesDown", "PENDING", cid), ("CorruptBlocks", "FIRING", other)])
    firing = api.get("/alerts", params={"firing": "true"}).json()
    assert {a["name"] for a in firing} == {"MissingBlocks", "CorruptBlocks"}
    mine = api.get("/alerts", params={"firing": "true", "cluster_id": cid}).json()
    assert [(a["name"], a["value"], a["severity"]) for a in mine] == [("MissingBlocks", 4.0, "critical")]
    assert api.get("/alerts", params={"state": "pending"}).json()[0]["name"] == "DataNodesDown"
    assert _loc(api.get("/alerts", params={"state": "LOUD"})) == ["state"]
    assert api.get("/alerts", params={"cluster_id": "c-nothere"}).status_code == 404
    first = api.get("/alerts", params={"limit": 2})
    rest = api.get("/alerts", params={"limit": 2, "marker": first.headers[NEXT_MARKER_HEADER]})
    assert [a["id"] for a in first.json() + rest.json()] == [a["id"] for a in everything]
    assert NEXT_MARKER_HEADER not in rest.headers
    one = api.get(f"/alerts/{mine[0]['id']}")
    assert one.status_code == 200 and one.json()["labels"]["alertname"] == "MissingBlocks"
    assert api.get("/alerts/al-nothere").status_code == 404
    sent = api.get(f"/alerts/webhooks/{hook['id']}/deliveries").json()
    assert sorted((d["status"], d["state"]) for d in sent) == [("firing", "PENDING")] * 2


@pytest.fixture
def secured(cp: ControlPlane) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    cp.settings = dataclasses.replace(cp.settings, auth="required")
    secrets = {role: tokens.create_token(cp.store, role, role, created_by=None)[1]
               for role in ("admin", "operator", "viewer")}
    with serve(cp) as url, httpx.Client(base_url=url + "/api/v1", timeout=10) as http:
        yield http, secrets


def test_reads_are_a_viewer_s_rules_an_operator_s_and_webhooks_an_admin_s(
        cp: ControlPlane, secured: tuple[httpx.Client, dict[str, str]]) -> None:
    http, secrets = secured

    def call(role: str, method: str, path: str, body: dict[str, Any] | None = None) -> int:
        return http.request(method, path, json=body, headers={"Authorization": f"Bearer {secrets[role]}"}).status_code

    for path in ("/alerts", "/alerts/rules", "/alerts/webhooks"):
        assert call("viewer", "GET", path) == 200
    assert call("viewer", "POST", "/alerts/rules", RULE) == 403
    assert call("operator", "POST", "/alerts/rules", RULE) == 201
    hook = {"url": "http://127.0.0.1:9/hook"}
    assert (call("viewer", "POST", "/alerts/webhooks", hook), call("operator", "POST", "/alerts/webhooks", hook)) == (
        403, 403)
    assert call("admin", "POST", "/alerts/webhooks", hook) == 201
    [made] = http.get("/alerts/webhooks", headers={"Authorization": f"Bearer {secrets['viewer']}"}).json()
    assert call("operator", "DELETE", f"/alerts/webhooks/{made['id']}") == 403
    assert call("admin", "DELETE", f"/alerts/webhooks/{made['id']}") == 200
    assert count_audit(cp, "webhook.add") == 3 and count_audit(cp, "alert_rule.add") == 2
