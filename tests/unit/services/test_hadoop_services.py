"""HDFS, YARN, MAPREDUCE and Spark-on-YARN: derived defaults, placement by role, rendered
files, and the checks across services."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from corral.agent.runtime import substitute
from corral.control.views import effective_properties
from corral.formats import LITERAL
from corral.domain.states import NodeRole
from corral.services import hadoop_common as hc
from corral.services.base import ClusterView, NodeView
from corral.services.registry import get_service, validate_services
from corral.services.spark import yarn_executor_mib
from corral.services.sizing import MIN_ALLOCATION_MIB
from tests.unit.helpers import make_spec

ALL = ("hdfs", "yarn", "mapreduce", "spark")


def node(i: int, role: NodeRole, itype: str) -> NodeView:
    return NodeView(node_id=f"n-{i}", role=role, address=f"127.7.0.{i}", directory=f"/nodes/n-{i}", instance_type=itype)


def view(workers: tuple[tuple[NodeRole, str], ...] = ((NodeRole.CORE, "local.medium"), (NodeRole.CORE, "local.medium")),
         services: tuple[str, ...] = ALL, user: dict[str, dict[str, str]] | None = None) -> ClusterView:
    nodes = [node(2, NodeRole.MASTER, "local.small")] + [node(3 + i, r, t) for i, (r, t) in enumerate(workers)]
    return ClusterView(cluster_id="c-test", release="corral-1.0", services=services, nodes=tuple(nodes),
                       user_configurations=user or {})


def site(text: str) -> dict[str, str]:
    return {p.findtext("name") or "": p.findtext("value") or "" for p in ET.fromstring(text).iter("property")}


def placement(v: ClusterView) -> dict[str, list[str]]:
    props, _ = effective_properties(v)
    return {n.node_id: [c.name for s in v.services for c in get_service(s).components(v, n, props)] for n in v.nodes}


def files(v: ClusterView, n: NodeView) -> dict[str, str]:
    props, _ = effective_properties(v)
    return {f.path.rsplit("/", 1)[1]: f.content for s in v.services for f in get_service(s).config_files(v, n, props)}


@pytest.mark.parametrize("cores, replication", [(1, "1"), (2, "2"), (3, "3"), (5, "3")])
def test_replication_is_min_of_three_and_the_core_count(cores: int, replication: str) -> None:
    v = view(workers=tuple((NodeRole.CORE, "local.medium") for _ in range(cores)))
    assert get_service("hdfs").default_properties(v)["hdfs-site"]["dfs.replication"] == replication


def test_daemons_are_placed_by_role() -> None:
    v = view(workers=((NodeRole.CORE, "local.medium"), (NodeRole.TASK, "local.large")))
    assert placement(v) == {
        "n-2": ["namenode", "resourcemanager", "web-proxy", "jobhistoryserver", "spark-history-server"],
        "n-3": ["datanode", "nodemanager"],
        "n-4": ["nodemanager"],  # TASK: compute only, no HDFS
    }
    standalone = view(services=("spark",))
    assert placement(standalone)["n-2"] == ["spark-master", "spark-history-server"]
    assert placement(standalone)["n-3"] == ["spark-worker"]


def test_each_nodemanager_offers_its_own_instance_type() -> None:
    v = view(workers=((NodeRole.CORE, "local.medium"), (NodeRole.TASK, "local.large")))
    medium, large = (site(files(v, n)["yarn-site.xml"]) for n in v.nodes[1:])
    assert (medium["yarn.nodemanager.resource.memory-mb"], medium["yarn.nodemanager.resource.cpu-vcores"]) == ("3072", "2")
    assert (large["yarn.nodemanager.resource.memory-mb"], large["yarn.nodemanager.resource.cpu-vcores"]) == ("6144", "4")
    assert medium["yarn.scheduler.maximum-allocation-mb"] == "6144"
    user = view(workers=((NodeRole.CORE, "local.medium"),), user={"yarn-site": {"yarn.nodemanager.resource.memory-mb": "2048"}})
    assert site(files(user, user.nodes[1])["yarn-site.xml"])["yarn.nodemanager.resource.memory-mb"] == "2048"


def test_core_site_names_the_node_and_keeps_it_final() -> None:
    v = view()
    core = files(v, v.nodes[1])["core-site.xml"]
    props = site(core)
    assert props["fs.defaultFS"] == "hdfs://127.7.0.2:8020"
    assert props["corral.node.address"] == "127.7.0.3" and props["corral.node.dir"] == "/nodes/n-3"
    finals = {p.findtext("name") for p in ET.fromstring(core).iter("property") if p.findtext("final") == "true"}
    assert finals == {"corral.node.address", "corral.node.dir"}
    hdfs = site(files(v, v.nodes[1])["hdfs-site.xml"])
    assert hdfs["dfs.datanode.address"] == "${corral.node.address}:9866"  # expanded by Hadoop on each node


def test_site_xml_escapes_values() -> None:
    assert site(hc.site_xml({"a": "x<y&z", "b": "\"q\""})) == {"a": "x<y&z", "b": "\"q\""}


def test_user_properties_override_defaults_and_reach_the_files() -> None:
    v = view(user={"hdfs-site": {"dfs.replication": "1"}, "mapred-site": {"mapreduce.map.memory.mb": "1024"},
                   "hadoop-env": {"HADOOP_HEAPSIZE_MAX": "1g"}})
    rendered = files(v, v.nodes[1])
    assert site(rendered["hdfs-site.xml"])["dfs.replication"] == "1"
    assert site(rendered["mapred-site.xml"])["mapreduce.map.memory.mb"] == "1024"
    assert 'export HADOOP_HEAPSIZE_MAX="1g"' in rendered["hadoop-env.sh"]


def test_launcher_knows_the_node_and_the_tools_exist() -> None:
    v = view()
    rendered = files(v, v.nodes[0])
    launcher = rendered["corral-hadoop"]
    assert 'HADOOP_CONF_DIR="${HADOOP_CONF_DIR:-/nodes/n-2/conf/hadoop}"' in launcher
    assert "127.7.0.2" in launcher and "--add-opens=java.base/java.lang=ALL-UNNAMED" in launcher
    assert "${HADOOP_HOME}" in launcher  # filled in by the agent
    assert {"hadoop", "hdfs", "yarn", "mapred"} <= set(rendered)


def test_the_launcher_sources_hadoop_env_as_shell_and_survives_unset_variables(tmp_path: Path) -> None:
    """hadoop-env as EMR's export classification: "$HADOOP_CLASSPATH:..." adds to a variable
    that is not set (the launcher runs with `set -u`), quotes and `$(...)` stay text."""
    v = view(user={"hadoop-env": {"HADOOP_CLASSPATH": '$HADOOP_CLASSPATH:/extra "dir" $(id)'}})
    node = NodeView(node_id="n-2", role=NodeRole.MASTER, address="127.7.0.2", directory=str(tmp_path), instance_type="local.small")
    props, _ = effective_properties(v)
    values = {"HADOOP_HOME": "/opt/hadoop home", "JAVA_HOME": "/opt/jdk", "HADOOP_CDS_OPTS": ""}
    for spec in hc.launcher_files(node, props):
        path = Path(spec.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(substitute(spec.content, values, LITERAL.get(spec.format, str)))
        path.chmod(spec.mode)
    out = subprocess.run([f"{tmp_path}/bin/hadoop", "classpath"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (f"/opt/hadoop home/lib/*:/opt/hadoop home/classes:{tmp_path}/conf/hadoop"
                                  '::/extra "dir" $(id)')  # the unset variable is empty, as in any shell


def test_spark_on_yarn_sizes_executors_to_fit_beside_an_application_master() -> None:
    v = view()
    props = get_service("spark").default_properties(v)["spark-defaults"]
    assert props["spark.master"] == "yarn" and props["spark.dynamicAllocation.initialExecutors"] == "2"
    assert props["spark.dynamicAllocation.enabled"] == "true" and "spark.executor.instances" not in props
    assert props["spark.decommission.enabled"] == "true"
    assert props["spark.yarn.jars"] == "local:${SPARK_HOME}/jars/*"
    executor = yarn_executor_mib(v)
    am_container = 640  # 256 MiB + 384 MiB overhead
    assert props["spark.yarn.am.memory"] == "256m"
    assert executor + max(384, executor // 10) + am_container <= 3072  # an executor on each node, one beside the AM
    assert executor >= 1792
    assert "spark.driver.host" not in props  # on YARN the driver's address depends on where it runs
    assert props["spark.eventLog.dir"] == "hdfs://127.7.0.2:8020/spark-history"
    # the driver plugin that orders the AM's UI filter and the UI's start, from Corral's classes
    assert props["spark.plugins.defaultList"] == "io.corral.spark.AmFilterBarrier"
    assert "${HADOOP_HOME}/classes" in props["spark.driver.extraClassPath"].split(":")


def test_mapreduce_tasks_fit_the_nodemanagers() -> None:
    mapred = get_service("mapreduce").default_properties(view())["mapred-site"]
    task = int(mapred["mapreduce.map.memory.mb"])
    assert task % MIN_ALLOCATION_MIB == 0 and 512 <= task <= 3072
    assert mapred["mapreduce.application.classpath"].startswith("$HADOOP_CONF_DIR,")
    am_opts = mapred["yarn.app.mapreduce.am.command-opts"].split()
    assert am_opts[0] == f"-Xmx{int(mapred['yarn.app.mapreduce.am.resource.mb']) * 4 // 5}m"  # fits its container
    assert "-XX:TieredStopAtLevel=1" in am_opts


@pytest.mark.parametrize("services, groups, loc, message", [
    (["mapreduce", "spark"], None, ["services", 0], "mapreduce requires yarn"),
    (["yarn"], None, ["services", 0], "yarn requires hdfs"),
    (["hdfs", "yarn"], [{"role": "MASTER", "instance_type": "local.small", "count": 1},
                        {"role": "TASK", "instance_type": "local.small", "count": 1}], None, "HDFS needs at least 1 CORE node"),
])
def test_bad_combinations_are_refused(services: list[str], groups: list[dict] | None, loc: list | None, message: str) -> None:
    spec = make_spec(services=services, **({"node_groups": groups} if groups else {}))
    errors = validate_services(spec)
    assert any(message in e.msg for e in errors), errors
    if loc:
        assert any(list(e.loc) == loc for e in errors), errors


def test_default_services_are_hadoop_and_spark_in_dependency_order() -> None:
    data = {"name": "x", "node_groups": [{"role": "MASTER", "instance_type": "local.small", "count": 1},
                                         {"role": "CORE", "instance_type": "local.small", "count": 1}]}
    from corral.domain.spec import ClusterSpec

    assert ClusterSpec.model_validate(data).services == list(ALL)
    shuffled = ClusterSpec.model_validate({**data, "services": ["SPARK", "mapreduce", "hdfs", "yarn"]})
    assert shuffled.services_in_order() == list(ALL)


def test_hive_runs_a_metastore_and_the_sql_endpoint_on_the_master() -> None:
    v = view(services=(*ALL, "hive"))
    assert placement(v)["n-2"][-2:] == ["hive-metastore", "spark-thriftserver"]
    assert "hive-metastore" not in placement(v)["n-3"]
    spark = get_service("spark").default_properties(v)["spark-defaults"]
    assert spark["spark.sql.catalogImplementation"] == "hive"
    assert spark["spark.hadoop.hive.metastore.uris"] == "thrift://127.7.0.2:9083"
    hive = site(files(v, v.nodes[0])["hive-site.xml"])
    assert hive["hive.metastore.warehouse.dir"] == "hdfs://127.7.0.2:8020/user/hive/warehouse"
    assert hive["javax.jdo.option.ConnectionURL"].startswith("jdbc:derby:;databaseName=/nodes/n-2/data/hive/")
    assert "spark.sql.catalogImplementation" not in get_service("spark").default_properties(view())["spark-defaults"]


def test_hive_needs_hdfs_and_spark() -> None:
    errors = validate_services(make_spec(services=["spark", "hive"]))
    assert [(list(e.loc), e.msg) for e in errors] == [(["services", 1], "hive requires hdfs")]


@pytest.mark.parametrize("component", ["namenode", "spark-history-server"])
def test_start_scripts_read_node_paths_as_data(tmp_path: Path, component: str) -> None:
    """The NameNode's format-once and the History Server's log-directory script run under
    bash with Corral's paths as arguments: a node directory with shell syntax in its name
    ($, quotes, backticks, spaces) reaches the tools exactly."""
    odd = str(tmp_path / "a $HOME \"q\" `x` 'b'")
    master = NodeView(node_id="n-2", role=NodeRole.MASTER, address="127.7.0.2", directory=odd, instance_type="local.small")
    v = ClusterView(cluster_id="c-test", release="corral-1.0", services=ALL, nodes=(master, node(3, NodeRole.CORE, "local.medium")),
                    user_configurations={})
    props, _ = effective_properties(v)
    (spec,) = [c for s in v.services for c in get_service(s).components(v, master, props) if c.name == component]
    assert spec.argv[:2] == ["/bin/bash", "-c"]
    record = tmp_path / "calls"
    fake = tmp_path / "fake-tool"  # stands for Corral's hdfs launcher and for spark-class
    fake.write_text(f'#!/bin/sh\nprintf "%s|" "$(basename "$0")" "$@" >> {record}; echo >> {record}\n')
    fake.chmod(0o755)
    hdfs = hc.tool(master, "hdfs")
    argv = [fake.as_posix() if a in (hdfs, "${SPARK_HOME}/bin/spark-class") else a for a in spec.argv]
    assert hdfs not in argv, argv  # the tool is an argument, so it could be swapped
    subprocess.run(argv, check=True, timeout=30)
    calls = record.read_text().splitlines()
    if component == "namenode":
        name_dir = master.path("data", "hdfs", "name")
        assert calls == ["fake-tool|namenode|-format|-nonInteractive|-clusterId|CID-c-test|",
                         "fake-tool|namenode|"], (calls, name_dir)
        Path(name_dir, "current").mkdir(parents=True)
        Path(name_dir, "current", "VERSION").write_text("formatted\n")
        record.unlink()
        subprocess.run(argv, check=True, timeout=30)
        assert record.read_text().splitlines() == ["fake-tool|namenode|"]  # formatted once
    else:
        conf = master.path("conf", "spark") + "/spark-defaults.conf"
        assert calls == ["fake-tool|dfs|-mkdir|-p|/spark-history|",
                         f"fake-tool|org.apache.spark.deploy.history.HistoryServer|--properties-file|{conf}|"]
