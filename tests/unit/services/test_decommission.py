"""What the services render and read for a graceful decommission: exclude files with their
refresh hooks on the master, and each leaver's progress from the daemons' own answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from corral.domain.states import NodeRole
from corral.services import base
from corral.services.base import ClusterView, Drain, NodeView
from corral.services.registry import effective_properties, get_service


def _view(leaving: dict[str, float] | None = None) -> ClusterView:
    leaving = leaving or {}
    nodes = [NodeView("m", NodeRole.MASTER, "127.1.0.1", "/n/m", "local.small")]
    for i, role in ((2, NodeRole.CORE), (3, NodeRole.CORE), (4, NodeRole.CORE), (5, NodeRole.TASK)):
        node_id = f"n{i}"
        nodes.append(NodeView(node_id, role, f"127.1.0.{i}", f"/n/{node_id}", "local.medium",
                              decommission="DECOMMISSIONING" if node_id in leaving else None,
                              decommission_deadline=leaving.get(node_id)))
    return ClusterView("c-1", "corral-1.0", ("hdfs", "yarn", "mapreduce", "spark"), tuple(nodes))


def _files(view: ClusterView, node_id: str) -> dict[str, Any]:
    props = effective_properties(view)
    node = next(n for n in view.nodes if n.node_id == node_id)
    return {f.path: f for name in ("hdfs", "yarn") for f in get_service(name).config_files(view, node, props)}


def test_the_master_writes_both_exclude_files_with_their_refresh_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("corral.services.yarn.time.time", lambda: 1000.0)
    view = _view({"n3": 1600.0, "n5": 900.0})
    files = _files(view, "m")
    hdfs, yarn = files["/n/m/conf/hadoop/dfs.exclude"], files["/n/m/conf/hadoop/yarn-exclude.xml"]
    assert hdfs.content == "127.1.0.3\n"  # CORE only: a TASK node has no DataNode
    assert "<host><name>127.1.0.3</name><timeout>600</timeout></host>" in yarn.content
    assert "<host><name>127.1.0.5</name><timeout>0</timeout></host>" in yarn.content  # past its deadline
    assert hdfs.on_change[0].argv[1:] == ["dfsadmin", "-refreshNodes"] and hdfs.on_change[0].wait_for.port == 8020
    assert yarn.on_change[0].argv[1:] == ["rmadmin", "-refreshNodes", "-g", "-server"]
    props = effective_properties(view)
    assert props["hdfs-site"]["dfs.hosts.exclude"] == "/n/m/conf/hadoop/dfs.exclude"
    assert props["yarn-site"]["yarn.resourcemanager.nodes.exclude-path"] == "/n/m/conf/hadoop/yarn-exclude.xml"
    assert not any(p.endswith("exclude.xml") or p.endswith("dfs.exclude") for p in _files(view, "n2"))
    assert _files(_view(), "m")["/n/m/conf/hadoop/dfs.exclude"].content == ""


class _FakeHttp:
    def __init__(self, answers: dict[str, Any]):
        self.answers = answers

    def get(self, url: str, timeout: float) -> Any:
        for key, value in self.answers.items():
            if key in url:
                return _Resp(value)
        raise base.httpx.ConnectError("refused")


class _Resp:
    def __init__(self, body: Any):
        self.body = body

    def json(self) -> Any:
        return self.body


def test_hdfs_drain_counts_blocks_and_is_done_at_decommissioned(monkeypatch: pytest.MonkeyPatch) -> None:
    live = {"127.1.0.2:9866": {"adminState": "In Service"},
            "127.1.0.3:9866": {"adminState": "Decommission In Progress"},
            "127.1.0.4:9866": {"adminState": "Decommissioned"}}
    bean = {"LiveNodes": json.dumps(live), "DeadNodes": "{}",
            "DecomNodes": json.dumps({"127.1.0.3:9866": {"underReplicatedBlocks": 35}})}
    monkeypatch.setattr("corral.services.hdfs.HTTP", _FakeHttp({"NameNodeInfo": {"beans": [bean]}}))
    view = _view({"n3": 0.0, "n4": 0.0, "n5": 0.0})
    assert get_service("hdfs").drain_status(view, 1.0) == {"n3": Drain(False, "35 blocks to re-replicate"),
                                                            "n4": Drain(True)}
    monkeypatch.setattr("corral.services.hdfs.HTTP", _FakeHttp({}))
    assert get_service("hdfs").drain_status(view, 1.0)["n3"] == Drain(False, "NameNode not answering (ConnectError)")


def test_yarn_drain_waits_for_containers_and_applications(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = {"nodes": {"node": [{"nodeHostName": "127.1.0.3", "state": "DECOMMISSIONING", "numContainers": 2},
                                {"nodeHostName": "127.1.0.5", "state": "DECOMMISSIONED", "numContainers": 0},
                                {"nodeHostName": "127.1.0.4", "state": "RUNNING", "numContainers": 1}]}}
    apps = {"apps": {"app": [{"id": "application_1_0001"}]}}
    fake = _FakeHttp({"/ws/v1/cluster/nodes?": nodes, "127.1.0.3:8042/ws/v1/node/apps": apps})
    monkeypatch.setattr("corral.services.yarn.HTTP", fake)
    view = _view({"n3": 0.0, "n4": 0.0, "n5": 0.0})
    assert get_service("yarn").drain_status(view, 1.0) == {
        "n3": Drain(False, "2 containers, 1 application"),
        "n4": Drain(False, "NodeManager RUNNING, not yet DECOMMISSIONING"),
        "n5": Drain(True)}


def test_a_released_datanode_stays_excluded_until_the_namenode_forgets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dropped from dfs.exclude while the NameNode still counts it live, a decommissioned
    DataNode goes back in service there and its blocks' other replicas are deleted as excess."""
    import dataclasses

    view = _view()
    gone = NodeView("n6", NodeRole.CORE, "127.1.0.6", "/n/n6", "local.medium", decommission="DECOMMISSIONED")
    reused = NodeView("n7", NodeRole.CORE, "127.1.0.2", "/n/n7", "local.medium", decommission="DECOMMISSIONED")
    departed = dataclasses.replace(view, departed=(gone, reused))
    assert _files(departed, "m")["/n/m/conf/hadoop/dfs.exclude"].content == "127.1.0.6\n"  # 127.1.0.2 serves again
    live = {"127.1.0.2:9866": {}, "127.1.0.6:9866": {"adminState": "Decommissioned"}}
    bean = {"beans": [{"LiveNodes": json.dumps(live)}]}
    monkeypatch.setattr("corral.services.hdfs.HTTP", _FakeHttp({"NameNodeInfo": bean}))
    assert get_service("hdfs").remembered(departed, 1.0) == {"n6"}
    monkeypatch.setattr("corral.services.hdfs.HTTP", _FakeHttp({"NameNodeInfo": {"beans": [{"LiveNodes": "{}"}]}}))
    assert get_service("hdfs").remembered(departed, 1.0) == set()  # declared dead: forgotten
    monkeypatch.setattr("corral.services.hdfs.HTTP", _FakeHttp({}))
    assert get_service("hdfs").remembered(departed, 1.0) == {"n6"}  # no answer: kept


