"""The tightest clusters Corral accepts run every kind of step beside the services that
always run (the SQL endpoint holds a YARN ApplicationMaster for its whole life): a Spark
step in client and in cluster mode, a MapReduce step and SQL queries, on Hive clusters
with the smallest CORE nodes Corral sizes for — one local.medium, and two local.small —
and on standalone Spark with one local.small (corral.services.sizing; issue 10 §1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import HTTP, ControlPlaneProcess, cluster_processes

pytestmark = pytest.mark.integration

HIVE_ON_YARN = ["hdfs", "yarn", "mapreduce", "spark", "hive"]
JOB = ("from pyspark.sql import SparkSession\n"
       "spark = SparkSession.builder.getOrCreate()\n"
       "total = spark.sparkContext.parallelize(range(1, 100001), 4).map(lambda x: x * 2).sum()\n"
       "print('TOTAL', total)\n"
       "spark.createDataFrame([(i % 3, i) for i in range(30)], 'k int, v int').write.saveAsTable('tight')\n")


def spec(name: str, services: list[str], core: str, count: int) -> dict[str, Any]:
    return {"name": name, "services": services,
            "node_groups": [{"role": "MASTER", "instance_type": "local.small", "count": 1},
                            {"role": "CORE", "instance_type": core, "count": count}]}


def endpoint_application(cluster: dict[str, Any]) -> dict[str, Any]:
    apps = HTTP.get(f"http://{cluster['master_address']}:8088/ws/v1/cluster/apps").json()["apps"]["app"]
    (endpoint,) = [a for a in apps if a["name"].startswith("Corral SQL endpoint")]
    return endpoint


def run_every_step_type(cp: ControlPlaneProcess, cluster: dict[str, Any], tmp_path: Path, on_yarn: bool) -> None:
    cid = cluster["id"]
    job = tmp_path / "job.py"
    job.write_text(JOB)
    steps = [("client", cp.add_step(cid, "SPARK", [str(job)]))]
    if on_yarn:
        check = tmp_path / "check.py"
        check.write_text("from pyspark.sql import SparkSession\n"
                         "spark = SparkSession.builder.getOrCreate()\n"
                         "print('ROWS', spark.table('tight').count())\n")
        steps += [("cluster", cp.add_step(cid, "SPARK", ["--deploy-mode", "cluster", str(check)])),
                  ("mapreduce", cp.add_step(cid, "HADOOP_JAR", ["hadoop-mapreduce-examples.jar", "pi", "2", "200"]))]
    steps.append(("sql", cp.add_step(cid, "HIVE", ["SELECT k, SUM(v) AS s FROM tight GROUP BY k ORDER BY k"])))
    for kind, step in steps:
        done = cp.wait_step(cid, step["id"], timeout=420)
        assert done["status"] == "COMPLETED", (kind, done["state_message"], cp.log(cid, step["id"], "stderr")[-3000:])
    logs = {kind: cp.log(cid, step["id"]) for kind, step in steps}
    assert "TOTAL 10000100000" in logs["client"]
    if on_yarn:
        # The client-mode driver attached its UI after the AM's filter (io.corral.spark.AmFilterBarrier),
        # which the AM of a step beside the SQL endpoint sends while that driver is starting.
        assert "The ApplicationMaster's web UI filter is on the driver's UI handlers" in cp.log(cid, steps[0][1]["id"], "stderr")
    if on_yarn:
        # The driver ran in YARN: its output is in the aggregated logs, not the step's.
        cluster_step = cp.step(cid, steps[1][1]["id"])
        assert len(cluster_step["yarn_application_ids"]) == 1
        assert "Estimated value of Pi is 3." in logs["mapreduce"]
        # The SQL endpoint held its ApplicationMaster the whole time, and still does.
        assert endpoint_application(cp.cluster(cid))["state"] == "RUNNING"
    rows = [line.split("> ", 1)[-1].split("\t") for line in logs["sql"].strip().splitlines()]
    assert rows[0] == ["k", "s"] and [(int(k), int(s)) for k, s in rows[1:]] == [(0, 135), (1, 145), (2, 155)]


def check_yarn_sizes(cp: ControlPlaneProcess, cluster: dict[str, Any]) -> None:
    """What the ResourceManager reports matches the sizes Corral derived."""
    master = cluster["master_address"]
    nodes = HTTP.get(f"http://{master}:8088/ws/v1/cluster/nodes").json()["nodes"]["node"]
    configs = {c["classification"]: c["properties"] for c in cp.http.get(f"/clusters/{cluster['id']}/configurations").json()}
    offered = int(configs["yarn-site"]["yarn.nodemanager.resource.memory-mb"])
    assert all(n["usedMemoryMB"] + n["availMemoryMB"] == offered for n in nodes)
    endpoint = endpoint_application(cluster)
    assert endpoint["allocatedMB"] == 640  # its AM only, while idle: 256 MiB heap + 384 MiB overhead


@pytest.mark.parametrize(("core", "count"), [("local.medium", 1), ("local.small", 2)])
def test_hive_on_yarn_with_the_smallest_core_nodes(shared_cp: ControlPlaneProcess, tmp_path: Path, core: str,
                                                   count: int) -> None:
    cluster = shared_cp.create(spec(f"tight-{count}", HIVE_ON_YARN, core, count))
    cid = cluster["id"]
    try:
        cluster = shared_cp.wait_cluster(cid, ("WAITING",), timeout=300)
        check_yarn_sizes(shared_cp, cluster)
        run_every_step_type(shared_cp, cluster, tmp_path, on_yarn=True)
    finally:
        shared_cp.terminate(cid)
    assert cluster_processes(cid) == []


def test_standalone_hive_with_one_small_core_node(shared_cp: ControlPlaneProcess, tmp_path: Path) -> None:
    cluster = shared_cp.create(spec("tight-standalone", ["hdfs", "spark", "hive"], "local.small", 1))
    cid = cluster["id"]
    try:
        cluster = shared_cp.wait_cluster(cid, ("WAITING",), timeout=300)
        run_every_step_type(shared_cp, cluster, tmp_path, on_yarn=False)
    finally:
        shared_cp.terminate(cid)


def test_specs_that_could_never_run_a_step_are_refused(shared_cp: ControlPlaneProcess) -> None:
    resp = shared_cp.http.post("/clusters", json=spec("too-small", HIVE_ON_YARN, "local.small", 1))
    assert resp.status_code == 422
    (error,) = [e for e in resp.json()["detail"] if "SPARK" in e["msg"]]
    assert error["loc"][-3:] == ["node_groups", 1, "instance_type"]
    assert "beside the SQL endpoint's ApplicationMaster" in error["msg"]
    assert all(c["name"] != "too-small" for c in shared_cp.http.get("/clusters").json())
