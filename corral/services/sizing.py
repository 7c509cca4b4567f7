"""Container sizes for a cluster, derived so that every step type can run beside the
applications that always run (the SQL endpoint's ApplicationMaster on YARN), and the
create-time check of a cluster's effective configuration against the same model
(``corral.services.fit``).

The applications a step may start, per cluster (what YARN must always be able to run):

- a SPARK, SPARK_SQL or Spark transfer step in client mode (the default): a client-mode
  ApplicationMaster (``spark.yarn.am.memory`` + overhead) and one executor;
- a SPARK step in cluster mode: the driver in the AM container (``spark.driver.memory`` +
  overhead, Corral passes ``CLUSTER_DRIVER`` for it) and one executor;
- a HADOOP_JAR, STREAMING or DistCp step: the MapReduce AM, one map, one reduce;
- a SQL query (HIVE steps, ``corral sql``): one executor beside the endpoint's own AM.

Sizes are derived from the smallest NodeManager, so that an executor fits on every node
beside its share of the AMs when they are spread out (EMR's one-executor-per-node
maximizeResourceAllocation), and, whatever nodes YARN puts the AMs on, at least one
executor, map and reduce always fit. Where even the smallest sizes Spark and MapReduce
accept cannot fit, the spec is refused (``problems``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from corral.domain.states import NodeRole
from corral.services.base import ClusterView, NodeView
from corral.services.fit import Worker, Yarn, YarnApp, standalone_unschedulable, yarn_unschedulable

MIN_ALLOCATION_MIB = 128  # yarn.scheduler.minimum-allocation-mb: YARN rounds every request up to a multiple
SPARK_MIN_OVERHEAD_MIB = 384  # spark.{driver,executor}.minMemoryOverhead (Spark's MEMORY_OVERHEAD_MIN)
SPARK_OVERHEAD_FACTOR = 0.10  # spark.{driver,executor}.memoryOverheadFactor
# The smallest heap Spark runs a driver or executor with: 1.5 x its 300 MiB reserved
# memory (UnifiedMemoryManager.getMaxMemory refuses less), rounded up.
SPARK_MIN_HEAP_MIB = 512
# The client-mode ApplicationMaster (ExecutorLauncher) only asks YARN for executors: a
# quarter GiB of heap (its resident size is that plus ~250 MiB of classes and code).
SPARK_AM_HEAP_MIB = 256
MR_MIN_TASK_MIB = 512  # a map/reduce JVM with io.sort.mb's 100 MiB buffer in an 80 % heap
AM_PERCENT_FLOOR = 0.5  # so that a Spark and a MapReduce AM can always run side by side


def nodemanagers(cluster: ClusterView) -> list[NodeView]:
    return cluster.with_roles(NodeRole.CORE, NodeRole.TASK)


def _allocation(mib: int) -> int:
    """Down to a multiple of the minimum allocation (what a NodeManager can hand out whole)."""
    return max(MIN_ALLOCATION_MIB, mib // MIN_ALLOCATION_MIB * MIN_ALLOCATION_MIB)


def nodemanager_mib(cluster: ClusterView, node: NodeView) -> int:
    """What the NodeManager on ``node`` offers: its instance type's usable memory, or the
    user's ``yarn.nodemanager.resource.memory-mb``."""
    user = cluster.user_configurations.get("yarn-site", {}).get("yarn.nodemanager.resource.memory-mb")
    if user is not None and user.strip().isdigit():
        return int(user)
    return _allocation(node.itype.usable_mib)


def spark_overhead_mib(heap_mib: int) -> int:
    return max(SPARK_MIN_OVERHEAD_MIB, int(SPARK_OVERHEAD_FACTOR * heap_mib))


def spark_heap_for(container_mib: int) -> int:
    """The largest heap whose JVM, with Spark's default overhead, fits ``container_mib``."""
    heap = container_mib - SPARK_MIN_OVERHEAD_MIB
    if heap > SPARK_MIN_OVERHEAD_MIB / SPARK_OVERHEAD_FACTOR:
        heap = math.floor(container_mib / (1 + SPARK_OVERHEAD_FACTOR))
        while heap + spark_overhead_mib(heap) > container_mib:
            heap -= 1
        while heap + 1 + spark_overhead_mib(heap + 1) <= container_mib:  # the overhead is rounded down
            heap += 1
    return heap