def test_yarn_lets_a_node_go_that_only_the_sql_endpoints_application_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The RM waits for every application that ran on a decommissioning node until it ends;
    the SQL endpoint's never does. With none of its containers left there, the wait can end."""
    nodes = {"nodes": {"node": [{"nodeHostName": "127.1.0.3", "state": "DECOMMISSIONING", "numContainers": 0},
                                {"nodeHostName": "127.1.0.4", "state": "DECOMMISSIONING", "numContainers": 1},
                                {"nodeHostName": "127.1.0.5", "state": "DECOMMISSIONING", "numContainers": 0}]}}
    endpoint = {"apps": {"app": [{"id": "application_1_0001"}]}}
    both = {"apps": {"app": [{"id": "application_1_0001"}, {"id": "application_1_0002"}]}}
    fake = _FakeHttp({"/ws/v1/cluster/nodes?": nodes, "127.1.0.3:8042/ws/v1/node/apps": endpoint,
                      "127.1.0.4:8042/ws/v1/node/apps": endpoint, "127.1.0.5:8042/ws/v1/node/apps": both,
                      "/apps/application_1_0001": {"app": {"id": "application_1_0001",
                                                           "name": "Corral SQL endpoint (Spark Thrift Server)",
                                                           "applicationTags": "corral-always-on"}},
                      "/apps/application_1_0002": {"app": {"id": "application_1_0002", "name": "wordcount"}}})
    monkeypatch.setattr("corral.services.yarn.HTTP", fake)
    answer = get_service("yarn").drain_status(_view({"n3": 0.0, "n4": 0.0, "n5": 0.0}), 1.0)
    assert answer["n3"] == Drain(False, "only the SQL endpoint's application, which has nothing left on it",
                                 release_now=True)
    assert answer["n4"] == Drain(False, "1 container, 1 application")  # its container may be the endpoint's AM
    assert answer["n5"] == Drain(False, "0 containers, 2 applications")  # a user's job may still read its shuffle output


