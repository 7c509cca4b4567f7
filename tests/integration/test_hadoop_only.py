"""A Hadoop-only cluster (HDFS + YARN + MAPREDUCE, no Spark) runs a MapReduce job."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from tests.integration.conftest import ControlPlaneProcess

pytestmark = pytest.mark.integration


def test_hadoop_only_cluster_runs_wordcount(shared_cp: ControlPlaneProcess, tmp_path: Path) -> None:
    cluster = shared_cp.create({"name": "hadoop-only", "services": ["hdfs", "yarn", "mapreduce"], "node_groups": [
        {"role": "MASTER", "instance_type": "local.small", "count": 1},
        {"role": "CORE", "instance_type": "local.medium", "count": 1}]})
    cid = cluster["id"]
    try:
        cluster = shared_cp.wait_cluster(cid, ("WAITING",), timeout=180)
        daemons = {name for n in cluster["nodes"] for name in n["components"]}
        assert daemons == {"namenode", "datanode", "resourcemanager", "web-proxy", "nodemanager", "jobhistoryserver"}
        assert set(cluster["web_uis"]) == {"namenode", "resourcemanager", "jobhistory"}
        text = "\n".join(f"w{i % 7} w{i % 3} common" for i in range(3000)) + "\n"
        expected = collections.Counter(text.split())
        (tmp_path / "words.txt").write_text(text)
        put = shared_cp.add_step(cid, "SHELL", [f"hdfs dfs -mkdir -p /in && hdfs dfs -put {tmp_path / 'words.txt'} /in/"])
        wc = shared_cp.add_step(cid, "HADOOP_JAR", ["hadoop-mapreduce-examples.jar", "wordcount", "/in", "/out"])
        cat = shared_cp.add_step(cid, "SHELL", ["hdfs dfs -cat /out/part-r-*"])
        for step in (put, wc, cat):
            done = shared_cp.wait_step(cid, step["id"], timeout=300)
            assert done["status"] == "COMPLETED", shared_cp.log(cid, step["id"], "stderr")[-3000:]
        counts = {w: int(n) for w, n in (line.split("\t") for line in shared_cp.log(cid, cat["id"]).splitlines())}
        assert counts == dict(expected)
        spark = shared_cp.http.post(f"/clusters/{cid}/steps", json={"steps": [{"type": "SPARK", "args": ["/x.py"]}]})
        assert spark.status_code == 422 and "need the spark service" in spark.text
    finally:
        shared_cp.terminate(cid)