@dataclass(frozen=True)
class Sizes:
    """Corral's derived defaults for one cluster (MiB), and why the spec cannot run, if so."""

    nodemanager_mib: tuple[int, ...] = ()  # every NodeManager, as offered
    spark_am_heap_mib: int = SPARK_AM_HEAP_MIB
    executor_heap_mib: int = 0
    cluster_driver_heap_mib: int = SPARK_MIN_HEAP_MIB
    cluster_mode: bool = True  # whether a cluster-mode driver fits beside an executor
    mr_task_mib: int = 0
    am_percent: float = AM_PERCENT_FLOOR
    problems: tuple[str, ...] = field(default_factory=tuple)


def _yarn(nms: tuple[int, ...], am_percent: float = 1.0) -> Yarn:
    return Yarn(nodemanagers=nms, min_allocation_mib=MIN_ALLOCATION_MIB, max_allocation_mib=max(nms),
                am_percent=am_percent)


def _spark_app(name: str, am_heap: int, executor_heap: int) -> YarnApp:
    return YarnApp(name, am_heap + spark_overhead_mib(am_heap),
                   (("executor", executor_heap + spark_overhead_mib(executor_heap)),))


def _mr_app(task: int) -> YarnApp:
    return YarnApp("MapReduce job", task, (("map", task), ("reduce", task)))


def _largest_executor(nms: tuple[int, ...], always_on: tuple[YarnApp, ...], am_heaps: list[int], spread: bool) -> int:
    """The largest executor heap (≥ Spark's minimum, else 0) that, for every step AM size
    in ``am_heaps``, fits on some node wherever YARN places the AMs, and — with ``spread`` —
    on every node beside its share of the AMs (the always-on ones and a client-mode AM,
    the first of ``am_heaps``) when they are spread out evenly."""
    yarn = _yarn(nms)
    container = min(nms)
    if spread:
        ams = sorted([yarn.normalize(a.am_mib) for a in always_on]
                     + [yarn.normalize(am_heaps[0] + spark_overhead_mib(am_heaps[0]))], reverse=True)
        share = sum(ams[:math.ceil(len(ams) / len(nms))])
        container = _allocation(container - share) if container > share else 0
    while container >= SPARK_MIN_HEAP_MIB + SPARK_MIN_OVERHEAD_MIB:
        heap = spark_heap_for(container)
        if all(yarn_unschedulable(yarn, _spark_app("step", h, heap), always_on) is None for h in am_heaps):
            return heap
        container -= MIN_ALLOCATION_MIB
    return 0


def _spark_sizes(nms: tuple[int, ...], always_on: tuple[YarnApp, ...]) -> tuple[int, int, bool]:
    """(executor heap, cluster-mode driver heap, whether cluster mode fits). A cluster-mode
    driver gets 1 GiB where NodeManagers have 4 GiB or more, else Spark's smallest, 512 MiB."""
    driver = 1024 if min(nms) >= 4096 else SPARK_MIN_HEAP_MIB
    for spread in (True, False):  # an executor on every node if possible; else only the guarantee
        for heaps, cluster_mode in (([SPARK_AM_HEAP_MIB, driver], True), ([SPARK_AM_HEAP_MIB], False)):
            executor = _largest_executor(nms, always_on, heaps, spread)
            if executor:  # without cluster mode, cluster-mode steps are refused when added
                return executor, driver, cluster_mode
    return 0, driver, False


