"""The tightest clusters Corral accepts (corral.services.sizing; issue 10 §1): what each
must run beside the services that always run (the SQL endpoint holds a YARN
ApplicationMaster for its whole life). test_tight_clusters runs it on two local.small CORE
nodes and on standalone Spark with one local.small; test_data's second cluster is the
third shape, one local.medium CORE node on YARN, so that needs no cluster of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration.conftest import HTTP, ControlPlaneProcess

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
