"""SPARK service: defaults derived from instance types, daemon placement, config rendering."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from corral.agent.protocol import Probe
from corral.control.views import effective_properties
from corral.domain.catalog import INSTANCE_TYPES
from corral.domain.states import NodeRole
from corral.services.base import ClusterView, NodeView
from corral.services.registry import get_service, validate_services
from corral.services.spark import MASTER_PORT, SparkService
from tests.unit.helpers import make_spec

SPARK = SparkService()


def node(i: int, role: NodeRole, itype: str) -> NodeView:
    return NodeView(node_id=f"n-{i}", role=role, address=f"127.7.0.{i}", directory=f"/nodes/n-{i}", instance_type=itype)


def view(master: str = "local.small", workers: tuple[tuple[NodeRole, str], ...] = ((NodeRole.CORE, "local.medium"),),
         user: dict[str, dict[str, str]] | None = None) -> ClusterView:
    nodes = [node(2, NodeRole.MASTER, master)] + [node(3 + i, role, t) for i, (role, t) in enumerate(workers)]
    return ClusterView(cluster_id="c-test", release="corral-1.0", services=("spark",), nodes=tuple(nodes),
                       user_configurations=user or {})


def test_catalog_memory_accounting() -> None:
    # usable = total - max(512, total/4): the numbers the defaults below are built from.
    assert [INSTANCE_TYPES[t].usable_mib for t in ("local.small", "local.medium", "local.large", "local.xlarge")] == [
        1536, 3072, 6144, 12288]


def test_executor_size_comes_from_the_smallest_worker() -> None:
    props = SPARK.default_properties(view(workers=((NodeRole.CORE, "local.large"), (NodeRole.CORE, "local.large"),
                                                   (NodeRole.TASK, "local.medium"))))["spark-defaults"]
    assert props["spark.executor.memory"] == "3072m"  # local.medium's usable memory
    assert props["spark.executor.cores"] == "2"  # local.medium's vcpus


def test_executor_size_with_uniform_large_workers() -> None:
    props = SPARK.default_properties(view(workers=((NodeRole.CORE, "local.large"),) * 2))["spark-defaults"]
    assert props["spark.executor.memory"] == "6144m"
    assert props["spark.executor.cores"] == "4"


@pytest.mark.parametrize(("master", "driver"), [("local.small", "768m"), ("local.medium", "1536m"),
                                                ("local.large", "2048m"), ("local.xlarge", "2048m")])
def test_driver_memory_from_the_master_type(master: str, driver: str) -> None:
    # half the master's usable memory, capped at 2 GiB
    props = SPARK.default_properties(view(master=master))["spark-defaults"]
    assert props["spark.driver.memory"] == driver


def test_defaults_point_at_the_master() -> None:
    v = view()
    props = SPARK.default_properties(v)
    defaults = props["spark-defaults"]
    assert defaults["spark.master"] == f"spark://127.7.0.2:{MASTER_PORT}"
    assert defaults["spark.driver.host"] == "127.7.0.2"
    assert "spark.plugins.defaultList" not in defaults  # standalone: no YARN AM, and no Corral classes
    assert defaults["spark.eventLog.dir"] == "file:///nodes/n-2/data/spark-events"
    assert defaults["spark.history.fs.logDirectory"] == defaults["spark.eventLog.dir"]
    assert props["spark-env"] == {}


def test_components_are_placed_by_role() -> None:
    v = view(workers=((NodeRole.CORE, "local.large"), (NodeRole.TASK, "local.medium")))
    props, _ = effective_properties(v)
    master, core, task = v.nodes
    assert [c.name for c in SPARK.components(v, master, props)] == ["spark-master", "spark-history-server"]
    assert [c.name for c in SPARK.components(v, core, props)] == ["spark-worker"]
    assert [c.name for c in SPARK.components(v, task, props)] == ["spark-worker"]


def test_master_daemon_binds_to_its_node() -> None:
    v = view()
    spark_master, history = SPARK.components(v, v.master, effective_properties(v)[0])
    argv = spark_master.argv
    assert argv[0] == "${SPARK_HOME}/bin/spark-class"
    assert argv[argv.index("--host") + 1] == "127.7.0.2"
    assert argv[argv.index("--port") + 1] == str(MASTER_PORT)
    assert argv[argv.index("--properties-file") + 1] == "/nodes/n-2/conf/spark/spark-defaults.conf"
    assert MASTER_PORT in spark_master.ports
    assert spark_master.wait_for == [] and history.wait_for == []
    assert spark_master.env["SPARK_LOCAL_IP"] == "127.7.0.2"
    assert spark_master.env["SPARK_DAEMON_MEMORY"] == "512m"


@pytest.mark.parametrize(("role", "itype", "cores", "memory"), [(NodeRole.CORE, "local.large", "4", "6144m"),
                                                                 (NodeRole.TASK, "local.small", "1", "1536m")])
def test_worker_is_sized_by_its_instance_type_and_waits_for_the_master(role: NodeRole, itype: str, cores: str,
                                                                       memory: str) -> None:
    v = view(workers=((role, itype),))
    (worker,) = SPARK.components(v, v.nodes[1], effective_properties(v)[0])
    argv = worker.argv
    assert argv[2] == f"spark://127.7.0.2:{MASTER_PORT}"
    assert argv[argv.index("--host") + 1] == "127.7.0.3"
    assert argv[argv.index("--cores") + 1] == cores
    assert argv[argv.index("--memory") + 1] == memory
    assert worker.wait_for == [Probe(kind="tcp", host="127.7.0.2", port=MASTER_PORT)]
    assert worker.env["SPARK_LOCAL_IP"] == "127.7.0.3"
    assert worker.env["SPARK_DAEMON_MEMORY"] == "384m"


def test_user_spark_env_is_sourced_after_corrals_environment_but_not_over_the_nodes_binding(tmp_path: Path) -> None:
    user = {"SPARK_DAEMON_MEMORY": "1g", "SPARK_LOCAL_IP": "0.0.0.0", "MY_VAR": 'C:\\temp "q" `id`',
            "SPARK_DAEMON_JAVA_OPTS": "$SPARK_DAEMON_JAVA_OPTS -Dx=1"}
    v = view(user={"spark-env": user})
    props, _ = effective_properties(v)
    names = ("SPARK_DAEMON_MEMORY", "MY_VAR", "SPARK_LOCAL_IP", "SPARK_DAEMON_JAVA_OPTS")
    for n in v.nodes:
        env_file = next(f for f in SPARK.config_files(v, n, props) if f.path.endswith("/spark-env.sh"))
        assert env_file.path == f"/nodes/{n.node_id}/conf/spark/spark-env.sh"
        script = tmp_path / f"{n.node_id}-spark-env.sh"
        script.write_text(env_file.content)
        for comp in SPARK.components(v, n, props):
            assert "MY_VAR" not in comp.env  # the file carries the classification
            # What Spark's load-spark-env.sh does in the daemon's environment.
            shown = " ".join(f'"${name}"' for name in names)
            out = subprocess.run(["/bin/bash", "-c", f'set -a; . "{script}"; set +a; printf "%s\\0" {shown}'],
                                 env=comp.env, capture_output=True, text=True, check=True).stdout
            seen = dict(zip(names, out.split("\0")))
            assert seen["SPARK_DAEMON_MEMORY"] == "1g" and seen["MY_VAR"] == user["MY_VAR"]
            assert seen["SPARK_LOCAL_IP"] == n.address  # Corral's binding wins
            assert seen["SPARK_DAEMON_JAVA_OPTS"] == comp.env["SPARK_DAEMON_JAVA_OPTS"] + " -Dx=1"


def test_config_file_renders_effective_properties_with_user_overrides() -> None:
    user = {"spark-defaults": {"spark.executor.memory": "1g", "spark.sql.shuffle.partitions": "7"}}
    v = view(user=user)
    props, user_set = effective_properties(v)
    assert user_set == user
    assert props["spark-defaults"]["spark.executor.memory"] == "1g"
    assert props["spark-defaults"]["spark.executor.cores"] == "2"  # defaults survive where not overridden
    conf, _env, _java_opts = SPARK.config_files(v, v.nodes[1], props)
    assert conf.path == "/nodes/n-3/conf/spark/spark-defaults.conf" and conf.format == "properties"
    lines = conf.content.splitlines()
    assert "spark.executor.memory 1g" in lines
    assert "spark.executor.memory 3072m" not in lines
    assert "spark.sql.shuffle.partitions 7" in lines
    assert "spark.master spark://127.7.0.2:7077" in lines
    assert lines == sorted(lines)
    assert conf.content.endswith("\n")


def test_registry_and_validation() -> None:
    assert get_service("spark") is not None
    assert validate_services(make_spec()) == []
    errors = validate_services(make_spec(node_groups=[{"role": "MASTER"}, {"role": "CORE", "count": 0}]))
    assert [e.loc for e in errors] == [("node_groups", 1, "count")]


def test_step_env_and_web_uis() -> None:
    v = view()
    env = SPARK.step_env(v)
    assert env["SPARK_MASTER_URL"] == "spark://127.7.0.2:7077"
    assert env["SPARK_CONF_DIR"] == "/nodes/n-2/conf/spark"
    assert SPARK.web_uis(v) == {"spark-master": "http://127.7.0.2:8080", "spark-history-server": "http://127.7.0.2:18080"}


def test_pyspark_archives_named_for_yarn_exist_in_the_release_runtime() -> None:
    import pyspark

    from corral.services.spark import PYSPARK_ARCHIVES

    home = str(Path(pyspark.__file__).parent)
    for entry in PYSPARK_ARCHIVES.split(","):
        assert entry.startswith("local:")
        assert Path(entry.removeprefix("local:").replace("${SPARK_HOME}", home)).is_file(), entry