def derive(cluster: ClusterView) -> Sizes:
    """The cluster's container sizes; ``problems`` says why a step type could never run."""
    nodes = nodemanagers(cluster)
    if "yarn" not in cluster.services or not nodes:
        return Sizes()
    nms = tuple(nodemanager_mib(cluster, n) for n in nodes)
    smallest = min(nms)
    problems: list[str] = []
    sql_endpoint = "hive" in cluster.services and "spark" in cluster.services
    always_on = (YarnApp("the SQL endpoint", SPARK_AM_HEAP_MIB + spark_overhead_mib(SPARK_AM_HEAP_MIB)),) if sql_endpoint else ()
    executor, driver, cluster_mode = 0, SPARK_MIN_HEAP_MIB, False
    if "spark" in cluster.services:
        executor, driver, cluster_mode = _spark_sizes(nms, always_on)
        if not executor:
            need = SPARK_MIN_HEAP_MIB + SPARK_MIN_OVERHEAD_MIB
            beside = " beside the SQL endpoint's ApplicationMaster" if always_on else ""
            am = SPARK_AM_HEAP_MIB + spark_overhead_mib(SPARK_AM_HEAP_MIB)
            problems.append(f"SPARK steps could never run: even an ApplicationMaster of {am} MiB and an executor of "
                            f"{need} MiB (Spark's smallest) do not fit{beside} on NodeManagers of {smallest} MiB")
    task = 0
    if "mapreduce" in cluster.services:
        vcores = min(n.itype.vcpus for n in nodes)
        task = max(MR_MIN_TASK_MIB, min(2048, smallest // max(1, vcores)))
        task = task // MIN_ALLOCATION_MIB * MIN_ALLOCATION_MIB
        yarn = _yarn(nms)
        while task >= MR_MIN_TASK_MIB and yarn_unschedulable(yarn, _mr_app(task), always_on) is not None:
            task -= MIN_ALLOCATION_MIB
        if task < MR_MIN_TASK_MIB:
            task = 0
            problems.append(f"MapReduce steps could never run: even an ApplicationMaster and a task of {MR_MIN_TASK_MIB} MiB "
                            "do not fit"
                            f"{' beside the SQL endpoint' if always_on else ''} on NodeManagers of {smallest} MiB")
    am_percent = AM_PERCENT_FLOOR
    if always_on:
        step_ams = [SPARK_AM_HEAP_MIB + spark_overhead_mib(SPARK_AM_HEAP_MIB), driver + spark_overhead_mib(driver), task]
        needed = max(sum(_yarn(nms).normalize(a.am_mib) for a in always_on) + _yarn(nms).normalize(am) for am in step_ams)
        while am_percent < 1.0 and _yarn(nms, am_percent).am_limit_mib < needed:
            am_percent = round(am_percent + 0.05, 2)
    return Sizes(nodemanager_mib=nms, executor_heap_mib=executor, cluster_driver_heap_mib=driver,
                 cluster_mode=cluster_mode, mr_task_mib=task, am_percent=am_percent,
                 problems=tuple(problems))


# -- checking an effective configuration -------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgtp]?)b?\s*$", re.IGNORECASE)


def spark_mib(value: str, default_unit: str = "m") -> int:
    """A Spark memory string (``2g``, ``1536m``, ``1536``: MiB unless a unit is given, as
    ``JavaUtils.byteStringAsMb``) in MiB; ValueError when it is not one."""
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"not a memory size: {value!r} (e.g. 1536m or 2g)")
    number, unit = int(match.group(1)), (match.group(2) or default_unit).lower()
    return number * {"k": 1, "m": 1024, "g": 1024 ** 2, "t": 1024 ** 3, "p": 1024 ** 4}[unit] // 1024


def _int(props: dict[str, str], key: str, default: int) -> int:
    value = props.get(key)
    if value is None:
        return default
    try:
        return int(value.strip())
    except ValueError as exc:
        raise ValueError(f"not a whole number: {value!r}") from exc


@dataclass(frozen=True)
class Problem:
    """A step type that could never run, and the properties that decide it (classification, key)."""

    message: str
    properties: tuple[tuple[str, str], ...]


def spark_executor_container(spark: dict[str, str]) -> int:
    """An executor's YARN container (``ResourceProfile.getResourcesForClusterManager``): heap +
    overhead (given, or max(min overhead, factor x heap)) + off-heap + PySpark memory."""
    heap = spark_mib(spark.get("spark.executor.memory", "1g"))
    if "spark.executor.memoryOverhead" in spark:
        overhead = spark_mib(spark["spark.executor.memoryOverhead"])
    else:
        factor = float(spark.get("spark.executor.memoryOverheadFactor", SPARK_OVERHEAD_FACTOR))
        overhead = max(spark_mib(spark.get("spark.executor.minMemoryOverhead", "384m")), int(factor * heap))
    off_heap = spark_mib(spark.get("spark.memory.offHeap.size", "0")) \
        if spark.get("spark.memory.offHeap.enabled", "false").strip().lower() == "true" else 0
    pyspark = spark_mib(spark["spark.executor.pyspark.memory"]) if "spark.executor.pyspark.memory" in spark else 0
    return heap + overhead + off_heap + pyspark


def spark_am_container(spark: dict[str, str], cluster_mode: bool) -> int:
    """The AM container of a Spark application (``yarn.Client.amMemoryOverhead``): in
    client mode the ExecutorLauncher's ``spark.yarn.am.memory``, in cluster mode the driver's."""
    minimum = spark_mib(spark.get("spark.driver.minMemoryOverhead", "384m"))
    if cluster_mode:
        heap = spark_mib(spark.get("spark.driver.memory", "1g"))
        given, factor = spark.get("spark.driver.memoryOverhead"), float(spark.get("spark.driver.memoryOverheadFactor", 0.1))
    else:
        heap = spark_mib(spark.get("spark.yarn.am.memory", "512m"))
        given, factor = spark.get("spark.yarn.am.memoryOverhead"), SPARK_OVERHEAD_FACTOR
    overhead = spark_mib(given) if given is not None else max(minimum, int(factor * heap))
    return heap + overhead


SPARK_EXECUTOR_KEYS = tuple(("spark-defaults", k) for k in (
    "spark.executor.memory", "spark.executor.memoryOverhead", "spark.executor.memoryOverheadFactor",
    "spark.executor.minMemoryOverhead", "spark.memory.offHeap.enabled", "spark.memory.offHeap.size",
    "spark.executor.pyspark.memory"))
SPARK_AM_KEYS = (("spark-defaults", "spark.yarn.am.memory"), ("spark-defaults", "spark.yarn.am.memoryOverhead"),
                 ("spark-defaults", "spark.driver.minMemoryOverhead"))
YARN_KEYS = (("yarn-site", "yarn.nodemanager.resource.memory-mb"), ("yarn-site", "yarn.scheduler.minimum-allocation-mb"),
             ("yarn-site", "yarn.scheduler.maximum-allocation-mb"),
             ("capacity-scheduler", "yarn.scheduler.capacity.maximum-am-resource-percent"))
MR_KEYS = tuple(("mapred-site", k) for k in (
    "yarn.app.mapreduce.am.resource.mb", "mapreduce.map.memory.mb", "mapreduce.reduce.memory.mb"))


def standalone_executor_unschedulable(nodes: list[NodeView], spark: dict[str, str]) -> str | None:
    """Why no standalone Worker of ``nodes`` could ever run an executor sized by ``spark``
    (spark-defaults and a step's own options), or None. Raises ValueError for bad sizes."""
    workers = tuple(Worker(n.itype.usable_mib, n.itype.vcpus) for n in nodes)
    return standalone_unschedulable(workers, spark_mib(spark.get("spark.executor.memory", "1g")),
                                    _int(spark, "spark.executor.cores", 1))


def check(cluster: ClusterView, props: dict[str, dict[str, str]]) -> list[Problem]:
    """Step types of ``cluster`` that could never run with the effective properties ``props``
    (defaults + the user's): each with the properties involved, for naming the field."""
    nodes = nodemanagers(cluster)
    spark = props.get("spark-defaults", {})
    problems: list[Problem] = []
    try:
        if "yarn" in cluster.services and nodes:
            problems += _check_yarn(cluster, nodes, props)
        elif "spark" in cluster.services and nodes:
            reason = standalone_executor_unschedulable(nodes, spark)
            if reason:
                problems.append(Problem(f"Spark steps could never run: {reason}",
                                        (("spark-defaults", "spark.executor.memory"), ("spark-defaults", "spark.executor.cores"))))
    except ValueError as exc:
        problems.append(Problem(str(exc), ()))
    return problems


def yarn_model(cluster: ClusterView, nodes: list[NodeView], props: dict[str, dict[str, str]]) -> Yarn:
    """What YARN offers with the effective ``yarn-site`` and ``capacity-scheduler``."""
    site, sched = props.get("yarn-site", {}), props.get("capacity-scheduler", {})
    return Yarn(nodemanagers=tuple(nodemanager_mib(cluster, n) for n in nodes),
                min_allocation_mib=_int(site, "yarn.scheduler.minimum-allocation-mb", 1024),
                max_allocation_mib=_int(site, "yarn.scheduler.maximum-allocation-mb", 8192),
                am_percent=float(sched.get("yarn.scheduler.capacity.maximum-am-resource-percent", "0.1")))


def max_vcores(props: dict[str, dict[str, str]]) -> int:
    """YARN's largest container in vcores (its default is 4)."""
    return _int(props.get("yarn-site", {}), "yarn.scheduler.maximum-allocation-vcores", 4)


# What each application's containers ask in vcores (all default to 1).
SPARK_VCORE_KEYS = (("spark.executor.cores", "an executor"), ("spark.yarn.am.cores", "the ApplicationMaster"))
SPARK_CLUSTER_VCORE_KEYS = (("spark.executor.cores", "an executor"), ("spark.driver.cores", "the driver"))
MR_VCORE_KEYS = (("yarn.app.mapreduce.am.resource.cpu-vcores", "the ApplicationMaster"),
                 ("mapreduce.map.cpu.vcores", "a map"), ("mapreduce.reduce.cpu.vcores", "a reduce"))


def vcores_over_maximum(values: dict[str, str], asks: tuple[tuple[str, str], ...], maximum: int) -> tuple[str, str] | None:
    """(the key, the reason) for the first container of ``asks`` that would ask for more
    vcores than ``maximum``: YARN refuses such a request (InvalidResourceRequestException,
    SchedulerUtils.validateResourceRequest) whatever its resource calculator places by.
    Raises ValueError for a value that is not a whole number."""
    for key, what in asks:
        cores = _int(values, key, 1)
        if cores > maximum:
            return key, (f"{what} asks for {cores} vcores ({key}), more than YARN's largest container of {maximum} "
                         "(yarn.scheduler.maximum-allocation-vcores: the largest NodeManager's vcores)")
    return None


def mapreduce_app(mapred: dict[str, str], name: str = "MapReduce steps") -> YarnApp:
    return YarnApp(name, _int(mapred, "yarn.app.mapreduce.am.resource.mb", 1536),
                   (("map", _int(mapred, "mapreduce.map.memory.mb", 1024)),
                    ("reduce", _int(mapred, "mapreduce.reduce.memory.mb", 1024))))


def always_on(cluster: ClusterView, props: dict[str, dict[str, str]]) -> tuple[YarnApp, ...]:
    """The applications that hold an AM for the cluster's whole life: the SQL endpoint's."""
    if "hive" not in cluster.services or "spark" not in cluster.services:
        return ()
    return (YarnApp("the SQL endpoint", spark_am_container(props.get("spark-defaults", {}), cluster_mode=False)),)


def mapreduce_step_unschedulable(cluster: ClusterView, props: dict[str, dict[str, str]],
                                 own: dict[str, str]) -> tuple[str | None, str] | None:
    """Whether a MapReduce job (HADOOP_JAR, STREAMING) whose own ``-D`` settings are ``own``
    could never run on ``cluster``: (the key at fault, if one of ``own``, the reason)."""
    nodes = nodemanagers(cluster)
    if "yarn" not in cluster.services or not nodes:
        return None
    mapred = {**props.get("mapred-site", {}), **own}
    over = vcores_over_maximum(mapred, MR_VCORE_KEYS, max_vcores(props))
    if over:
        return over
    reason = yarn_unschedulable(yarn_model(cluster, nodes, props), mapreduce_app(mapred, "the job"), always_on(cluster, props))
    if reason is None:
        return None
    return next((k for _, k in MR_KEYS if k in own), None), reason


def _check_yarn(cluster: ClusterView, nodes: list[NodeView], props: dict[str, dict[str, str]]) -> list[Problem]:
    spark, mapred = props.get("spark-defaults", {}), props.get("mapred-site", {})
    yarn = yarn_model(cluster, nodes, props)
    problems = []
    # (the application, what always runs beside it, the properties that size them)
    apps: list[tuple[YarnApp, tuple[YarnApp, ...], tuple[tuple[str, str], ...]]] = []
    beside = always_on(cluster, props)
    if "spark" in cluster.services:
        over = vcores_over_maximum(spark, SPARK_VCORE_KEYS, max_vcores(props)) \
            or vcores_over_maximum(spark, SPARK_CLUSTER_VCORE_KEYS, max_vcores(props))
        if over:
            problems.append(Problem(f"SPARK steps could never run: {over[1]}", (("spark-defaults", over[0]),)))
        executor = ("executor", spark_executor_container(spark))
        client = YarnApp("SPARK steps (client mode)", spark_am_container(spark, cluster_mode=False), (executor,))
        if beside:
            # The SQL endpoint is a client-mode application that never ends: its AM is
            # always there, and a query needs one executor beside it.
            apps.append((YarnApp("SQL queries", beside[0].am_mib, (executor,)), (), SPARK_AM_KEYS + SPARK_EXECUTOR_KEYS))
        apps.append((client, beside, SPARK_AM_KEYS + SPARK_EXECUTOR_KEYS))
    if "mapreduce" in cluster.services:
        over = vcores_over_maximum(mapred, MR_VCORE_KEYS, max_vcores(props))
        if over:
            problems.append(Problem(f"MapReduce steps could never run: {over[1]}", (("mapred-site", over[0]),)))
        apps.append((mapreduce_app(mapred), beside, MR_KEYS + (SPARK_AM_KEYS if beside else ())))
    for app, others, keys in apps:
        reason = yarn_unschedulable(yarn, app, others)
        if reason:
            problems.append(Problem(f"{app.name} could never run: {reason}", keys + YARN_KEYS))
    return problems
