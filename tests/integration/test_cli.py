"""The ``corral`` command against real clusters: the main job, and the everyday commands.
(Its exit status with every output format is checked in test_hive, on that module's cluster.)"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import ControlPlaneProcess, cluster_processes, free_port, run_cli

pytestmark = pytest.mark.integration


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
