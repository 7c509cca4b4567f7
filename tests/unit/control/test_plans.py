"""Node plans: nothing before the master has an address; then files, daemons and steps."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from corral.control import clusters, steps
from corral.control.context import ControlPlane
from corral.control.plans import artifact_placeholder, build_plan
from corral.domain.spec import StepRequest
from corral.reconcile import steps as queue
from corral.store.models import Cluster, Node
from tests.unit.helpers import make_spec


def plans(cp: ControlPlane, cluster_id: str) -> dict[str, object]:
    """role-index -> plan, e.g. MASTER0, CORE0, CORE1."""
    out: dict[str, object] = {}
    with cp.store.session() as s:
        cluster = clusters.load_cluster(s, cluster_id)
        all_steps = clusters.cluster_steps(s, cluster_id)
        for node in sorted(cluster.nodes, key=lambda n: (clusters.ROLE_ORDER[n.role], n.created_at)):
            key = node.role + str(sum(1 for k in out if k.startswith(node.role)))
            out[key] = build_plan(cluster, node, all_steps)
    return out


def write_app(tmp_path: Path) -> tuple[Path, str]:
    """A step application on disk and the content hash it is shipped under."""
    app = tmp_path / "job.py"
    app.write_text("print('hi')\n")
    return app, hashlib.sha256(app.read_bytes()).hexdigest()


def place(cp: ControlPlane, cluster_id: str, roles: tuple[str, ...] = ("MASTER", "CORE", "TASK")) -> dict[str, str]:
    """Give the nodes of ``roles`` an address and a directory, as a provider would."""
    addresses = {}
    with cp.store.session() as s:
        cluster = clusters.load_cluster(s, cluster_id)
        for i, node in enumerate(sorted(cluster.nodes, key=lambda n: clusters.ROLE_ORDER[n.role])):
            if node.role in roles:
                node.address, node.directory = f"127.99.0.{10 + i}", f"/nodes/{node.id}"
                node.status = "PROVISIONING"
                addresses[node.id] = node.address
    return addresses


def test_no_plan_before_the_master_has_an_address(cp: ControlPlane) -> None:
    cluster, _ = clusters.create_cluster(cp, make_spec())
    assert set(plans(cp, cluster.id).values()) == {None}
    place(cp, cluster.id, roles=("CORE",))  # workers placed, master not yet: still nothing to render
    assert set(plans(cp, cluster.id).values()) == {None}


def test_plans_once_nodes_have_addresses(cp: ControlPlane) -> None:
    cluster, _ = clusters.create_cluster(cp, make_spec(
        configurations=[{"classification": "spark-defaults", "properties": {"spark.executor.memory": "1g"}}]))
    place(cp, cluster.id)
    out = plans(cp, cluster.id)
    master, core0, core1 = out["MASTER0"], out["CORE0"], out["CORE1"]
    with cp.store.session() as s:
        row = clusters.load_cluster(s, cluster.id)
        master_node = next(n for n in row.nodes if n.role == "MASTER")
    assert master.version == row.plan_version and not master.terminate
    assert master.address == master_node.address
    assert master.runtime.spark_version == "4.3.0" and master.runtime.java_major == 17
    assert [c.name for c in master.components] == ["spark-master", "spark-history-server"]
    assert [c.name for c in core0.components] == ["spark-worker"] == [c.name for c in core1.components]
    assert core0.address != core1.address
    conf, java_opts = core0.files
    assert conf.path == f"/nodes/{core0.node_id}/conf/spark/spark-defaults.conf"
    assert java_opts.path == f"/nodes/{core0.node_id}/conf/spark/java-opts"
    assert "spark.executor.memory 1g" in conf.content.splitlines()
    assert f"spark.master spark://{master_node.address}:7077" in conf.content.splitlines()
    assert master.base_env["CORRAL_CLUSTER_ID"] == cluster.id
    assert master.base_env["CORRAL_NODE_ROLE"] == "MASTER"
    assert master.base_env["PATH"].endswith("${JAVA_HOME}/bin:${PATH}")
    assert master.steps == [] and core0.steps == []


def test_a_node_without_address_gets_no_plan_yet(cp: ControlPlane) -> None:
    cluster, _ = clusters.create_cluster(cp, make_spec())
    place(cp, cluster.id, roles=("MASTER",))
    out = plans(cp, cluster.id)
    assert out["MASTER0"] is not None
    assert out["CORE0"] is None and out["CORE1"] is None


def test_only_dispatched_steps_reach_the_master_with_artifacts(cp: ControlPlane, tmp_path: Path) -> None:
    app, sha = write_app(tmp_path)
    cluster, _ = clusters.create_cluster(cp, make_spec())
    place(cp, cluster.id)
    added = steps.add_steps(cp, cluster.id, [StepRequest(type="SPARK", args=["--conf", "a=b", str(app), "7"]),
                                              StepRequest(type="SHELL", args=["echo later"])])
    assert plans(cp, cluster.id)["MASTER0"].steps == []  # queued, not dispatched
    with cp.store.session() as s:
        queue.schedule(s, clusters.load_cluster(s, cluster.id))
    out = plans(cp, cluster.id)
    (cmd,) = out["MASTER0"].steps
    assert cmd.id == added[0].id
    assert cmd.argv == ["${SPARK_HOME}/bin/spark-submit", "--deploy-mode", "client", "--conf", "a=b",
                        artifact_placeholder(sha), "7"]
    assert [(a.sha256, a.name) for a in cmd.artifacts] == [(sha, "job.py")]
    assert cmd.cancel is False
    assert cp.artifacts.path(sha).read_bytes() == app.read_bytes()
    assert out["CORE0"].steps == []  # steps run on the master only
    steps.cancel_step(cp, cluster.id, added[0].id)
    assert plans(cp, cluster.id)["MASTER0"].steps[0].cancel is True


def test_terminating_nodes_get_a_terminate_plan_even_without_addresses(cp: ControlPlane) -> None:
    cluster, _ = clusters.create_cluster(cp, make_spec())
    clusters.terminate_cluster(cp, cluster.id)
    out = plans(cp, cluster.id)
    assert all(p is not None and p.terminate and p.components == [] for p in out.values())


def test_a_node_set_to_terminate_alone(cp: ControlPlane) -> None:
    cluster, _ = clusters.create_cluster(cp, make_spec())
    place(cp, cluster.id)
    with cp.store.session() as s:
        node = next(n for n in clusters.load_cluster(s, cluster.id).nodes if n.role == "CORE")
        s.get(Node, node.id).target = "TERMINATED"  # type: ignore[union-attr]
        assert s.get(Cluster, cluster.id).target == "ACTIVE"  # type: ignore[union-attr]
    out = plans(cp, cluster.id)
    assert sorted(p.terminate for p in out.values()) == [False, False, True]


def test_application_arguments_containing_the_app_path_are_left_alone(cp: ControlPlane, tmp_path: Path) -> None:
    app, sha = write_app(tmp_path)
    cluster, _ = clusters.create_cluster(cp, make_spec())
    place(cp, cluster.id)
    steps.add_steps(cp, cluster.id, [StepRequest(type="SPARK", args=[str(app), "--out", f"{app}.results"])])
    with cp.store.session() as s:
        queue.schedule(s, clusters.load_cluster(s, cluster.id))
    (cmd,) = plans(cp, cluster.id)["MASTER0"].steps
    assert cmd.argv[-3:] == [artifact_placeholder(sha), "--out", f"{app}.results"]


def _java_tmpdirs(argv: list[str], env: dict[str, str], files: dict[str, str]) -> list[str]:
    """The java.io.tmpdir a component's or step's JVM gets, by what starts it: Corral's
    Hadoop launcher (from TMPDIR), Spark's launcher (from $SPARK_CONF_DIR/java-opts) or java
    itself; [] for a command that starts no JVM of its own (python, a shell command)."""
    programs = {a.rsplit("/", 1)[-1]: a for a in argv}  # also the tool a `bash -c` wrapper runs
    hadoop = next((programs[p] for p in ("hadoop", "hdfs", "yarn", "mapred") if p in programs), None)
    if hadoop is not None:
        bin_dir = hadoop.rsplit("/", 1)[0] if "/" in hadoop else env["PATH"].split(":")[0]
        assert '"-Djava.io.tmpdir=$TMPDIR"' in files[f"{bin_dir}/corral-hadoop"]
        return [env["TMPDIR"]]
    if {"spark-submit", "spark-class", "spark-sql", "beeline"} & set(programs):
        return re.findall(r'"-Djava.io.tmpdir=([^"]+)"', files[env["SPARK_CONF_DIR"] + "/java-opts"])
    if "java" in programs:
        return [a.split("=", 1)[1] for a in argv if a.startswith("-Djava.io.tmpdir=")]
    return []


@pytest.mark.parametrize("services", [["hdfs", "yarn", "mapreduce", "spark", "hive"], ["spark"],
                                      ["hdfs", "spark", "hive"]])
def test_every_daemon_and_step_keeps_temporary_files_in_its_node_directory(cp: ControlPlane, tmp_path: Path,
                                                                            services: list[str]) -> None:
    app, _ = write_app(tmp_path)
    cluster, _ = clusters.create_cluster(cp, make_spec(services=services))
    place(cp, cluster.id)
    requests = [StepRequest(type="SPARK", args=[str(app)]), StepRequest(type="SHELL", args=["mktemp"])]
    if "mapreduce" in services:
        requests += [StepRequest(type="HADOOP_JAR", args=["hadoop-mapreduce-examples.jar", "pi", "1", "1"]),
                     StepRequest(type="STREAMING", args=["-mapper", "cat", "-input", "/i", "-output", "/o"])]
    if "hive" in services:
        requests += [StepRequest(type="SPARK_SQL", args=["SELECT 1"]), StepRequest(type="HIVE", args=["SELECT 1"])]
    steps.add_steps(cp, cluster.id, requests)
    with cp.store.session() as s:
        for step in clusters.cluster_steps(s, cluster.id):
            step.dispatched = True  # all at once, to render every kind's command
    rendered = 0
    for plan in plans(cp, cluster.id).values():
        node_tmp = f"/nodes/{plan.node_id}/tmp"
        files = {f.path: f.content for f in plan.files}
        assert plan.base_env["TMPDIR"] == node_tmp  # bootstrap actions, and steps below
        for component in plan.components:
            env = {**plan.base_env, **component.env}
            assert component.env["TMPDIR"] == node_tmp, component.name
            jvm = _java_tmpdirs(component.argv, env, files)
            assert jvm == [node_tmp], (component.name, component.argv, jvm)
            rendered += 1
        for cmd in plan.steps:
            env = {**plan.base_env, **cmd.env}
            assert env["TMPDIR"] == node_tmp, cmd.argv
            assert set(_java_tmpdirs(cmd.argv, env, files)) <= {node_tmp}, cmd.argv
        assert len(plan.steps) == (len(requests) if plan.role == "MASTER" else 0)
    assert rendered >= (9 if "yarn" in services else 3)
