"""Who may call /api/v1 (``corral.api.access``) and the audit record of each mutating call,
against the real API (uvicorn) over a unit test's control plane with auth required."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Iterator

import httpx
import pytest

from corral.api.access import required_role, startup_refusal
from corral.api.actions import describe
from corral.api.app import create_app
from corral.control import tokens
from corral.control.context import ControlPlane
from corral.control.tokens import Role
from corral.store.models import AuditRecord
from tests.unit.apiserver import serve
from tests.unit.helpers import spec_dict

ROLES = ("admin", "operator", "viewer")


@pytest.fixture
def secured(cp: ControlPlane) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """The API with CORRAL_AUTH=required and one token per role (secret by role name)."""
    cp.settings = dataclasses.replace(cp.settings, auth="required")
    secrets = {role: tokens.create_token(cp.store, role, role, created_by=None)[1] for role in ROLES}
    with serve(cp) as url, httpx.Client(base_url=url + "/api/v1", timeout=10) as http:
        yield http, secrets


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def audit_rows(cp: ControlPlane) -> list[AuditRecord]:
    with cp.store.session() as s:
        return list(s.query(AuditRecord).order_by(AuditRecord.id))


@pytest.mark.parametrize("method, path, role", [
    ("GET", "/api/v1/clusters", Role.viewer), ("HEAD", "/api/v1/artifacts/ab", Role.viewer),
    ("POST", "/api/v1/clusters", Role.operator), ("DELETE", "/api/v1/clusters/c-1", Role.operator),
    ("PUT", "/api/v1/artifacts/ab", Role.operator), ("POST", "/api/v1/clusters/c-1/data/imports", Role.operator),
    ("GET", "/api/v1/tokens", Role.admin), ("POST", "/api/v1/tokens", Role.admin),
    ("DELETE", "/api/v1/tokens/x", Role.admin), ("GET", "/api/v1/audit", Role.admin),
    ("GET", "/api/v1/hosts", Role.viewer), ("GET", "/api/v1/hosts/h1", Role.viewer),
    ("POST", "/api/v1/hosts", Role.admin), ("POST", "/api/v1/hosts/h1/check", Role.admin),
    ("DELETE", "/api/v1/hosts/h1", Role.admin), ("GET", "/api/v1/whoami", Role.viewer),
    ("GET", "/api/v1/tokensmith", Role.viewer),  # a prefix of a path segment is not the segment
    ("POST", "/api/v1/alerts/rules", Role.operator), ("POST", "/api/v1/alerts/webhooks", Role.admin),
    ("DELETE", "/api/v1/alerts/webhooks/wh-1", Role.admin), ("GET", "/api/v1/alerts/webhooks", Role.viewer),
])
def test_required_role_is_by_method_and_path_prefix(method: str, path: str, role: Role) -> None:
    assert required_role(method, path) is role


def test_every_mutating_route_has_a_stable_action_name(cp: ControlPlane) -> None:
    # Every mutating route of the app is listed: a new one (the hosts routes) fails this
    # until its audit name, derived from its path, has been looked at and added here.
    expected = {
        ("POST", "/clusters"): ("cluster.create", None),
        ("POST", "/clusters/{cluster_id}/terminate"): ("cluster.terminate", "ID"),
        ("DELETE", "/clusters/{cluster_id}"): ("cluster.terminate", "ID"),
        ("PATCH", "/clusters/{cluster_id}"): ("cluster.update", "ID"),
        ("POST", "/clusters/{cluster_id}/steps"): ("step.add", "ID"),
        ("POST", "/clusters/{cluster_id}/node-groups"): ("group.add", "ID"),
        ("PATCH", "/clusters/{cluster_id}/node-groups/{group}"): ("group.resize", "ID"),
        ("DELETE", "/clusters/{cluster_id}/node-groups/{group}"): ("group.remove", "ID"),
        ("PUT", "/clusters/{cluster_id}/node-groups/{group}/autoscaling-policy"): ("autoscaling_policy.update", "ID"),
        ("DELETE", "/clusters/{cluster_id}/node-groups/{group}/autoscaling-policy"): ("autoscaling_policy.delete", "ID"),
        ("POST", "/clusters/{cluster_id}/steps/{step_id}/cancel"): ("step.cancel", "ID"),
        ("POST", "/clusters/{cluster_id}/data/{direction}"): ("data.import", "ID"),
        ("PUT", "/artifacts/{sha256}"): ("artifact.upload", "ID"),
        ("POST", "/tokens"): ("token.create", None),
        ("DELETE", "/tokens/{name}"): ("token.revoke", "ID"),
        ("POST", "/hosts"): ("host.add", None),
        ("POST", "/hosts/{name}/check"): ("host.check", "ID"),
        ("POST", "/hosts/{name}/drain"): ("host.drain", "ID"),
        ("DELETE", "/hosts/{name}"): ("host.remove", "ID"),
        ("POST", "/alerts/rules"): ("alert_rule.add", None),
        ("PATCH", "/alerts/rules/{rule_id}"): ("alert_rule.update", "ID"),
        ("DELETE", "/alerts/rules/{rule_id}"): ("alert_rule.remove", "ID"),
        ("POST", "/alerts/webhooks"): ("webhook.add", None),
        ("DELETE", "/alerts/webhooks/{webhook_id}"): ("webhook.remove", "ID"),
    }
    found = {}
    for path, operations in create_app(cp, run_reconciler=False).openapi()["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method in operations:
            if method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
                template = path.removeprefix("/api/v1")
                concrete = template.replace("{direction}", "imports")
                concrete = "/".join("ID" if p.startswith("{") else p for p in concrete.split("/"))
                found[(method.upper(), template)] = describe(method, "/api/v1" + concrete)
    assert found == expected
    assert describe("POST", "/api/v1/clusters/c-1/data/exports") == ("data.export", "c-1")
    assert describe("POST", "/api/v1/hosts") == ("host.add", None)
    assert describe("DELETE", "/api/v1/hosts/h1") == ("host.remove", "h1")
    assert describe("DELETE", "/api/v1/hosts/h1", "force=true") == ("host.force_remove", "h1")
    assert describe("DELETE", "/api/v1/hosts/h1", "force=False") == ("host.remove", "h1")
    assert describe("DELETE", "/api/v1/clusters/c-1", "force=1") == ("cluster.terminate", "c-1")
    assert describe("POST", "/api/v1/hosts/h1/drain") == ("host.drain", "h1")


def test_no_or_a_wrong_token_is_401_with_a_bearer_challenge(secured: tuple[httpx.Client, dict[str, str]]) -> None:
    http, _ = secured
    cases = [({}, 'Bearer realm="corral"'), (bearer("crl_" + "x" * 43), 'error="invalid_token"'),
             ({"Authorization": "Basic dXNlcjpwdw=="}, 'error="invalid_request"'), ({"Authorization": "Bearer"}, 'error="invalid_request"')]
    for headers, challenge in cases:
        for method, path in (("GET", "/clusters"), ("POST", "/clusters"), ("GET", "/nothing-here"),
                             ("GET", "/tokens"), ("PUT", "/artifacts/" + "a" * 64)):
            resp = http.request(method, path, headers=headers, json={})
            assert resp.status_code == 401, (method, path, resp.text)
            assert resp.headers["www-authenticate"].startswith("Bearer") and challenge in resp.headers["www-authenticate"]
            assert "Authorization: Bearer <token>" in resp.json()["detail"]
    # refused before the body is read: a malformed body is no 422 without a token
    resp = http.post("/clusters", content=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 401
    assert http.get("/health").status_code == 200  # open: the CLI's liveness check


def test_each_role_may_do_what_its_role_allows(cp: ControlPlane, secured: tuple[httpx.Client, dict[str, str]]) -> None:
    http, secret = secured
    viewer, operator, admin = bearer(secret["viewer"]), bearer(secret["operator"]), bearer(secret["admin"])
    assert http.get("/clusters", headers=viewer).status_code == 200
    denied = http.post("/clusters", json=spec_dict(), headers=viewer)
    assert denied.status_code == 403
    assert denied.json()["detail"] == "token 'viewer' has the viewer role; POST /api/v1/clusters needs the operator role"
    assert http.get("/tokens", headers=operator).status_code == 403
    assert http.get("/audit", headers=operator).status_code == 403
    assert "needs the admin role" in http.post("/hosts", json={}, headers=operator).json()["detail"]
    assert http.post("/hosts", json={}, headers=admin).status_code == 422  # allowed; the body lacks the address
    assert http.get("/hosts", headers=viewer).status_code == 200  # host reads are a viewer's
    bad = http.post("/clusters", json={"name": "x"}, headers=operator)
    assert bad.status_code == 422 and "node_groups" in bad.text
    created = http.post("/clusters", json=spec_dict(), headers=operator)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    added = http.post(f"/clusters/{cid}/steps", json={"steps": [{"type": "SHELL", "args": ["true"]}]}, headers=operator)
    sid = added.json()["steps"][0]["id"]
    assert http.post(f"/clusters/{cid}/steps/{sid}/cancel", headers=operator).status_code == 200
    assert http.post(f"/clusters/{cid}/terminate", headers=viewer).status_code == 403
    content = b"print('hi')\n"
    sha = hashlib.sha256(content).hexdigest()
    assert http.head(f"/artifacts/{sha}", headers=viewer).status_code == 404
    assert http.put(f"/artifacts/{sha}", content=content, headers=viewer).status_code == 403
    assert http.put(f"/artifacts/{sha}", content=content, headers=operator).status_code == 201
    assert http.post(f"/clusters/{cid}/terminate", headers=admin).status_code == 202
    assert http.get("/whoami", headers=operator).json() == {"name": "operator", "role": "operator", "auth": "required"}

    rows = [(r.actor, r.role, r.method, r.action, r.target, r.status_code, r.result) for r in audit_rows(cp)]
    assert rows == [
        ("viewer", "viewer", "POST", "cluster.create", None, 403, "denied"),
        ("operator", "operator", "POST", "host.add", None, 403, "denied"),
        ("admin", "admin", "POST", "host.add", None, 422, "failed"),
        ("operator", "operator", "POST", "cluster.create", None, 422, "failed"),
        ("operator", "operator", "POST", "cluster.create", cid, 201, "ok"),
        ("operator", "operator", "POST", "step.add", cid, 201, "ok"),
        ("operator", "operator", "POST", "step.cancel", sid, 200, "ok"),
        ("viewer", "viewer", "POST", "cluster.terminate", cid, 403, "denied"),
        ("viewer", "viewer", "PUT", "artifact.upload", sha, 403, "denied"),
        ("operator", "operator", "PUT", "artifact.upload", sha, 201, "ok"),
        ("admin", "admin", "POST", "cluster.terminate", cid, 202, "ok"),
    ]
    assert {r.remote for r in audit_rows(cp)} == {"127.0.0.1"}


def test_anonymous_calls_are_audited_and_reads_are_not(cp: ControlPlane,
                                                       secured: tuple[httpx.Client, dict[str, str]]) -> None:
    http, _ = secured
    http.post("/clusters", json=spec_dict())
    http.delete("/tokens/admin", headers=bearer("crl_wrong"))
    http.get("/clusters")
    rows = [(r.actor, r.role, r.action, r.target, r.status_code, r.result, r.path) for r in audit_rows(cp)]
    assert rows == [("anonymous", None, "cluster.create", None, 401, "denied", "/api/v1/clusters"),
                    ("anonymous", None, "token.revoke", "admin", 401, "denied", "/api/v1/tokens/admin")]


def test_tokens_api_shows_a_secret_once(cp: ControlPlane, secured: tuple[httpx.Client, dict[str, str]]) -> None:
    http, secret = secured
    admin = bearer(secret["admin"])
    made = http.post("/tokens", json={"name": "ci", "role": "operator"}, headers=admin)
    assert made.status_code == 201
    body = made.json()
    new_secret = body.pop("token")
    assert new_secret.startswith("crl_")
    assert body["name"] == "ci" and body["role"] == "operator" and body["created_by"] == "admin"
    assert http.get("/whoami", headers=bearer(new_secret)).json()["name"] == "ci"
    listed = http.get("/tokens", headers=admin)
    assert [t["name"] for t in listed.json()] == ["admin", "operator", "viewer", "ci"]
    hashes = [tokens.hash_secret(s) for s in [*secret.values(), new_secret]]
    for text in (listed.text, http.get("/audit", headers=admin).text):
        assert not any(s in text for s in [*secret.values(), new_secret, *hashes])
    assert http.post("/tokens", json={"name": "ci", "role": "viewer"}, headers=admin).status_code == 409
    bad = http.post("/tokens", json={"name": "bad name", "role": "root"}, headers=admin)
    assert bad.status_code == 422 and {tuple(e["loc"]) for e in bad.json()["detail"]} == {("body", "role")}
    bad = http.post("/tokens", json={"name": "bad name", "role": "viewer"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "name"]
    revoked = http.delete("/tokens/ci", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None and "token" not in revoked.json()
    assert http.get("/whoami", headers=bearer(new_secret)).status_code == 401
    assert http.delete("/tokens/nobody", headers=admin).status_code == 404
    actions = [(r.action, r.target, r.result) for r in audit_rows(cp)]
    assert actions[0] == ("token.create", "ci", "ok") and ("token.revoke", "ci", "ok") in actions


def test_audit_list_pages_and_filters(cp: ControlPlane, secured: tuple[httpx.Client, dict[str, str]]) -> None:
    http, secret = secured
    for _ in range(5):
        http.post("/clusters", json={})
    admin = bearer(secret["admin"])
    first = http.get("/audit", params={"limit": 2}, headers=admin)
    assert len(first.json()) == 2 and first.headers["X-Corral-Next-Marker"]
    rest = http.get("/audit", params={"limit": 10, "marker": first.headers["X-Corral-Next-Marker"]}, headers=admin)
    assert [r["id"] for r in first.json() + rest.json()] == [r.id for r in audit_rows(cp)]
    assert "X-Corral-Next-Marker" not in rest.headers
    assert http.get("/audit", params={"since": 4102444800}, headers=admin).json() == []  # since 2100-01-01
    assert len(http.get("/audit", params={"since": 0}, headers=admin).json()) == 5
    assert http.get("/audit", params={"marker": "junk"}, headers=admin).status_code == 422


def test_with_auth_off_every_caller_is_local_admin(cp: ControlPlane) -> None:
    assert not cp.settings.auth_required  # a loopback unit-test server
    with serve(cp) as url, httpx.Client(base_url=url + "/api/v1", timeout=10) as http:
        assert http.get("/whoami").json() == {"name": "local", "role": "admin", "auth": "off"}
        assert http.post("/tokens", json={"name": "t", "role": "viewer"}).status_code == 201
        assert http.get("/tokens", headers=bearer("crl_ignored")).status_code == 200
    assert [(r.actor, r.role, r.action) for r in audit_rows(cp)] == [("local", "admin", "token.create")]


def test_the_server_refuses_unsafe_settings(cp: ControlPlane) -> None:
    settings = dataclasses.replace(cp.settings, host="0.0.0.0")
    assert settings.auth_required  # the default off loopback
    off = startup_refusal(dataclasses.replace(settings, auth="off"), cp.store)
    assert off is not None and off.startswith("CORRAL_AUTH=off is only allowed on a loopback address")
    missing = startup_refusal(settings, cp.store)
    assert missing is not None and "`corral token create --name admin --role admin` on this host, then start again" in missing
    assert "CORRAL_TOKEN" in missing and "corral login" in missing
    tokens.create_token(cp.store, "ops", "operator", created_by=None)
    assert startup_refusal(settings, cp.store) == missing  # an operator cannot manage tokens
    tokens.create_token(cp.store, "root", "admin", created_by=None)
    assert startup_refusal(settings, cp.store) is None
    assert startup_refusal(dataclasses.replace(cp.settings, host="::1"), cp.store) is None
    assert startup_refusal(dataclasses.replace(cp.settings, host="localhost", auth="off"), cp.store) is None
