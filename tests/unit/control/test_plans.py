"""Node plans: nothing before the master has an address; then files, daemons and steps."""

from __future__ import annotations

import hashlib
import re

import pytest

from corral.control import clusters, steps
from corral.control.context import ControlPlane
from corral.control.plans import artifact_placeholder, build_plan
from corral.domain.spec import StepRequest
from corral.reconcile import steps as queue
from corral.store.models import Cluster, Node, Step
from tests.unit.helpers import make_spec


def plans(cp: ControlPlane, cluster_id: str) -> dict[str, object]:
    """role-index -> plan, e.g. MASTER0, CORE0, CORE1."""
    out: dict[str, object] = {}
    with cp.store.session() as s:
        cluster = clusters.load_cluster(s, cluster_id)
        all_steps = clusters.cluster_steps(s, cluster_id)
        for node in sorted(cluster.nodes, key=lambda n: (clusters.ROLE_ORDER[n.role], n.created_at)):
            key = node.role + str(sum(1 for k in out if k.startswith(node.role)))
            shares = cp.providers[cluster.provider].shares_machine if cluster.provider in cp.providers else False
            out[key] = build_plan(cluster, node, all_steps, shares_machine=shares)
    return out


def upload(cp: ControlPlane, data: bytes = b"print('hi')\n") -> str:
    """Store ``data`` as a client's upload would; returns its sha256."""
    sha = cp.artifacts.put_bytes(data)
    assert sha == hashlib.sha256(data).hexdigest()
    return sha


