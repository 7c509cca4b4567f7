"""HIVE: a shared metastore and the SQL endpoint (Spark Thrift Server) on a real cluster.
A table one Spark step creates is visible to the next step, to beeline, to PyHive (a
DB-API client) and to ``corral sql``. Every ``corral`` command exits with the same status
whatever its output format. The cluster's whole life, with every kind of step, leaves
nothing in the host's /tmp.

The tests share one Hive-on-YARN cluster (starting one takes about a minute of the CI box's
two cores), created with ``corral cluster create``, in file order; the last terminates it.
(On one local.medium CORE node instead, the SQL endpoint's executors, kept 30 s after a
query, hold up the next YARN step: test_tight_clusters proves that shape on its own.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import psutil
import psycopg
import pytest
from pyhive import hive

from tests.integration.conftest import (ENDED, HADOOP_SPEC, HTTP, ControlPlaneProcess, class_data_archive_use,
                                        cluster_processes, free_port, run_cli, with_test_jvm_options)
from tests.integration.links import LinkCheck
from tests.postgres import PostgresServer

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


@dataclass
class HiveCluster:
    id: str
    spec: Path  # the cluster file it was created from, with a client token
    created: subprocess.CompletedProcess[str]  # `corral cluster create -f spec` (-o table)
    tmp_before: set[str]  # tmp_leftovers() before it was created


@pytest.fixture(scope="module")
def hive_cluster(shared_cp: ControlPlaneProcess, postgres_server: PostgresServer,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveCluster]:
    """One WAITING 1 MASTER + 2 CORE cluster with HDFS, YARN, MapReduce, Spark and Hive (the
    default metastore, embedded Derby, with the endpoint on YARN; standalone Spark's is
    test_data's first cluster, an external metastore its second). The PostgreSQL server that
    a test here imports from is started first: its socket directory is in /tmp."""
    before = tmp_leftovers()
    path = tmp_path_factory.mktemp("hive") / "cluster.json"
    path.write_text(json.dumps(with_test_jvm_options({
        **HADOOP_SPEC, "name": "hive", "services": ["hdfs", "yarn", "mapreduce", "spark", "hive"],
        "client_token": f"hive-{free_port()}"})))
    created = run_cli(shared_cp.env, "cluster", "create", "-f", str(path), timeout=600)
    ours = [c for c in shared_cp.clusters() if c["name"] == "hive" and c["status"] not in ENDED]
    assert created.returncode == 0 and len(ours) == 1, (created.stdout + created.stderr, ours)
    cluster = HiveCluster(ours[0]["id"], path, created, before)
    yield cluster
    if shared_cp.cluster(cluster.id)["status"] not in ENDED:  # the last test did not run or failed
        shared_cp.terminate(cluster.id)


@pytest.mark.timeout(1200)
def test_tables_are_shared_by_steps_and_the_sql_endpoint(shared_cp: ControlPlaneProcess, hive_cluster: HiveCluster,
                                                         tmp_path: Path) -> None:
    cid = hive_cluster.id
    cluster = shared_cp.wait_cluster(cid, ("WAITING",))
    master = next(n for n in cluster["nodes"] if n["role"] == "MASTER")
    assert {"hive-metastore", "spark-thriftserver"} <= set(master["components"])
    # The metastore and the endpoint's driver (spark-submit) use the Spark class-data archive.
    assert class_data_archive_use(cid, {"NodeBoundMetaStore", "SparkSubmit"}) == {"NodeBoundMetaStore": True, "SparkSubmit": True}
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


def both_ways(env: dict[str, str], *args: str, formats: tuple[str, ...] = ("table", "json"),
              timeout: float = 400) -> tuple[list[int], Any]:
    """The command's exit code with each ``-o`` format, and what it printed as JSON (None
    when it printed none). Options go before a step's ``--``."""
    cut = args.index("--") if "--" in args else len(args)
    codes, printed = [], None
    for fmt in formats:
        result = run_cli(env, *args[:cut], "-o", fmt, *args[cut:], timeout=timeout)
        codes.append(result.returncode)
        assert "Traceback" not in result.stderr, result.stderr
        if fmt == "json" and result.stdout.strip():
            printed = json.loads(result.stdout)
    return codes, printed


