"""YARN's readiness check finds NodeManagers by the name they register under: their
address (loopback nodes) or their host's name (hosts with names in /etc/hosts or DNS)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from corral.domain.states import NodeRole
from corral.services import yarn
from corral.services.base import ClusterView, NodeView


def view(*addresses: str) -> ClusterView:
    nodes = [NodeView("n-m", NodeRole.MASTER, addresses[0], "/m", "local.small")]
    nodes += [NodeView(f"n-c{i}", NodeRole.CORE, a, f"/c{i}", "local.medium") for i, a in enumerate(addresses[1:])]
    return ClusterView(cluster_id="c-1", release="corral-1.0", services=("hdfs", "yarn"), nodes=tuple(nodes))


def serve(monkeypatch: pytest.MonkeyPatch, rm_nodes: list[dict[str, Any]], nm_names: dict[str, str]) -> list[str]:
    """The RM's node list and each NodeManager's info (by address); the URLs asked, in order."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if request.url.path == "/ws/v1/cluster/nodes":
            return httpx.Response(200, json={"nodes": {"node": rm_nodes}})
        name = nm_names.get(request.url.host)
        if request.url.path == "/ws/v1/node/info" and name is not None:
            return httpx.Response(200, json={"nodeInfo": {"nodeHostName": name, "id": f"{name}:8041"}})
        raise httpx.ConnectError("connection refused", request=request)

    monkeypatch.setattr(yarn, "HTTP", httpx.Client(transport=httpx.MockTransport(handler)))
    monkeypatch.setattr(yarn, "_REGISTERED_NAMES", {})
    return asked


def rm_node(name: str, state: str = "RUNNING") -> dict[str, Any]:
    return {"id": f"{name}:8041", "nodeHostName": name, "state": state}


def test_nodemanagers_registered_by_address_need_no_further_question(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = serve(monkeypatch, [rm_node("127.60.0.3"), rm_node("127.60.0.4")], {})
    check = yarn.YarnService().check_ready(view("127.60.0.2", "127.60.0.3", "127.60.0.4"), timeout=1.0)
    assert check.ready and check.detail == "ResourceManager with 2 RUNNING NodeManagers"
    assert asked == ["http://127.60.0.2:8088/ws/v1/cluster/nodes"]


def test_nodemanagers_registered_by_host_name_are_found_through_their_own_info(monkeypatch: pytest.MonkeyPatch) -> None:
    # Hadoop names a NodeManager by its address's canonical host name: host2 for 198.18.0.3
    names = {"198.18.0.3": "host2", "198.18.0.4": "host3"}
    asked = serve(monkeypatch, [rm_node("host2"), rm_node("host3", state="NEW")], names)
    cluster = view("198.18.0.2", "198.18.0.3", "198.18.0.4")
    check = yarn.YarnService().check_ready(cluster, timeout=1.0)
    assert not check.ready and check.detail == "1/2 NodeManagers RUNNING in the ResourceManager"
    serve(monkeypatch, [rm_node("host2"), rm_node("host3")], names)
    check = yarn.YarnService().check_ready(cluster, timeout=1.0)
    assert check.ready and check.detail == "ResourceManager with 2 RUNNING NodeManagers"
    asked = serve(monkeypatch, [rm_node("host2"), rm_node("host3")], names)
    yarn._REGISTERED_NAMES.update({"n-c0": "host2", "n-c1": "host3"})
    assert yarn.YarnService().check_ready(cluster, timeout=1.0).ready
    assert asked == ["http://198.18.0.2:8088/ws/v1/cluster/nodes"]  # a node's name is asked once


def test_a_nodemanager_that_does_not_answer_is_not_running(monkeypatch: pytest.MonkeyPatch) -> None:
    serve(monkeypatch, [rm_node("host2")], {"198.18.0.3": "host2"})
    check = yarn.YarnService().check_ready(view("198.18.0.2", "198.18.0.3", "198.18.0.4"), timeout=1.0)
    assert not check.ready and check.detail == "1/2 NodeManagers RUNNING in the ResourceManager"
    assert yarn._REGISTERED_NAMES == {"n-c0": "host2"}  # no answer is not remembered
