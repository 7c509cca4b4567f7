"""HIVE: a shared metastore and the SQL endpoint (Spark Thrift Server) on a real cluster.
A table one Spark step creates is visible to the next step and to beeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import HADOOP_SPEC, ControlPlaneProcess, cluster_processes

pytestmark = pytest.mark.integration


def test_tables_are_shared_by_steps_and_the_sql_endpoint(shared_cp: ControlPlaneProcess, tmp_path: Path) -> None:
    cluster = shared_cp.create({**HADOOP_SPEC, "name": "hive", "services": ["hdfs", "yarn", "mapreduce", "spark", "hive"]})
    cid = cluster["id"]
    try:
        cluster = shared_cp.wait_cluster(cid, ("WAITING",), timeout=240)
        master = next(n for n in cluster["nodes"] if n["role"] == "MASTER")
        assert {"hive-metastore", "spark-thriftserver"} <= set(master["components"])
        rows = [("eu", 3), ("us", 5), ("eu", 4), ("apac", 11), ("us", 1)]
        writer = tmp_path / "make_table.py"
        writer.write_text(
            "from pyspark.sql import SparkSession\n"
            "spark = SparkSession.builder.appName('make-table').getOrCreate()\n"
            "spark.sql('CREATE TABLE sales (region STRING, amount INT) USING parquet')\n"
            f"spark.createDataFrame({rows!r}, 'region string, amount int').write.insertInto('sales')\n")
        reader = tmp_path / "read_table.py"
        reader.write_text(
            "from pyspark.sql import SparkSession\n"
            "spark = SparkSession.builder.appName('read-table').getOrCreate()\n"
            "print('rows', spark.table('sales').count())\n")
        query = ('beeline -u "$HIVE_JDBC_URL" -n hadoop --silent=true --showHeader=false --outputformat=csv2 '
                 '-e "SELECT region, SUM(amount) FROM sales GROUP BY region ORDER BY region"')
        report = tmp_path / "report.sql"
        report.write_text("SELECT region, SUM(amount) FROM sales GROUP BY region ORDER BY region;\n")
        steps = [shared_cp.add_step(cid, "SPARK", [str(writer)]), shared_cp.add_step(cid, "SPARK", [str(reader)]),
                 shared_cp.add_step(cid, "SHELL", [query]), shared_cp.add_step(cid, "SPARK_SQL", [str(report)]),
                 shared_cp.add_step(cid, "HIVE", ["SELECT region, SUM(amount) AS total FROM sales GROUP BY region"])]
        for step in steps:
            done = shared_cp.wait_step(cid, step["id"], timeout=300)
            assert done["status"] == "COMPLETED", shared_cp.log(cid, step["id"], "stderr")[-3000:]
        assert "rows 5" in shared_cp.log(cid, steps[1]["id"])
        expected = {"apac": 11, "eu": 7, "us": 6}
        lines = [line.split(">")[-1].strip() for line in shared_cp.log(cid, steps[2]["id"]).splitlines()]
        got = {r: int(t) for r, t in (line.split(",") for line in lines if line.count(",") == 1)}
        assert got == expected
        spark_sql = shared_cp.log(cid, steps[3]["id"]).strip().splitlines()
        assert spark_sql == ["apac\t11", "eu\t7", "us\t6"]
        # beeline echoes its prompt before the first line of output with -e
        hive = [line.split("> ", 1)[-1].split("\t") for line in shared_cp.log(cid, steps[4]["id"]).strip().splitlines()]
        assert hive[0] == ["region", "total"] and {r: int(t) for r, t in hive[1:]} == expected
    finally:
        shared_cp.terminate(cid)
    assert cluster_processes(cid) == []
