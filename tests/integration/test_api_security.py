"""The agent API needs the cluster's token; the token never leaves the store."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.conftest import ControlPlaneProcess

pytestmark = pytest.mark.integration


def test_agent_api_refuses_a_wrong_token(shared_cp: ControlPlaneProcess, spark_cluster: dict[str, Any]) -> None:
    node = spark_cluster["nodes"][0]["id"]
    for headers in ({}, {"Authorization": "Bearer not-the-token"}):
        resp = httpx.get(f"{shared_cp.url}/agent/v1/nodes/{node}/plan", headers=headers, timeout=10)
        assert resp.status_code == 401, resp.text


def test_token_never_appears_in_api_or_logs(shared_cp: ControlPlaneProcess, spark_cluster: dict[str, Any]) -> None:
    cid = spark_cluster["id"]
    token = next((shared_cp.home / "nodes" / cid).glob("*/run/agent.token")).read_text().strip()
    assert len(token) >= 32
    step = shared_cp.add_step(cid, "SHELL", ["env; cat /proc/self/cmdline"])
    shared_cp.wait_step(cid, step["id"])
    seen = [shared_cp.http.get(path).text for path in (
        f"/clusters/{cid}", "/clusters", f"/clusters/{cid}/events", f"/clusters/{cid}/operations",
        f"/clusters/{cid}/configurations", f"/clusters/{cid}/steps")]
    seen += [shared_cp.log(cid, step["id"]), shared_cp.log(cid, step["id"], "stderr")]
    seen += [p.read_text(errors="replace") for p in shared_cp.home.rglob("*.log")]
    assert all(token not in text for text in seen)
    assert "env" in shared_cp.log(cid, step["id"]) or "PATH=" in shared_cp.log(cid, step["id"])


def test_openapi_is_served(shared_cp: ControlPlaneProcess) -> None:
    spec = httpx.get(f"{shared_cp.url}/openapi.json", timeout=10).json()
    assert "/api/v1/clusters" in spec["paths"] and "/api/v1/clusters/{cluster_id}/steps" in spec["paths"]
    assert httpx.get(f"{shared_cp.url}/docs", timeout=10).status_code == 200
