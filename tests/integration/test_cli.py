"""The ``corral`` command against real clusters: the main job, and the everyday commands."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.conftest import ControlPlaneProcess, cluster_processes, free_port, with_test_jvm_options
from tests.postgres import PostgresServer

pytestmark = pytest.mark.integration


def run_cli(env: dict[str, str], *args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def test_quickstart_starts_a_server_runs_pi_and_cleans_up(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "CORRAL_HOME": str(home), "CORRAL_PORT": str(free_port()),
           "CORRAL_LOCAL_SUBNET": "127.59.0.0/16"}
    env.pop("CORRAL_URL", None)
    try:
        result = run_cli(env, "quickstart", timeout=400)
        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        match = re.search(r"Pi is roughly ([0-9.]+)", out)
        assert match and abs(float(match.group(1)) - 3.14159) < 0.1, out
        # The quickstart cluster is Hadoop + Spark: pi.py ran on YARN.
        for ui, port in (("namenode", 9870), ("resourcemanager", 8088), ("jobhistory", 19888),
                         ("spark-history-server", 18080)):
            assert re.search(rf"{ui}\s+http://127\.59\.\d+\.\d+:{port}", out), (ui, out)
        cluster_id = re.search(r"Cluster (c-[a-z2-7]{8}) TERMINATED", out)
        assert cluster_id, out
        assert cluster_processes(cluster_id.group(1)) == []
        status = run_cli(env, "server", "status", "-o", "json")
        assert status.returncode == 0 and json.loads(status.stdout)["running"] is True
    finally:
        run_cli(env, "server", "stop")
    assert run_cli(env, "server", "status").returncode == 3


def test_cli_create_step_logs_describe_terminate(shared_cp: ControlPlaneProcess, tmp_path: Path) -> None:
    env = shared_cp.env
    spec = tmp_path / "cluster.yaml"
    spec.write_text(
        "name: from-yaml\n"
        "services: [spark]\n"
        "node_groups:\n"
        "  - {role: MASTER, instance_type: local.small, count: 1}\n"
        "  - {role: CORE, instance_type: local.small, count: 1}\n"
        "configurations:\n"
        "  - classification: spark-defaults\n"
        "    properties: {spark.sql.shuffle.partitions: 7}\n"
    )
    created = run_cli(env, "cluster", "create", "-f", str(spec), "--task-count", "1", "--task-type", "local.small",
                      "-p", "spark-defaults:spark.executor.memory=700m", "-o", "json")
    assert created.returncode == 0, created.stderr
    cluster: dict[str, Any] = json.loads(created.stdout)
    cid = cluster["id"]
    assert cluster["status"] == "WAITING"
    assert sorted(n["role"] for n in cluster["nodes"]) == ["CORE", "MASTER", "TASK"]
    task = next(n for n in cluster["nodes"] if n["role"] == "TASK")
    assert set(task["components"]) == {"spark-worker"}

    described = run_cli(env, "cluster", "describe", cid, "--configs", "-o", "json")
    configs = {c["classification"]: c for c in json.loads(described.stdout)["effective_configurations"]}
    defaults = configs["spark-defaults"]
    assert defaults["properties"]["spark.sql.shuffle.partitions"] == "7"
    assert defaults["properties"]["spark.executor.memory"] == "700m"
    assert set(defaults["user_set"]) == {"spark.sql.shuffle.partitions", "spark.executor.memory"}
    assert defaults["properties"]["spark.executor.cores"] == "1"  # derived from local.small

    table = run_cli(env, "cluster", "describe", cid, "--configs")
    assert "spark.executor.memory" in table.stdout and "user" in table.stdout

    script = tmp_path / "conf_check.py"
    script.write_text("from pyspark.sql import SparkSession\n"
                      "s = SparkSession.builder.getOrCreate()\n"
                      "print('partitions=' + s.conf.get('spark.sql.shuffle.partitions'))\n"
                      "print('count=%d' % s.range(1000).count())\n")
    ok = run_cli(env, "step", "add", cid, "--type", "spark", "--name", "conf", "--wait", "--", "conf_check.py", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    step_id = re.search(r"step (s-[a-z2-7]{8})", ok.stdout).group(1)  # type: ignore[union-attr]
    logs = run_cli(env, "step", "logs", cid, step_id)
    assert logs.stdout == "partitions=7\ncount=1000\n"
    assert "SparkContext" in run_cli(env, "step", "logs", cid, step_id, "--stderr").stdout

    failed = run_cli(env, "step", "add", cid, "--type", "shell", "--wait", "--", "echo no >&2; exit 4")
    assert failed.returncode == 1
    assert "FAILED" in failed.stdout and "exit code 4" in failed.stdout

    followed = run_cli(env, "step", "add", cid, "--type", "shell", "-o", "json", "--", "for i in 1 2 3; do echo $i; sleep 0.3; done")
    follow_id = json.loads(followed.stdout)["id"]
    assert run_cli(env, "step", "logs", cid, follow_id, "--follow").stdout == "1\n2\n3\n"

    listed = json.loads(run_cli(env, "step", "list", cid, "-o", "json").stdout)
    assert [s["status"] for s in listed] == ["COMPLETED", "FAILED", "COMPLETED"]
    assert cid in run_cli(env, "cluster", "list").stdout

    ended = run_cli(env, "cluster", "terminate", cid, "--wait", "-o", "json")
    assert json.loads(ended.stdout)["status"] == "TERMINATED"
    assert cid not in run_cli(env, "cluster", "list").stdout
    assert cid in run_cli(env, "cluster", "list", "--all").stdout
    assert cluster_processes(cid) == []


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
def test_exit_status_is_the_same_with_every_output_format(shared_cp: ControlPlaneProcess, postgres_server: PostgresServer,
                                                          tmp_path: Path) -> None:
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

    # One WAITING cluster for the rest: HDFS, standalone Spark, the SQL endpoint.
    good = tmp_path / "good.json"
    good.write_text(json.dumps(with_test_jvm_options({
        "name": "exit-codes", "services": ["hdfs", "spark", "hive"], "client_token": f"exit-codes-{free_port()}",
        "node_groups": [{"role": "MASTER", "instance_type": "local.small", "count": 1},
                        {"role": "CORE", "instance_type": "local.medium", "count": 1}]})))
    created = run_cli(env, "cluster", "create", "-f", str(good), timeout=600)
    assert created.returncode == 0, created.stdout + created.stderr
    codes, cluster = both_ways(env, "cluster", "create", "-f", str(good))  # the client token: the same cluster
    assert codes == [0, 0] and cluster["status"] == "WAITING"
    cid = cluster["id"]
    try:
        assert both_ways(env, "cluster", "create", "-f", str(good), "--no-wait")[0] == [0, 0]
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
    finally:
        codes, ended = both_ways(env, "cluster", "terminate", cid, "--wait")
    assert codes == [0, 0] and ended["status"] == "TERMINATED"
    assert cluster_processes(cid) == []
