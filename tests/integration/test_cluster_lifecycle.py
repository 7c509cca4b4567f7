"""A real 1 MASTER + 2 CORE Spark cluster: create, bootstrap, run pi.py, terminate clean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.conftest import HTTP, ControlPlaneProcess, cluster_processes, listening_on

pytestmark = pytest.mark.integration


def test_create_bootstrap_pi_terminate_leaves_nothing(shared_cp: ControlPlaneProcess, pyspark_home: Path,
                                                       tmp_path: Path) -> None:
    script = tmp_path / "mark.sh"
    script.write_text('echo "role=$CORRAL_NODE_ROLE arg=$1" > "$PWD/bootstrap-marker"\necho bootstrapped\n')
    cluster = shared_cp.create(name="lifecycle", bootstrap_actions=[{"name": "mark", "path": str(script), "args": ["x1"]}])
    assert re.fullmatch(r"c-[a-z2-7]{8}", cluster["id"])
    assert cluster["status"] == "STARTING"
    cid = cluster["id"]
    cluster = shared_cp.wait_cluster(cid, ("WAITING",), timeout=120)

    # Every node RUNNING with its own loopback address and its daemons placed by role.
    nodes = cluster["nodes"]
    addresses = {n["address"] for n in nodes}
    assert len(addresses) == 3 and all(a.startswith("127.") and a != "127.0.0.1" for a in addresses)
    by_role = {n["role"]: n for n in nodes}
    assert set(by_role["MASTER"]["components"]) == {"spark-master", "spark-history-server"}
    assert all(set(n["components"]) == {"spark-worker"} for n in nodes if n["role"] == "CORE")
    assert all(c["status"] == "RUNNING" for n in nodes for c in n["components"].values())

    # The web UIs answer on the master's address; the Master sees both workers.
    master = by_role["MASTER"]["address"]
    assert cluster["web_uis"]["spark-master"] == f"http://{master}:8080"
    state = HTTP.get(f"http://{master}:8080/json/", timeout=5).json()
    assert sorted(w["host"] for w in state["workers"] if w["state"] == "ALIVE") == sorted(
        n["address"] for n in nodes if n["role"] == "CORE")
    assert HTTP.get(cluster["web_uis"]["spark-history-server"] + "/api/v1/applications", timeout=5).status_code == 200

    # Bootstrap actions ran on every node, with their arguments and the node's role.
    node_dirs = [Path(p) for p in (shared_cp.home / "nodes" / cid).iterdir()]
    markers = sorted((d / "bootstrap-marker").read_text().strip() for d in node_dirs)
    assert markers == ["role=CORE arg=x1", "role=CORE arg=x1", "role=MASTER arg=x1"]

    # The create operation recorded each of its steps.
    ops = shared_cp.http.get(f"/clusters/{cid}/operations").json()
    create_op = next(o for o in ops if o["kind"] == "CREATE_CLUSTER")
    assert create_op["status"] == "SUCCEEDED"
    assert [s["status"] for s in create_op["steps"]] == ["DONE"] * 5

    # A real Spark job as a step: Spark's own pi.py.
    step = shared_cp.add_step(cid, "SPARK", [str(pyspark_home / "examples/src/main/python/pi.py"), "10"], name="pi")
    assert re.fullmatch(r"s-[a-z2-7]{8}", step["id"])
    step = shared_cp.wait_step(cid, step["id"])
    assert step["status"] == "COMPLETED", step
    match = re.search(r"Pi is roughly ([0-9.]+)", shared_cp.log(cid, step["id"]))
    assert match, shared_cp.log(cid, step["id"], "stderr")[-2000:]
    assert abs(float(match.group(1)) - 3.14159) < 0.1
    assert "SparkContext" in shared_cp.log(cid, step["id"], "stderr")
    assert step["started_at"] and step["ended_at"] and step["exit_code"] == 0
    # The driver wrote its event log where the History Server reads it.
    shared_cp.wait_for(lambda: HTTP.get(cluster["web_uis"]["spark-history-server"] + "/api/v1/applications",
                                         timeout=5).json(), 30, "the History Server to list the pi application")

    assert cluster_processes(cid), "the cluster's processes should be findable by their environment"
    ended = shared_cp.terminate(cid)
    assert ended["status"] == "TERMINATED"
    assert ended["state_change_reason"]["code"] == "USER_REQUEST"
    assert cluster_processes(cid) == []
    assert listening_on(addresses) == []
    assert not (shared_cp.home / "nodes" / cid).exists()
    # Step logs outlive the cluster.
    assert "Pi is roughly" in shared_cp.log(cid, step["id"])


def test_bootstrap_failure_ends_with_errors_and_its_stderr(shared_cp: ControlPlaneProcess, tmp_path: Path) -> None:
    script = tmp_path / "broken.sh"
    script.write_text('echo "installing libfoo"\necho "E: Unable to locate package libfoo" >&2\nexit 7\n')
    cluster = shared_cp.create(name="broken-bootstrap", bootstrap_actions=[{"path": str(script)}])
    ended = shared_cp.wait_cluster(cluster["id"], ("TERMINATED_WITH_ERRORS",), timeout=120)
    reason = ended["state_change_reason"]
    assert reason["code"] == "BOOTSTRAP_FAILURE"
    assert "exited with code 7" in reason["message"]
    assert "E: Unable to locate package libfoo" in reason["message"]
    assert cluster_processes(cluster["id"]) == []
    assert not (shared_cp.home / "nodes" / cluster["id"]).exists()


def test_transient_cluster_terminates_after_its_last_step(shared_cp: ControlPlaneProcess) -> None:
    cluster = shared_cp.create(name="transient", auto_terminate=True,
                               steps=[{"type": "SHELL", "name": "hello", "args": ["echo transient-ok"]}])
    ended = shared_cp.wait_cluster(cluster["id"], ("TERMINATED",), timeout=180)
    assert ended["state_change_reason"]["code"] == "ALL_STEPS_COMPLETED"
    steps = shared_cp.steps(cluster["id"])
    assert [s["status"] for s in steps] == ["COMPLETED"]
    assert shared_cp.log(cluster["id"], steps[0]["id"]) == "transient-ok\n"
    assert cluster_processes(cluster["id"]) == []


def test_same_client_token_returns_the_same_cluster(shared_cp: ControlPlaneProcess) -> None:
    spec = {"name": "token", "client_token": "tok-123", "node_groups": [
        {"role": "MASTER", "instance_type": "local.small", "count": 1},
        {"role": "CORE", "instance_type": "local.small", "count": 1}]}
    first = shared_cp.http.post("/clusters", json=spec)
    again = shared_cp.http.post("/clusters", json=spec)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    other = shared_cp.http.post("/clusters", json={**spec, "name": "different"})
    assert other.status_code == 409
    assert "tok-123" in other.json()["detail"]
    ids = [c["id"] for c in shared_cp.clusters() if c["name"] in ("token", "different")]
    assert ids == [first.json()["id"]]
    shared_cp.terminate(first.json()["id"])


def test_stuck_bootstrap_times_out_with_a_reason(tmp_path: Path) -> None:
    """No state is forever: a bootstrap that hangs ends the cluster at its deadline."""
    cp = ControlPlaneProcess(tmp_path / "home")
    cp.home.mkdir()
    cp.env["CORRAL_BOOTSTRAPPING_TIMEOUT"] = "6"
    cp.start()
    try:
        script = tmp_path / "hang.sh"
        script.write_text("sleep 600\n")
        cluster = cp.create(name="hangs", bootstrap_actions=[{"path": str(script)}])
        ended = cp.wait_cluster(cluster["id"], ("TERMINATED_WITH_ERRORS",), timeout=90)
        assert ended["state_change_reason"]["code"] == "TIMEOUT"
        assert "BOOTSTRAPPING past its deadline" in ended["state_change_reason"]["message"]
        assert cluster_processes(cluster["id"]) == []
    finally:
        cp.cleanup()


def test_wrong_java_fails_the_cluster_saying_what_to_install(tmp_path: Path) -> None:
    java_home = tmp_path / "jdk11"
    (java_home / "bin").mkdir(parents=True)
    (java_home / "bin" / "java").write_text('#!/bin/sh\necho \'openjdk version "11.0.21" 2023-10-17\' >&2\n')
    (java_home / "bin" / "java").chmod(0o755)
    cp = ControlPlaneProcess(tmp_path / "home")
    cp.home.mkdir()
    cp.env["JAVA_HOME"] = str(java_home)
    cp.start()
    try:
        cluster = cp.create(name="old-java")
        ended = cp.wait_cluster(cluster["id"], ("TERMINATED_WITH_ERRORS",), timeout=90)
        message = ended["state_change_reason"]["message"]
        assert ended["state_change_reason"]["code"] == "INSTANCE_FAILURE"
        assert "Java 17 is required" in message and "is Java 11" in message and "openjdk-17" in message
        assert cluster_processes(cluster["id"]) == []
    finally:
        cp.cleanup()