@pytest.mark.timeout(2400)
def test_exit_status_is_the_same_with_every_output_format(shared_cp: ControlPlaneProcess, hive_cluster: HiveCluster,
                                                          postgres_server: PostgresServer, tmp_path: Path) -> None:
    """Issue 10, section 7: `cluster create -f bad.yaml` exited 1, `... -o json` 0 while
    printing TERMINATED_WITH_ERRORS. Each command runs with -o table and -o json (and csv
    for sql); 0 when done as asked, 1 when it ran and failed, 2 for bad input."""
    env = {**shared_cp.env, "CORRAL_DB_PASSWORD": postgres_server.password}
    fail = tmp_path / "fail.sh"
    fail.write_text("#!/bin/bash\necho 'bootstrap says no' >&2\nexit 7\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad-bootstrap\nservices: [spark]\nnode_groups:\n"
                   "  - {role: MASTER, instance_type: local.small, count: 1}\n"
                   "  - {role: CORE, instance_type: local.small, count: 1}\n"
                   "bootstrap_actions:\n  - {name: fail, path: ./fail.sh}\n")
    table = run_cli(env, "cluster", "create", "-f", str(bad))
    assert table.returncode == 1 and "TERMINATED_WITH_ERRORS" in table.stdout, table.stdout + table.stderr
    as_json = run_cli(env, "cluster", "create", "-f", str(bad), "-o", "json")
    failed = json.loads(as_json.stdout)
    assert failed["status"] == "TERMINATED_WITH_ERRORS" and as_json.returncode == 1, as_json.stderr
    assert "exited with code 7" in failed["state_change_reason"]["message"], failed["state_change_reason"]
    # terminating a cluster that has failed: it has ended, its nodes are released
    assert both_ways(env, "cluster", "terminate", failed["id"], "--wait")[0] == [0, 0]
    assert cluster_processes(failed["id"]) == []

    # The module's cluster, created from a file with a client token: created again, it is the same cluster.
    assert hive_cluster.created.returncode == 0, hive_cluster.created.stdout + hive_cluster.created.stderr
    codes, cluster = both_ways(env, "cluster", "create", "-f", str(hive_cluster.spec))
    assert codes == [0, 0] and cluster["status"] == "WAITING" and cluster["id"] == hive_cluster.id
    cid = cluster["id"]
    assert both_ways(env, "cluster", "create", "-f", str(hive_cluster.spec), "--no-wait")[0] == [0, 0]
    assert both_ways(env, "cluster", "describe", cid)[0] == [0, 0]
    assert both_ways(env, "cluster", "describe", "c-nothere")[0] == [2, 2]

    # steps: completed, failed, queued, cancelled, and a cancel of one that has ended
    codes, ok = both_ways(env, "step", "add", cid, "--type", "shell", "--wait", "--", "true")
    assert codes == [0, 0] and ok["status"] == "COMPLETED"
    codes, bad_step = both_ways(env, "step", "add", cid, "--type", "shell", "--wait", "--", "echo no >&2; exit 3")
    assert codes == [1, 1] and bad_step["status"] == "FAILED"
    assert both_ways(env, "step", "add", cid, "--type", "shell", "--wait", "--", "/no/such/script.sh")[0] == [2, 2]
    codes, sleeper = both_ways(env, "step", "add", cid, "--type", "shell", "--", "sleep 300")
    assert codes == [0, 0]
    running, pending = [s for s in shared_cp.steps(cid) if s["args"] == ["sleep 300"]]
    assert run_cli(env, "step", "cancel", cid, pending["id"]).returncode == 0
    assert run_cli(env, "step", "cancel", cid, running["id"], "-o", "json").returncode == 0
    assert both_ways(env, "step", "cancel", cid, ok["id"])[0] == [2, 2]  # COMPLETED: nothing to cancel
    assert shared_cp.wait_step(cid, running["id"])["status"] == "CANCELLED"

    # data import and export (Spark jobs): one that works, one whose source is not there
    db = postgres_server.create_database()
    with psycopg.connect(host="127.0.0.1", port=postgres_server.port, user="corral",
                         password=postgres_server.password, dbname=db, autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT g AS id, 'n' || g AS name FROM generate_series(1, 3) g")
    jdbc = f"jdbc:postgresql://127.0.0.1:{postgres_server.port}/{db}"
    # (one import, as json: the export below and the steps above compare both formats)
    done = run_cli(env, "data", "import", cid, "--from", jdbc, "--table", "t", "--user", "corral",
                   "--to", "hive:t_json", "--wait", "-o", "json", timeout=600)
    assert done.returncode == 0 and json.loads(done.stdout)["status"] == "COMPLETED", done.stdout + done.stderr
    codes, export = both_ways(env, "data", "export", cid, "--from", "hive:no_such_table", "--to", jdbc,
                              "--table", "out", "--user", "corral", "--wait", timeout=600)
    assert codes == [1, 1] and export["status"] == "FAILED", export

    # HDFS: a listing, a missing path, and a directory with more entries than one
    # NameNode listing batch (dfs.ls.limit, 1000): WebHDFS's LISTSTATUS streams them all
    many = shared_cp.add_step(cid, "SHELL", ["hdfs dfs -mkdir -p /many/d{0000..1000}"])
    assert shared_cp.wait_step(cid, many["id"])["status"] == "COMPLETED", shared_cp.log(cid, many["id"], "stderr")
    assert both_ways(env, "fs", cid, "ls", "/")[0] == [0, 0]
    assert both_ways(env, "fs", cid, "ls", "/no/such/path")[0] == [2, 2]
    codes, listed = both_ways(env, "fs", cid, "ls", "/many")
    assert codes == [0, 0] and len(listed) == 1001

    # SQL: a query that runs, one the endpoint refuses (no such table: SQLSTATE 42P01),
    # one that fails while it runs (raise_error: P0001); results past one fetch (1000 rows)
    sql_formats = ("table", "json", "csv")
    codes, rows = both_ways(env, "sql", cid, "-e", "SELECT * FROM t_json ORDER BY id", formats=sql_formats)
    assert codes == [0, 0, 0] and rows == [{"id": 1, "name": "n1"}, {"id": 2, "name": "n2"}, {"id": 3, "name": "n3"}]
    assert both_ways(env, "sql", cid, "-e", "SELECT * FROM no_such_table", formats=sql_formats)[0] == [2, 2, 2]
    assert both_ways(env, "sql", cid, "-e", "SELECT raise_error('boom')", formats=sql_formats)[0] == [1, 1, 1]
    codes, rows = both_ways(env, "sql", cid, "-e", "SELECT id FROM range(1001)", formats=("json",))
    assert codes == [0] and [r["id"] for r in rows] == list(range(1001))


def test_a_node_holding_the_sql_endpoints_master_leaves_without_waiting_for_the_timeout(
        shared_cp: ControlPlaneProcess, hive_cluster: HiveCluster) -> None:
    """The ResourceManager keeps a decommissioning node until every application that ran
    there ends, and the SQL endpoint's never does; its ApplicationMaster, if on the node,
    would stay there until the one-hour timeout. Scaling in exactly that node right after a
    query: its executors leave (dynamic allocation, 30 s idle), then Corral ends YARN's
    wait, and the RM starts the same application's next attempt on a node in service. The
    node is gone in a couple of minutes, with HDFS's blocks re-replicated, and the endpoint
    keeps its application, its tables and its answers."""
    cid = hive_cluster.id
    grown = shared_cp.http.patch(f"/clusters/{cid}/node-groups/CORE", json={"count": 3})
    assert grown.status_code == 202, grown.text
    shared_cp.wait_for(lambda: shared_cp.http.get(f"/clusters/{cid}/node-groups/CORE").json()["status"] == "RUNNING"
                       and sum(n["status"] == "RUNNING" for n in shared_cp.cluster(cid)["nodes"]
                               if n["group"] == "CORE") == 3, 240, "the third CORE node")
    rm = f"http://{shared_cp.cluster(cid)['master_address']}:8088/ws/v1/cluster/apps"

    def endpoints() -> list[dict[str, Any]]:
        return [a for a in (HTTP.get(f"{rm}?states=RUNNING").json().get("apps") or {}).get("app", [])
                if a["name"].startswith("Corral SQL endpoint")]

    def endpoint() -> dict[str, Any]:
        (app,) = endpoints()
        return app

    before = endpoint()
    # 48 tasks of 0.5 s: dynamic allocation asks for executors on every node, the new one too.
    query = ("SELECT COUNT(*) AS n FROM range(0, 48, 1, 48) "  # true for every row, after a 0.5 s sleep
             "WHERE length(coalesce(reflect('java.lang.Thread', 'sleep', CAST(500 AS BIGINT)), '')) >= 0")
    done = run_cli(shared_cp.env, "sql", cid, "-e", query, "-o", "json", timeout=300)
    assert done.returncode == 0 and json.loads(done.stdout) == [{"n": 48}], done.stdout + done.stderr
    am_host = before["amHostHttpAddress"].rsplit(":", 1)[0]
    (leaver,) = [n for n in shared_cp.cluster(cid)["nodes"] if n["address"] == am_host and n["status"] == "RUNNING"]
    assert leaver["group"] == "CORE", leaver
    removed = shared_cp.http.patch(f"/clusters/{cid}/node-groups/CORE", json={"count": 2, "nodes": [leaver["id"]]})
    assert removed.status_code == 202, removed.text  # the default timeout: one hour
    def row() -> dict[str, Any]:
        return next(n for n in shared_cp.cluster(cid)["nodes"] if n["id"] == leaver["id"])

    try:
        shared_cp.wait_for(lambda: row()["status"] == "TERMINATED", 300, "the node holding the endpoint's AM released")
    except AssertionError as exc:
        attempts = HTTP.get(f"{rm}/{before['id']}/appattempts").json()
        raise AssertionError(f"{exc}: {row()}; events {shared_cp.events(cid)[-12:]}; endpoint {endpoint()}; "
                             f"attempts {attempts}") from None
    mine = [e for e in shared_cp.events(cid) if e["node_id"] == leaver["id"]]
    released = [e for e in mine if e["code"] == "DECOMMISSION_RELEASED"]
    assert len(released) == 1 and "idle ApplicationMaster" in released[0]["message"], mine
    assert not [e for e in shared_cp.events(cid) if e["code"] == "DECOMMISSION_TIMEOUT"]
    # Same application, its next attempt on a node in service, still answering. Between
    # attempts the RM lists the application ACCEPTED, until the new ApplicationMaster registers.
    (after,) = shared_cp.wait_for(endpoints, 120, "the SQL endpoint's next attempt RUNNING")
    assert after["id"] == before["id"] and after["amHostHttpAddress"].rsplit(":", 1)[0] != am_host, after
    again = run_cli(shared_cp.env, "sql", cid, "-e", "SELECT * FROM t_json ORDER BY id", "-o", "json", timeout=120)
    assert again.returncode == 0 and [r["id"] for r in json.loads(again.stdout)] == [1, 2, 3], again.stdout + again.stderr
    fsck = shared_cp.add_step(cid, "SHELL", ["hdfs fsck / | tail -3"])
    assert shared_cp.wait_step(cid, fsck["id"])["status"] == "COMPLETED"
    assert "is HEALTHY" in shared_cp.log(cid, fsck["id"], "stdout")


def test_terminate_ends_every_process_and_leaves_nothing_in_tmp(shared_cp: ControlPlaneProcess,
                                                                 hive_cluster: HiveCluster) -> None:
    codes, ended = both_ways(shared_cp.env, "cluster", "terminate", hive_cluster.id, "--wait")
    assert codes == [0, 0] and ended["status"] == "TERMINATED"
    assert cluster_processes(hive_cluster.id) == []
    # Nothing is ignored but the performance-data files of JVMs still running (a concurrent
    # process's: this cluster's are gone). pytest's own pytest-of-<user> directory, where the
    # tests' files are, exists before the first listing.
    assert tmp_leftovers() - hive_cluster.tmp_before == set()
