"""Bad input is refused with the field at fault (HTTP 422/404, CLI exit 2) and creates nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import SMALL_SPEC, ControlPlaneProcess

pytestmark = pytest.mark.integration


def _groups(*groups: tuple[str, str, int]) -> list[dict[str, Any]]:
    return [{"role": r, "instance_type": t, "count": c} for r, t, c in groups]


BAD_SPECS = [
    ({"services": ["spark", "flink"]}, ["services", 1], "unknown service 'flink'"),
    ({"node_groups": _groups(("MASTER", "local.small", 1), ("CORE", "local.huge", 2))},
     ["node_groups", 1, "instance_type"], "unknown instance type 'local.huge'"),
    ({"node_groups": _groups(("CORE", "local.small", 2))}, ["node_groups"], "a MASTER group is required"),
    ({"node_groups": _groups(("MASTER", "local.small", 2), ("CORE", "local.small", 1))},
     ["node_groups", 0, "count"], "MASTER count must be 1"),
    ({"node_groups": _groups(("MASTER", "local.small", 1), ("CORE", "local.small", 0))},
     ["node_groups", 1, "count"], "at least 1 CORE"),
    ({"node_groups": _groups(("MASTER", "local.small", 1), ("CORE", "local.small", -1))},
     ["node_groups", 1, "count"], "greater than or equal to 0"),
    # Local files are the client's, uploaded before: a path alone is refused, existing or not.
    ({"bootstrap_actions": [{"path": "/does/not/exist.sh"}]}, ["bootstrap_actions", 0, "path"], "not uploaded"),
    ({"bootstrap_actions": [{"path": "/etc/hostname"}]}, ["bootstrap_actions", 0, "path"], "not uploaded"),
    ({"steps": [{"type": "SPARK", "args": ["/does/not/exist.py"]}]}, ["steps", 0, "args", 0], "not uploaded"),
    ({"configurations": [{"classification": "hdfs-site", "properties": {"a": "b"}}]},
     ["configurations", 0, "classification"], "unknown classification 'hdfs-site'"),
    ({"release": "emr-9.9"}, ["release"], "unknown release"),
    ({"services": ["mapreduce", "spark"]}, ["services", 0], "mapreduce requires yarn"),
    ({"services": ["hdfs", "yarn", "mapreduce"],
      "node_groups": _groups(("MASTER", "local.small", 1), ("CORE", "local.small", 0), ("TASK", "local.small", 1))},
     ["node_groups", 1, "count"], "HDFS needs at least 1 CORE node"),
    ({"steps": [{"type": "HADOOP_JAR", "args": ["hadoop-mapreduce-examples.jar", "pi", "1", "1"]}]},
     ["steps", 0, "type"], "HADOOP_JAR steps need the mapreduce service"),
    ({"bogus_field": 1}, ["bogus_field"], "Extra inputs are not permitted"),
    # Issue 10: what a classification's file format cannot carry, named by property.
    ({"configurations": [{"classification": "spark-defaults", "properties": {"spark.corral.test": "a\u0000b"}}]},
     ["configurations", 0, "properties", "spark.corral.test"], "the value contains a NUL character (U+0000) at offset 1"),
    ({"configurations": [{"classification": "spark-defaults", "properties": {"executor.memory": "1g"}}]},
     ["configurations", 0, "properties", "executor.memory"], "the name does not start with 'spark.'"),
    ({"configurations": [{"classification": "spark-env", "properties": {"X": "a\nb"}}]},
     ["configurations", 0, "properties", "X"], "a line break (U+000A)"),
    ({"configurations": [{"classification": "spark-defaults", "properties": {"spark.x": "{{secret:object_storage.secret_key}}"}}]},
     ["configurations", 0, "properties", "spark.x"], "Corral's secret placeholder"),
    ({"configurations": [{"classification": "spark-defaults", "properties": {"spark.x": None}}]},
     ["configurations", 0, "properties", "spark.x"], "Input should be a valid string"),
]


@pytest.mark.parametrize("override,loc,message", BAD_SPECS, ids=[str(b[1]) for b in BAD_SPECS])
def test_bad_cluster_spec_is_refused_naming_the_field(shared_cp: ControlPlaneProcess, override: dict[str, Any],
                                                     loc: list[Any], message: str) -> None:
    before = shared_cp.clusters()
    nodes_before = sorted((shared_cp.home / "nodes").rglob("*"))
    resp = shared_cp.http.post("/clusters", json={**SMALL_SPEC, **override})
    assert resp.status_code == 422, resp.text
    details = resp.json()["detail"]
    assert any(d["loc"] == ["body", *loc] and message in d["msg"] for d in details), details
    assert shared_cp.clusters() == before
    assert sorted((shared_cp.home / "nodes").rglob("*")) == nodes_before


def test_unknown_ids_are_404(shared_cp: ControlPlaneProcess, spark_cluster: dict[str, Any]) -> None:
    for method, path in [("GET", "/clusters/c-nothere"), ("POST", "/clusters/c-nothere/terminate"),
                         ("GET", "/clusters/c-nothere/steps"), ("GET", f"/clusters/{spark_cluster['id']}/steps/s-nothere"),
                         ("POST", f"/clusters/{spark_cluster['id']}/steps/s-nothere/cancel")]:
        resp = shared_cp.http.request(method, path)
        assert resp.status_code == 404, (path, resp.text)
        assert "not found" in resp.json()["detail"]


def test_bad_step_is_refused_and_not_queued(shared_cp: ControlPlaneProcess, spark_cluster: dict[str, Any]) -> None:
    cid = spark_cluster["id"]
    before = shared_cp.steps(cid)
    cases = [
        ([{"type": "SPARK", "args": ["--conf", "a=b", "/no/such/app.py", "x"]}], ["steps", 0, "args", 2], "not uploaded"),
        ([{"type": "SPARK", "args": ["--files", "/etc/hostname#h", "local:/x.py"]}], ["steps", 0, "args", 1],
         "--files entry /etc/hostname: not uploaded — upload it with PUT /api/v1/artifacts/{sha256} and name it in files"),
        ([{"type": "SPARK", "args": ["--master", "local", "/bin/true"]}], ["steps", 0, "args", 0], "--master is not allowed"),
        ([{"type": "SPARK", "args": []}], ["steps", 0, "args"], "no application"),
        ([{"type": "SHELL", "args": ["/no/such/script.sh"]}], ["steps", 0, "args", 0], "not uploaded"),
        ([{"type": "PIG", "args": ["x"]}], ["steps", 0, "type"], "Input should be"),
        ([{"type": "HIVE", "args": ["SELECT 1"]}], ["steps", 0, "type"], "HIVE steps need the hive service"),
        ([{"type": "SHELL", "args": ["true"], "action_on_failure": "EXPLODE"}], ["steps", 0, "action_on_failure"], "Input should be"),
    ]
    for steps, loc, message in cases:
        resp = shared_cp.http.post(f"/clusters/{cid}/steps", json={"steps": steps})
        assert resp.status_code == 422, resp.text
        assert any(d["loc"] == ["body", *loc] and message in d["msg"] for d in resp.json()["detail"]), resp.json()
    assert shared_cp.steps(cid) == before


def _cli(cp: ControlPlaneProcess, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corral.cli.main", *args], env=cp.env, capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_cli_bad_input_exits_2_with_one_line(shared_cp: ControlPlaneProcess, tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("name: x\nnode_groups: [\n  - role: MASTER\n")
    cases = [
        (["cluster", "create", "--core-type", "local.huge"], "node_groups[1].instance_type: unknown instance type"),
        (["cluster", "create", "--services", "spark,flink"], "services[1]: unknown service 'flink'"),
        (["cluster", "create", "--core-count", "0"], "node_groups[1].count: Spark needs at least 1 CORE node"),
        (["cluster", "create", "-f", str(bad_yaml)], "invalid YAML at line 3"),
        (["cluster", "create", "-f", str(tmp_path / "missing.yaml")], "cannot read"),
        (["cluster", "create", "--bootstrap", str(tmp_path / "nope.sh")], "bootstrap_actions[0].path: file not found"),
        (["cluster", "create", "--property", "nonsense"], "expected CLASSIFICATION:KEY=VALUE"),
        (["cluster", "create", "--property", "hadoop-env:HADOOP_OPTS=-Da\n-Db"],
         "configurations[0].properties.HADOOP_OPTS: the value contains a line break (U+000A) at offset 3"),
        (["cluster", "create", "--property", "core-site:fs.a\nb =x"],
         'configurations[0].properties["fs.a\\nb "]: the name starts or ends with whitespace'),
        (["cluster", "describe", "c-nothere"], "cluster c-nothere not found"),
        (["step", "add", "c-nothere", "--type", "shell", "--", "true"], "cluster c-nothere not found"),
        # a missing local file is refused by the CLI, where the files are, before anything is sent
        (["step", "add", "c-nothere", "--type", "spark", "--", "--name", "x", "--files",
          f"{tmp_path}/here.txt,/local/x.txt#x", f"{tmp_path}/here.txt"], "args[3]: --files entry not found: /local/x.txt"),
        (["step", "add", "c-nothere", "--type", "streaming", "--", "-input", "/i", "-output", "/o", "-mapper", "cat",
          "-archives", "deps.zip#d"], f"args[7]: -archives entry not found: {tmp_path}/deps.zip"),
        (["step", "add", "c-nothere", "--", "true"], "Missing option '--type'"),
        (["cluster", "frobnicate"], "No such command"),
    ]
    (tmp_path / "here.txt").write_text("here\n")
    before = shared_cp.clusters()
    for args, message in cases:
        result = _cli(shared_cp, *args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("corral: error: ") and message in lines[0], (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert shared_cp.clusters() == before
