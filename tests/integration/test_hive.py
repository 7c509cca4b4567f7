"""HIVE: a shared metastore and the SQL endpoint (Spark Thrift Server) on a real cluster.
A table one Spark step creates is visible to the next step, to beeline, to PyHive (a
DB-API client) and to ``corral sql``. The cluster's whole life, with every kind of step,
leaves nothing in the host's /tmp."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from pyhive import hive

from tests.integration.conftest import HADOOP_SPEC, ControlPlaneProcess, class_data_archive_use, cluster_processes
from tests.integration.links import LinkCheck

pytestmark = pytest.mark.integration


TMP = Path("/tmp")  # Java's java.io.tmpdir default on Linux, whatever TMPDIR says


def tmp_leftovers() -> set[str]:
    """What is in the host's /tmp, and the JVM performance-data files (``hsperfdata_<user>/
    <pid>``) of processes that no longer run. Java keeps these in /tmp whatever
    java.io.tmpdir says; a JVM removes its own as it exits, and one that is killed leaves it
    to the next JVM started on the host, which removes those of every process that is gone
    (HotSpot's perfMemory clean-up): a ``java -version`` first does that here."""
    subprocess.run([shutil.which("java") or "java", "-version"], capture_output=True, check=True, timeout=60)
    found = {entry.name for entry in TMP.iterdir()}
    for perf in TMP.glob("hsperfdata_*/*"):
        if not (perf.name.isdigit() and psutil.pid_exists(int(perf.name))):
            found.add(f"{perf.parent.name}/{perf.name}")
    return found


def test_tables_are_shared_by_steps_and_the_sql_endpoint(shared_cp: ControlPlaneProcess, tmp_path: Path) -> None:
    # The default metastore (embedded Derby) with the endpoint on YARN; standalone Spark's is
    # test_data's first cluster, an external metastore its second.
    before = tmp_leftovers()
    cluster = shared_cp.create({**HADOOP_SPEC, "name": "hive", "services": ["hdfs", "yarn", "mapreduce", "spark", "hive"]})
    cid = cluster["id"]
    try:
        cluster = shared_cp.wait_cluster(cid, ("WAITING",), timeout=240)
        master = next(n for n in cluster["nodes"] if n["role"] == "MASTER")
        assert {"hive-metastore", "spark-thriftserver"} <= set(master["components"])
        # The metastore and the endpoint's driver (spark-submit) use the Spark class-data archive.
        assert class_data_archive_use(cid, {"HiveMetaStore", "SparkSubmit"}) == {"HiveMetaStore": True, "SparkSubmit": True}
        rows = [("eu", 3), ("us", 5), ("eu", 4), ("apac", 11), ("us", 1)]
        writer = tmp_path / "make_table.py"
        # The driver and each executor's Python worker leave a temporary file behind: it must
        # land in the node's or the container's directory, not in /tmp.
        writer.write_text(
            "import tempfile\nfrom pyspark.sql import SparkSession\n"
            "spark = SparkSession.builder.appName('make-table').getOrCreate()\n"
            "tempfile.mkstemp(prefix='corral-test-driver-')\n"
            "spark.sparkContext.parallelize(range(4), 4).foreach(lambda _: tempfile.mkstemp(prefix='corral-test-worker-'))\n"
            "spark.sql('CREATE TABLE sales (region STRING, amount INT) USING parquet')\n"
            f"spark.createDataFrame({rows!r}, 'region string, amount int').write.insertInto('sales')\n")
        query = ('beeline -u "$HIVE_JDBC_URL" -n hadoop --silent=true --showHeader=false --outputformat=csv2 '
                 '-e "SELECT region, SUM(amount) FROM sales GROUP BY region ORDER BY region"')
        report = tmp_path / "report.sql"
        report.write_text("SELECT region, SUM(amount) FROM sales GROUP BY region ORDER BY region;\n")
        # A streaming task leaves a temporary file too (its container's TMPDIR).
        mapper = tmp_path / "mapper.py"
        mapper.write_text("import sys, tempfile\ntempfile.mkstemp(prefix='corral-test-task-')\n"
                          "for line in sys.stdin:\n    print(line, end='')\n")
        # A SHELL step's own temporary file, and a jar that `hadoop jar` unpacks (RunJar's
        # hadoop-unjar* directory) while a MapReduce job runs.
        shell = ('mktemp && hadoop jar "$HADOOP_HOME/hadoop-mapreduce-examples.jar" pi 1 10 >/dev/null '
                 '&& hdfs dfs -put -f /etc/hostname /words')
        # The SPARK_SQL step is the next Spark application after the writer: it reads the
        # table through the metastore, as beeline and HIVE do through the SQL endpoint.
        steps = [shared_cp.add_step(cid, "SPARK", [str(writer)]), shared_cp.add_step(cid, "SPARK_SQL", [str(report)]),
                 shared_cp.add_step(cid, "SHELL", [query]),
                 shared_cp.add_step(cid, "HIVE", ["SELECT region, SUM(amount) AS total FROM sales GROUP BY region"]),
                 shared_cp.add_step(cid, "SHELL", [shell]),
                 shared_cp.add_step(cid, "STREAMING", ["-mapper", str(mapper), "-input", "/words", "-output", "/copied"])]
        for step in steps:
            done = shared_cp.wait_step(cid, step["id"], timeout=300)
            assert done["status"] == "COMPLETED", shared_cp.log(cid, step["id"], "stderr")[-3000:]
        expected = {"apac": 11, "eu": 7, "us": 6}
        spark_sql = shared_cp.log(cid, steps[1]["id"]).strip().splitlines()
        assert spark_sql == ["apac\t11", "eu\t7", "us\t6"]
        lines = [line.split(">")[-1].strip() for line in shared_cp.log(cid, steps[2]["id"]).splitlines()]
        got = {r: int(t) for r, t in (line.split(",") for line in lines if line.count(",") == 1)}
        assert got == expected
        # beeline echoes its prompt before the first line of output with -e
        hive = [line.split("> ", 1)[-1].split("\t") for line in shared_cp.log(cid, steps[3]["id"]).strip().splitlines()]
        assert hive[0] == ["region", "total"] and {r: int(t) for r, t in hive[1:]} == expected
        check_sql_clients(shared_cp, shared_cp.cluster(cid), expected, tmp_path)
        # On YARN the endpoint's UI sends browsers to its application's page on the web proxy.
        links = LinkCheck({n["address"] for n in cluster["nodes"]})
        links.visit(cluster["web_uis"]["sql-endpoint-ui"], "the SQL endpoint's web UI")
        links.close()
        assert not links.failures, links.failures
    finally:
        shared_cp.terminate(cid)
    assert cluster_processes(cid) == []
    # Nothing is ignored but the performance-data files of JVMs still running (a concurrent
    # process's: this cluster's are gone). pytest's own pytest-of-<user> directory, where this
    # test's files are, exists before the first listing.
    assert tmp_leftovers() - before == set()


def check_sql_clients(cp: ControlPlaneProcess, cluster: dict[str, Any], expected: dict[str, int], tmp_path: Path) -> None:
    """PyHive straight at the endpoint the API names, then ``corral sql`` in each output format."""
    url = cluster["endpoints"]["sql"]
    assert url == f"jdbc:hive2://{cluster['master_address']}:10000/default"
    with hive.connect(host=cluster["master_address"], port=10000, username="hadoop") as conn:
        cursor = conn.cursor()
        cursor.execute("SELECT region, SUM(amount) AS total FROM sales GROUP BY region")
        assert [d[0] for d in cursor.description] == ["region", "total"]
        assert dict(cursor.fetchall()) == expected

    corral = str(Path(sys.executable).with_name("corral"))

    def sql(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([corral, "sql", cluster["id"], *args], env=cp.env, capture_output=True, text=True, timeout=120)

    query = "SELECT region, SUM(amount) AS total FROM sales GROUP BY region ORDER BY region"
    as_json = sql("-e", query, "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert {r["region"]: r["total"] for r in json.loads(as_json.stdout)} == expected
    script = tmp_path / "script.sql"
    script.write_text("-- two statements; the first returns no rows\n"
                      "CREATE TEMPORARY VIEW big AS SELECT * FROM sales WHERE amount > 3;\n"
                      "SELECT region, amount FROM big ORDER BY amount;\n")
    as_csv = sql("-f", str(script), "-o", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.splitlines() == ["region,amount", "eu,4", "us,5", "apac,11"]
    as_table = sql("-e", query)
    assert as_table.returncode == 0 and "apac" in as_table.stdout and "3 rows" in as_table.stdout, as_table.stdout
    missing = sql("-e", "SELECT nope FROM sales")
    assert missing.returncode == 2, (missing.stdout, missing.stderr)
    lines = missing.stderr.splitlines()
    assert len(lines) == 1 and "nope" in lines[0] and "UNRESOLVED_COLUMN" in lines[0], missing.stderr