def master_argv(cp: ControlPlane, cluster_id: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Dispatch the next step; the master's argv for it and its artifacts (sha, name)."""
    with cp.store.session() as s:
        queue.schedule(s, clusters.load_cluster(s, cluster_id))
    (cmd,) = plans(cp, cluster_id)["MASTER0"].steps
    return cmd.argv, [(a.sha256, a.name) for a in cmd.artifacts]


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
    conf, env, java_opts = core0.files
    assert conf.path == f"/nodes/{core0.node_id}/conf/spark/spark-defaults.conf" and conf.format == "properties"
    assert env.path == f"/nodes/{core0.node_id}/conf/spark/spark-env.sh" and env.format == "shell"
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


def test_only_dispatched_steps_reach_the_master_with_artifacts(cp: ControlPlane) -> None:
    sha = upload(cp)
    cluster, _ = clusters.create_cluster(cp, make_spec())
    place(cp, cluster.id)
    added = steps.add_steps(cp, cluster.id, [StepRequest(type="SPARK", args=["--conf", "a=b", "/client/job.py", "7"],
                                                         files={"/client/job.py": sha}),
                                              StepRequest(type="SHELL", args=["echo later"])])
    assert plans(cp, cluster.id)["MASTER0"].steps == []  # queued, not dispatched
    with cp.store.session() as s:
        queue.schedule(s, clusters.load_cluster(s, cluster.id))
    out = plans(cp, cluster.id)
    (cmd,) = out["MASTER0"].steps
    assert cmd.id == added[0].id
    assert cmd.argv == ["${SPARK_HOME}/bin/spark-submit", "--deploy-mode", "client", "--conf", "a=b",
                        artifact_placeholder(sha) + "/job.py", "7"]
    assert [(a.sha256, a.name) for a in cmd.artifacts] == [(sha, "job.py")]
    assert cmd.cancel is False
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


def test_application_arguments_containing_the_app_path_are_left_alone(cp: ControlPlane) -> None:
    sha = upload(cp)
    cluster, _ = clusters.create_cluster(cp, make_spec())
    place(cp, cluster.id)
    steps.add_steps(cp, cluster.id, [StepRequest(type="SPARK", args=["/c/job.py", "--out", "/c/job.py.results", "/c/job.py"],
                                                 files={"/c/job.py": sha})])
    argv, _ = master_argv(cp, cluster.id)
    assert argv[-4:] == [artifact_placeholder(sha) + "/job.py", "--out", "/c/job.py.results", "/c/job.py"]


def test_shipped_files_keep_their_aliases_list_neighbours_and_prefixes(cp: ControlPlane) -> None:
    """The issue's input, and its kind: only the path part of each reference changes."""
    lookup, deps, app = upload(cp, b"k=v\n"), upload(cp, b"PK zip"), upload(cp)
    cluster, _ = clusters.create_cluster(cp, make_spec())
    place(cp, cluster.id)
    args = ["--files", "/local/lookup.txt#lookup.txt", "--archives", "/local/deps.zip#depsdir",
            "--files=hdfs:///shared/a.txt, /local/lookup.txt#second,s3a://b/c.txt",
            "--conf", "spark.yarn.dist.archives=file:///local/deps.zip#env,local:/opt/x.zip",
            "--py-files", "file:/local/deps.zip", "/local/job.py", "/local/lookup.txt"]
    steps.add_steps(cp, cluster.id, [StepRequest(type="SPARK", args=args, files={
        "/local/lookup.txt": lookup, "/local/deps.zip": deps, "/local/job.py": app})])
    argv, artifacts = master_argv(cp, cluster.id)
    ph = artifact_placeholder
    assert argv[3:] == [
        "--files", f"{ph(lookup)}/lookup.txt#lookup.txt", "--archives", f"{ph(deps)}/deps.zip#depsdir",
        f"--files=hdfs:///shared/a.txt, {ph(lookup)}/lookup.txt#second,s3a://b/c.txt",
        "--conf", f"spark.yarn.dist.archives=file://{ph(deps)}/deps.zip#env,local:/opt/x.zip",
        "--py-files", f"file:{ph(deps)}/deps.zip", f"{ph(app)}/job.py", "/local/lookup.txt"]  # app args are the app's
    assert sorted(artifacts) == sorted([(lookup, "lookup.txt"), (deps, "deps.zip"), (app, "job.py")])


def test_one_content_under_two_names_is_shipped_under_both(cp: ControlPlane) -> None:
    sha = upload(cp, b"same\n")
    cluster, _ = clusters.create_cluster(cp, make_spec())
    place(cp, cluster.id)
    steps.add_steps(cp, cluster.id, [StepRequest(type="SPARK", args=["--files", "/a/one.csv,/b/two.csv", "local:/x.py"],
                                                 files={"/a/one.csv": sha, "/b/two.csv": sha})])
    argv, artifacts = master_argv(cp, cluster.id)
    assert argv[-2] == f"{artifact_placeholder(sha)}/one.csv,{artifact_placeholder(sha)}/two.csv"
    assert sorted(artifacts) == [(sha, "one.csv"), (sha, "two.csv")]


def test_names_read_as_uris_are_encoded_on_the_node(cp: ControlPlane) -> None:
    """Hadoop decodes -files entries (a%23b.txt is the file a#b.txt): its shipped copy must
    be written so that it decodes to the same name, or '#' would start an alias."""
    sha = upload(cp, b"odd\n")
    cluster, _ = clusters.create_cluster(cp, make_spec(services=["hdfs", "yarn", "mapreduce"]))
    place(cp, cluster.id)
    steps.add_steps(cp, cluster.id, [StepRequest(type="HADOOP_JAR", args=[
        "hadoop-mapreduce-examples.jar", "wordcount", "-files", "/d/a%23b%20c.txt#lk", "/in", "/out"],
        files={"/d/a#b c.txt": sha})])
    argv, artifacts = master_argv(cp, cluster.id)
    assert argv[5] == f"{artifact_placeholder(sha)}/a%23b%20c.txt#lk"
    assert artifacts == [(sha, "a#b c.txt")]


def test_a_step_queued_before_positions_were_recorded_still_ships(cp: ControlPlane) -> None:
    sha = upload(cp)
    cluster, _ = clusters.create_cluster(cp, make_spec())
    place(cp, cluster.id)
    (step,) = steps.add_steps(cp, cluster.id, [StepRequest(type="SPARK", args=["--py-files", "/c/lib.py", "local:/x.py"],
                                                           files={"/c/lib.py": sha})])
    with cp.store.session() as s:  # the record of an older version: no start/end
        s.get(Step, step.id).artifacts = [{"index": 1, "path": "/c/lib.py", "name": "lib.py", "sha256": sha}]  # type: ignore[union-attr]
    argv, _ = master_argv(cp, cluster.id)
    assert argv[-2] == f"{artifact_placeholder(sha)}/lib.py"


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
def test_every_daemon_and_step_keeps_temporary_files_in_its_node_directory(cp: ControlPlane, services: list[str]) -> None:
    sha = upload(cp)
    cluster, _ = clusters.create_cluster(cp, make_spec(services=services))
    place(cp, cluster.id)
    requests = [StepRequest(type="SPARK", args=["/c/job.py"], files={"/c/job.py": sha}), StepRequest(type="SHELL", args=["mktemp"])]
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
