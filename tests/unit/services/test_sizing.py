"""Derived container sizes against the scheduler model, over every service combination,
instance type and node count: either every step type can run beside the services that
always run, or the spec is refused at create, naming why (corral.services.sizing)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from corral.control.views import effective_properties
from corral.domain.catalog import INSTANCE_TYPES, RELEASES
from corral.errors import FieldError
from corral.jobs.hadoop_jar import HadoopJarStep
from corral.jobs.spark import SparkStep
from corral.jobs.streaming import StreamingStep
from corral.services import sizing
from corral.services.fit import Worker, Yarn, YarnApp, standalone_unschedulable, yarn_unschedulable
from corral.services.registry import SERVICES, spec_view, validate_services
from tests.unit.helpers import make_spec

TYPES = tuple(INSTANCE_TYPES)


def combinations() -> list[list[str]]:
    """Every service combination the release accepts (requirements met)."""
    names = RELEASES["corral-1.0"].services
    out = []
    for n in range(1, len(names) + 1):
        for combo in itertools.combinations(names, n):
            if all(set(SERVICES[s].requires) <= set(combo) for s in combo):
                out.append(list(combo))
    return out


def groups(core: str, count: int, task: tuple[str, int] | None = None) -> list[dict[str, Any]]:
    out = [{"role": "MASTER", "instance_type": "local.small", "count": 1},
           {"role": "CORE", "instance_type": core, "count": count}]
    if task:
        out.append({"role": "TASK", "instance_type": task[0], "count": task[1]})
    return out


def mib(value: str) -> int:
    return sizing.spark_mib(value)



def step_apps(props: dict[str, dict[str, str]], services: list[str]) -> tuple[list[YarnApp], tuple[YarnApp, ...]]:
    """Every application a step type starts, read back from the rendered properties, and
    what always runs beside them."""
    spark, mapred = props.get("spark-defaults", {}), props.get("mapred-site", {})
    apps: list[YarnApp] = []
    always_on: tuple[YarnApp, ...] = ()
    if "spark" in services:
        executor = mib(spark["spark.executor.memory"])
        container = executor + max(384, executor // 10)
        am = mib(spark["spark.yarn.am.memory"])
        apps.append(YarnApp("client", am + max(384, am // 10), (("executor", container),)))
        if "hive" in services:
            always_on = (YarnApp("endpoint", am + max(384, am // 10)),)
    if "mapreduce" in services:
        apps.append(YarnApp("mr", int(mapred["yarn.app.mapreduce.am.resource.mb"]),
                            (("map", int(mapred["mapreduce.map.memory.mb"])),
                             ("reduce", int(mapred["mapreduce.reduce.memory.mb"])))))
    return apps, always_on


CASES = [(services, core, count, task) for services in combinations() for core in TYPES for count in (1, 2, 3)
         for task in (None, ("local.small", 1), ("local.xlarge", 2))]


@pytest.mark.parametrize(("services", "core", "count", "task"), CASES)
def test_every_step_type_fits_or_the_spec_is_refused(services: list[str], core: str, count: int,
                                                     task: tuple[str, int] | None) -> None:
    spec = make_spec(services=services, node_groups=groups(core, count, task))
    errors = validate_services(spec)
    if errors:
        # Refused only for what cannot be scheduled, at the smallest NodeManager's instance type.
        assert all("steps could never run" in e.msg for e in errors), errors
        assert all(e.loc[0] == "node_groups" and e.loc[-1] == "instance_type" for e in errors), errors
        assert all(e.msg.endswith("use a larger instance type or more CORE/TASK nodes") for e in errors)
        return
    view = spec_view(spec)
    props, _ = effective_properties(view)
    nodes = sizing.nodemanagers(view)
    if "yarn" not in services:
        if "spark" in services:
            spark = props["spark-defaults"]
            workers = tuple(Worker(n.itype.usable_mib, n.itype.vcpus) for n in nodes)
            assert standalone_unschedulable(workers, mib(spark["spark.executor.memory"]),
                                            int(spark["spark.executor.cores"])) is None
        return
    site = props["yarn-site"]
    # Each NodeManager offers what its own node's yarn-site says (rendered per node).
    offered = tuple(int(sizing.nodemanager_mib(view, n)) for n in nodes)
    yarn = Yarn(offered, int(site["yarn.scheduler.minimum-allocation-mb"]), int(site["yarn.scheduler.maximum-allocation-mb"]),
                float(props["capacity-scheduler"]["yarn.scheduler.capacity.maximum-am-resource-percent"]))
    assert yarn.max_allocation_mib == max(offered)
    apps, always_on = step_apps(props, services)
    for app in apps:
        assert yarn_unschedulable(yarn, app, always_on) is None, (app, always_on)
    if always_on:  # a SQL query: one executor beside the endpoint's AM
        endpoint = YarnApp("endpoint", always_on[0].am_mib, apps[0].containers)
        assert yarn_unschedulable(yarn, endpoint) is None
    derived = sizing.derive(view)
    if "spark" in services and derived.cluster_mode:
        driver = derived.cluster_driver_heap_mib
        cluster_app = YarnApp("cluster", driver + max(384, driver // 10), apps[0].containers)
        assert yarn_unschedulable(yarn, cluster_app, always_on) is None
        assert SparkStep().fit_errors(["--deploy-mode", "cluster", "app.py"], view, props) == []
    # Spark's own floors: an executor heap of 512 MiB or more, a map of 512 MiB or more.
    if "spark" in services:
        assert mib(props["spark-defaults"]["spark.executor.memory"]) >= 512
    if "mapreduce" in services:
        assert int(props["mapred-site"]["mapreduce.map.memory.mb"]) >= 512


def test_the_issue_inputs_now_fit() -> None:
    for core in ("local.medium", "local.large"):
        spec = make_spec(services=["hdfs", "yarn", "spark", "hive"], node_groups=groups(core, 1))
        assert validate_services(spec) == []
        props, _ = effective_properties(spec_view(spec))
        spark = props["spark-defaults"]
        am = mib(spark["spark.yarn.am.memory"]) + 384
        executor = mib(spark["spark.executor.memory"])
        nm = int(props["yarn-site"]["yarn.nodemanager.resource.memory-mb"])
        assert 2 * am + executor + max(384, executor // 10) <= nm  # the endpoint's AM, the step's AM, an executor


def test_sizes_do_not_shrink_without_the_sql_endpoint() -> None:
    plain = sizing.derive(spec_view(make_spec(services=["hdfs", "yarn", "spark"], node_groups=groups("local.medium", 2))))
    assert plain.executor_heap_mib == 2048 and plain.cluster_mode  # 3072 - 640 (an AM) = 2432 MiB containers
    large = sizing.derive(spec_view(make_spec(services=["hdfs", "yarn", "spark"], node_groups=groups("local.large", 2))))
    assert large.executor_heap_mib > 4900 and large.cluster_driver_heap_mib == 1024


def test_hive_on_one_small_core_node_is_refused_at_the_instance_type() -> None:
    errors = validate_services(make_spec(services=["hdfs", "yarn", "spark", "hive"], node_groups=groups("local.small", 1)))
    assert [e.loc for e in errors] == [("node_groups", 1, "instance_type")]
    assert errors[0].msg.startswith("SPARK steps could never run: even an ApplicationMaster of 640 MiB and an executor "
                                    "of 896 MiB (Spark's smallest) do not fit beside the SQL endpoint's ApplicationMaster "
                                    "on NodeManagers of 1536 MiB")


@pytest.mark.parametrize(("classification", "key", "value", "expected"), [
    ("spark-defaults", "spark.executor.memory", "4g", "larger than yarn.scheduler.maximum-allocation-mb"),
    ("spark-defaults", "spark.yarn.am.memory", "2g", "AM resource limit exceeded"),
    ("mapred-site", "mapreduce.reduce.memory.mb", "4096", "its reduce (4096 MiB)"),
    ("capacity-scheduler", "yarn.scheduler.capacity.maximum-am-resource-percent", "0.1", "AM resource limit exceeded"),
    ("yarn-site", "yarn.nodemanager.resource.memory-mb", "1024", "could never run"),
])
def test_a_user_setting_that_makes_a_step_type_unschedulable_is_named(classification: str, key: str, value: str,
                                                                       expected: str) -> None:
    spec = make_spec(services=["hdfs", "yarn", "mapreduce", "spark", "hive"], node_groups=groups("local.medium", 1),
                     configurations=[{"classification": classification, "properties": {key: value}}])
    errors = validate_services(spec)
    assert errors and all(e.loc == ("configurations", 0, "properties", key) for e in errors), errors
    assert any(expected in e.msg for e in errors), errors


def test_standalone_executor_larger_than_every_worker_is_refused() -> None:
    spec = make_spec(services=["spark"], node_groups=groups("local.medium", 2),
                     configurations=[{"classification": "spark-defaults", "properties": {"spark.executor.cores": "3"}}])
    errors = validate_services(spec)
    assert [e.loc for e in errors] == [("configurations", 0, "properties", "spark.executor.cores")]
    assert "Initial job has not accepted any resources" in errors[0].msg


def test_unreadable_sizes_are_refused_not_ignored() -> None:
    spec = make_spec(services=["hdfs", "yarn", "spark"], node_groups=groups("local.medium", 1),
                     configurations=[{"classification": "spark-defaults", "properties": {"spark.executor.memory": "lots"}}])
    errors = validate_services(spec)
    assert errors and "not a memory size: 'lots'" in errors[0].msg


@pytest.mark.parametrize(("value", "expected"), [("2g", 2048), ("1536m", 1536), ("1536", 1536), ("1024k", 1),
                                                 ("1t", 1024 * 1024), ("3GB", 3072), (" 512m ", 512)])
def test_spark_memory_strings(value: str, expected: int) -> None:
    assert sizing.spark_mib(value) == expected


def test_spark_container_rules() -> None:
    assert sizing.spark_executor_container({"spark.executor.memory": "2g"}) == 2048 + 384
    assert sizing.spark_executor_container({"spark.executor.memory": "8g"}) == 8192 + 819
    assert sizing.spark_executor_container({"spark.executor.memory": "1g", "spark.executor.memoryOverhead": "100m",
                                            "spark.memory.offHeap.enabled": "true", "spark.memory.offHeap.size": "1g",
                                            "spark.executor.pyspark.memory": "256m"}) == 1024 + 100 + 1024 + 256
    assert sizing.spark_am_container({"spark.yarn.am.memory": "256m"}, cluster_mode=False) == 640
    assert sizing.spark_am_container({"spark.driver.memory": "4g"}, cluster_mode=True) == 4096 + 409
    for container in range(896, 20000, 128):
        heap = sizing.spark_heap_for(container)
        assert heap + sizing.spark_overhead_mib(heap) <= container < heap + 1 + sizing.spark_overhead_mib(heap + 1)


def test_cluster_mode_steps_get_a_driver_sized_for_a_container() -> None:
    view = spec_view(make_spec(services=["hdfs", "yarn", "spark", "hive"], node_groups=groups("local.medium", 1)))
    argv = SparkStep().command(["--deploy-mode", "cluster", "app.py"], view).argv
    assert argv[argv.index("--driver-memory") + 1] == f"{sizing.derive(view).cluster_driver_heap_mib}m"
    assert "--driver-memory" not in SparkStep().command(["app.py"], view).argv  # client mode: the master's default
    mine = SparkStep().command(["--deploy-mode=cluster", "--driver-memory", "700m", "app.py"], view).argv
    assert mine.count("--driver-memory") == 1


def test_steps_that_could_never_run_are_refused_naming_the_argument() -> None:
    spec = make_spec(services=["hdfs", "yarn", "spark"], node_groups=groups("local.small", 1))
    view = spec_view(spec)
    props, _ = effective_properties(view)
    (error,) = SparkStep().fit_errors(["--deploy-mode", "cluster", "app.py"], view, props)
    assert error == FieldError(("args", 1), error.msg) and "cluster-mode SPARK step could never run" in error.msg
    (error,) = SparkStep().fit_errors(["--conf", "spark.executor.memory=2g", "app.py"], view, props)
    assert error.loc == ("args", 1) and "maximum-allocation-mb" in error.msg
    assert SparkStep().fit_errors(["app.py", "--executor-memory", "9g"], view, props) == []  # the app's own argument


def test_steps_asking_more_vcores_than_yarns_largest_container_are_refused_naming_the_argument() -> None:
    """YARN refuses such requests (InvalidResourceRequestException); CapacityScheduler's
    default calculator places by memory only, so only this bound is ever final."""
    view = spec_view(make_spec(services=["hdfs", "yarn", "mapreduce", "spark"], node_groups=groups("local.medium", 1)))
    props, _ = effective_properties(view)
    assert props["yarn-site"]["yarn.scheduler.maximum-allocation-vcores"] == "2"
    (error,) = SparkStep().fit_errors(["--executor-cores", "8", "job.py"], view, props)
    assert error.loc == ("args", 1) and "8 vcores (spark.executor.cores)" in error.msg
    assert "maximum-allocation-vcores" in error.msg
    (error,) = SparkStep().fit_errors(["--deploy-mode", "cluster", "--conf", "spark.driver.cores=3", "job.py"], view, props)
    assert error.loc == ("args", 3) and "the driver asks for 3 vcores" in error.msg
    assert SparkStep().fit_errors(["--executor-cores", "2", "--conf", "spark.driver.cores=3", "job.py"], view, props) == []
    (error,) = SparkStep().fit_errors(["--executor-cores", "two", "job.py"], view, props)
    assert "whole number" in error.msg


def test_mapreduce_steps_whose_own_sizes_could_never_run_are_refused_naming_the_argument() -> None:
    view = spec_view(make_spec(services=["hdfs", "yarn", "mapreduce", "spark", "hive"], node_groups=groups("local.medium", 1)))
    props, _ = effective_properties(view)
    jar = HadoopJarStep()
    (error,) = jar.fit_errors(["hadoop-mapreduce-examples.jar", "pi", "-Dmapreduce.map.memory.mb=9000", "1", "10"], view, props)
    assert error.loc == ("args", 2) and "HADOOP_JAR step could never run" in error.msg and "9000 MiB" in error.msg
    (error,) = jar.fit_errors(["x.jar", "-D", "mapreduce.reduce.cpu.vcores=4", "in", "out"], view, props)
    assert error.loc == ("args", 2) and "a reduce asks for 4 vcores" in error.msg
    # an AM that fits alone, but never beside the SQL endpoint's AM within the AM share
    (error,) = jar.fit_errors(["x.jar", "Main", "-Dyarn.app.mapreduce.am.resource.mb=2048"], view, props)
    assert error.loc == ("args", 2) and "could never run" in error.msg
    assert jar.fit_errors(["x.jar", "Main", "-Dmapreduce.map.memory.mb=512", "in"], view, props) == []
    assert jar.fit_errors(["x.jar", "Main", "in", "-Dmapreduce.map.memory.mb=9000"], view, props) == []  # the program's own
    stream = StreamingStep()
    (error,) = stream.fit_errors(["-input", "/i", "-output", "/o", "-mapper", "cat", "-D", "mapreduce.map.memory.mb=4g"],
                                 view, props)
    assert error.loc == ("args", 7) and "whole number" in error.msg
    (error,) = stream.fit_errors(["-input", "/i", "-jobconf", "mapreduce.map.memory.mb=9000", "-mapper", "cat"], view, props)
    assert error.loc == ("args", 3)
    assert stream.fit_errors(["-input", "/i", "-output", "/o", "-mapper", "cat", "-D", "mapreduce.job.reduces=0"],
                             view, props) == []


def test_vcores_over_yarns_maximum_in_the_spec_are_refused_at_create() -> None:
    for classification, key, what in (("spark-defaults", "spark.executor.cores", "SPARK steps"),
                                      ("mapred-site", "mapreduce.map.cpu.vcores", "MapReduce steps")):
        spec = make_spec(services=["hdfs", "yarn", "mapreduce", "spark"], node_groups=groups("local.medium", 1),
                         configurations=[{"classification": classification, "properties": {key: "16"}}])
        (error,) = validate_services(spec)
        assert error.loc == ("configurations", 0, "properties", key), error
        assert error.msg.startswith(f"{what} could never run: ") and "16 vcores" in error.msg