def _endpoint_on(host: str, running: int) -> dict[str, Any]:
    return {"app": {"id": "application_1_0001", "name": "Corral SQL endpoint (Spark Thrift Server)",
                    "applicationTags": "corral-always-on",
                    "runningContainers": running, "amHostHttpAddress": f"{host}:8042"}}


def test_yarn_lets_a_node_go_that_holds_only_the_sql_endpoints_idle_master(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its AM is the one container left: the RM would hold the node until the timeout.
    With nothing else of the endpoint running (no executor, so no query's task) and no
    attempt ended in the last hour, the wait ends now (the RM restarts the AM elsewhere);
    else the node waits."""
    monkeypatch.setattr("corral.services.yarn.time.time", lambda: 10_000.0)
    nodes = {"nodes": {"node": [{"nodeHostName": "127.1.0.3", "state": "DECOMMISSIONING", "numContainers": 1}]}}
    endpoint = {"apps": {"app": [{"id": "application_1_0001"}]}}
    first = {"appAttempts": {"appAttempt": [{"id": 1, "containerId": "container_1_0001_01_000001", "finishedTime": 0}]}}
    answers = {"/ws/v1/cluster/nodes?": nodes, "127.1.0.3:8042/ws/v1/node/apps": endpoint,
               "/appattempts": first, "/apps/application_1_0001": _endpoint_on("127.1.0.3", 1)}
    monkeypatch.setattr("corral.services.yarn.HTTP", _FakeHttp(answers))
    view = _view({"n3": 0.0})
    assert get_service("yarn").drain_status(view, 1.0)["n3"] == Drain(
        False, "only the SQL endpoint's idle ApplicationMaster, which YARN restarts on a node in service",
        release_now=True)
    waits = Drain(False, "1 container, 1 application")
    for changed in ({"/apps/application_1_0001": _endpoint_on("127.1.0.3", 2)},  # an executor too: a query may run
                    {"/apps/application_1_0001": _endpoint_on("127.1.0.4", 1)},  # its container is an executor
                    # attempt 1 ended 10 minutes ago: should YARN count this one, the endpoint would end
                    {"/appattempts": {"appAttempts": {"appAttempt": [
                        {"id": 1, "containerId": "container_1_0001_01_000001", "finishedTime": 9_400_000},
                        {"id": 2, "containerId": "container_1_0001_02_000001", "finishedTime": 0}]}}}):
        monkeypatch.setattr("corral.services.yarn.HTTP", _FakeHttp({**answers, **changed}))
        assert get_service("yarn").drain_status(view, 1.0)["n3"] == waits, changed
    old = {"appAttempts": {"appAttempt": [{"id": 1, "finishedTime": 6_000_000}, {"id": 2, "finishedTime": 0}]}}
    monkeypatch.setattr("corral.services.yarn.HTTP", _FakeHttp({**answers, "/appattempts": old}))
    assert get_service("yarn").drain_status(view, 1.0)["n3"].release_now  # that one ended over an hour ago


def test_yarn_names_its_unhealthy_nodemanagers_with_their_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    report = "1/1 local-dirs have errors: [ /n/n4/data/yarn/local : Cannot create directory: /n/n4/data/yarn/local ]"
    nodes = {"nodes": {"node": [{"nodeHostName": "127.1.0.4", "state": "UNHEALTHY", "healthReport": report}]}}
    fake = _FakeHttp({"/ws/v1/cluster/nodes?states=UNHEALTHY": nodes})
    monkeypatch.setattr("corral.services.yarn.HTTP", fake)
    assert get_service("yarn").unhealthy_nodes(_view(), 1.0) == {"n4": report}
    monkeypatch.setattr("corral.services.yarn.HTTP", _FakeHttp({"/ws/v1/cluster/nodes?states=UNHEALTHY": {"nodes": None}}))
    assert get_service("yarn").unhealthy_nodes(_view(), 1.0) == {}
    monkeypatch.setattr("corral.services.yarn.HTTP", _FakeHttp({}))
    with pytest.raises(base.NotObserved, match="ResourceManager not answering"):
        get_service("yarn").unhealthy_nodes(_view(), 1.0)


def test_a_core_shrink_is_refused_below_replication_or_capacity(monkeypatch: pytest.MonkeyPatch) -> None:
    gib = 1 << 30
    live = {f"127.1.0.{i}:9866": {"capacity": 10 * gib, "usedSpace": 6 * gib} for i in (2, 3, 4)}
    monkeypatch.setattr("corral.services.hdfs.HTTP", _FakeHttp({"NameNodeInfo": {"beans": [{"LiveNodes": json.dumps(live)}]}}))
    view = _view()
    hdfs = get_service("hdfs")
    props = {"hdfs-site": {"dfs.replication": "2"}}
    assert hdfs.scale_in_problem(view, props, NodeRole.CORE, ["n4"], 1.0) is not None  # 18 GiB in 20 GiB
    assert "more than 80%" in str(hdfs.scale_in_problem(view, props, NodeRole.CORE, ["n4"], 1.0))
    live = {k: {**v, "usedSpace": 2 * gib} for k, v in live.items()}
    monkeypatch.setattr("corral.services.hdfs.HTTP", _FakeHttp({"NameNodeInfo": {"beans": [{"LiveNodes": json.dumps(live)}]}}))
    assert hdfs.scale_in_problem(view, props, NodeRole.CORE, ["n4"], 1.0) is None
    assert "fewer than dfs.replication 2" in str(hdfs.scale_in_problem(view, props, NodeRole.CORE, ["n3", "n4"], 1.0))
    assert hdfs.scale_in_problem(view, props, NodeRole.TASK, ["n5"], 1.0) is None


def test_a_local_nodes_capacity_is_its_instance_types_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every local DataNode reports the whole shared filesystem (here 250 GiB each); the
    # check counts each at its instance type's 32 GiB: 2 nodes left hold at most 80 % of
    # 64 GiB, so 39 GiB of data fits and 60 GiB does not.
    gib = 1 << 30
    live = {f"127.1.0.{i}:9866": {"capacity": 250 * gib, "usedSpace": 20 * gib} for i in (2, 3, 4)}
    monkeypatch.setattr("corral.services.hdfs.HTTP", _FakeHttp({"NameNodeInfo": {"beans": [{"LiveNodes": json.dumps(live)}]}}))
    hdfs, props = get_service("hdfs"), {"hdfs-site": {"dfs.replication": "2"}}
    assert hdfs.scale_in_problem(_view(), props, NodeRole.CORE, ["n4"], 1.0) is not None  # 60 GiB in 64 GiB
    live = {k: {**v, "usedSpace": 13 * gib} for k, v in live.items()}
    monkeypatch.setattr("corral.services.hdfs.HTTP", _FakeHttp({"NameNodeInfo": {"beans": [{"LiveNodes": json.dumps(live)}]}}))
    assert hdfs.scale_in_problem(_view(), props, NodeRole.CORE, ["n4"], 1.0) is None  # 39 GiB in 64 GiB


def test_only_an_application_with_the_endpoints_name_and_tag_is_always_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's job that took the endpoint's name still makes the cluster busy and holds a leaver."""
    from corral.services.yarn import is_always_on

    name = "Corral SQL endpoint (Spark Thrift Server)"
    assert is_always_on({"name": name, "applicationTags": "corral-always-on"})
    assert is_always_on({"name": name, "applicationTags": "team-a,corral-always-on"})
    assert not is_always_on({"name": name, "applicationTags": ""})
    assert not is_always_on({"name": "etl", "applicationTags": "corral-always-on"})
    impostor = {"apps": {"app": [{"id": "application_1_0002", "name": name, "state": "RUNNING"}]}}
    monkeypatch.setattr("corral.services.yarn.HTTP", _FakeHttp({"/ws/v1/cluster/apps?states=": impostor}))
    assert get_service("yarn").busy_reason(_view(), 1.0) == "YARN application application_1_0002 is RUNNING"


def test_a_nodemanagers_registered_name_is_asked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """On hosts with names the RM lists NodeManagers by name: each node is asked its name
    once, not on every 15 s health check while one node stays unhealthy."""
    report = "1/1 local-dirs usable space is below configured utilization percentage"
    nodes = {"nodes": {"node": [{"nodeHostName": "worker-4.lab", "state": "UNHEALTHY", "healthReport": report}]}}
    infos = {f"127.1.0.{i}:8042/ws/v1/node/info": {"nodeInfo": {"nodeHostName": f"worker-{i}.lab"}} for i in (2, 3, 4, 5)}
    fake = _FakeHttp({"/ws/v1/cluster/nodes?states=UNHEALTHY": nodes, **infos})
    asked: list[str] = []
    real_get = fake.get
    monkeypatch.setattr(fake, "get", lambda url, timeout: (asked.append(url), real_get(url, timeout))[1])
    monkeypatch.setattr("corral.services.yarn.HTTP", fake)
    for _ in range(3):
        assert get_service("yarn").unhealthy_nodes(_view(), 1.0) == {"n4": report}
    assert sorted(u for u in asked if u.endswith("/node/info")) == sorted(f"http://{k}" for k in infos)
