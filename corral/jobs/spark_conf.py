"""What a SPARK step's own ``spark-submit`` options ask of the cluster: the Spark
properties they set (``--conf``, ``--executor-memory`` ...), read as spark-submit reads
them (``SparkSubmitArguments``: options before the application, ``--opt value`` or
``--opt=value``, a later one winning), and whether YARN could ever run the step.
"""

from __future__ import annotations

from corral.errors import FieldError
from corral.services import sizing
from corral.services.base import ClusterView
from corral.services.fit import YarnApp, yarn_unschedulable

# spark-submit's shorthand options for Spark properties (SparkSubmitArguments / SparkSubmit's OptionAssigner)
SHORTHANDS = {
    "--executor-memory": "spark.executor.memory", "--driver-memory": "spark.driver.memory",
    "--executor-cores": "spark.executor.cores", "--driver-cores": "spark.driver.cores",
    "--num-executors": "spark.executor.instances", "--deploy-mode": "spark.submit.deployMode",
    "--queue": "spark.yarn.queue",
}
_SWITCHES = {"--verbose", "-v", "--supervise", "--help", "-h", "--version", "--usage-error"}


def submit_conf(args: list[str]) -> dict[str, tuple[str, int]]:
    """The Spark properties the step's options set: key -> (value, index of the argument)."""
    conf: dict[str, tuple[str, int]] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-"):
            break  # the application: what follows is its own arguments
        name, inline, value = arg.partition("=")
        if name in _SWITCHES:
            i += 1
            continue
        if not inline:
            if i + 1 >= len(args):
                break
            value, at, i = args[i + 1], i + 1, i + 2
        else:
            at, i = i, i + 1
        if name in ("--conf", "-c"):
            key, eq, prop = value.partition("=")
            if eq:
                conf[key.strip()] = (prop, at)
        elif name in SHORTHANDS:
            conf[SHORTHANDS[name]] = (value, at)
    return conf


def is_cluster_mode(args: list[str], defaults: dict[str, str]) -> bool:
    mode = submit_conf(args).get("spark.submit.deployMode", (defaults.get("spark.submit.deployMode", "client"), -1))[0]
    return mode.strip() == "cluster"


def cluster_driver_options(args: list[str], cluster: ClusterView) -> list[str]:
    """``--driver-memory`` for a cluster-mode step (whose driver runs in a YARN container,
    sized by ``corral.services.sizing``), unless the step or the user's spark-defaults set it:
    spark.driver.memory's default is sized for the master, where client-mode drivers run."""
    user = cluster.user_configurations.get("spark-defaults", {})
    if "yarn" not in cluster.services or not is_cluster_mode(args, user) or "spark.driver.memory" in user \
            or "spark.driver.memory" in submit_conf(args):
        return []
    return ["--driver-memory", f"{sizing.derive(cluster).cluster_driver_heap_mib}m"]


def fit_errors(args: list[str], cluster: ClusterView, props: dict[str, dict[str, str]]) -> list[FieldError]:
    """Refuse a step whose containers could never be placed on ``cluster`` (``props``: its
    effective configuration), naming the argument that sizes them. ``corral.services.fit``."""
    own = submit_conf(args)
    spark = {**props.get("spark-defaults", {}), **{k: v for k, (v, _) in own.items()}}
    cluster_mode = spark.get("spark.submit.deployMode", "client").strip() == "cluster"
    if cluster_mode and "spark.driver.memory" not in own and "spark.driver.memory" not in cluster.user_configurations.get(
            "spark-defaults", {}) and "yarn" in cluster.services:
        spark["spark.driver.memory"] = f"{sizing.derive(cluster).cluster_driver_heap_mib}m"
    mode = "cluster-mode " if cluster_mode else ""
    if "yarn" in cluster.services and sizing.nodemanagers(cluster):
        asks = sizing.SPARK_CLUSTER_VCORE_KEYS if cluster_mode else sizing.SPARK_VCORE_KEYS
        try:
            found: tuple[str | None, str] | None = sizing.vcores_over_maximum(spark, asks, sizing.max_vcores(props))
        except ValueError as exc:
            found = None, str(exc)
        if found is not None:
            key, reason = found
            at = own[key][1] if key in own else None
            return [FieldError(("args", at) if at is not None else ("args",), f"this {mode}SPARK step could never run: {reason}")]
    try:
        reason = _unschedulable(cluster, props, spark, cluster_mode)
    except ValueError as exc:
        reason = str(exc)
    if reason is None:
        return []
    sizing_keys = ("spark.executor.memory", "spark.executor.memoryOverhead", "spark.driver.memory",
                   "spark.driver.memoryOverhead", "spark.executor.cores", "spark.submit.deployMode",
                   "spark.yarn.am.memory", "spark.executor.pyspark.memory", "spark.memory.offHeap.size")
    at = next((own[k][1] for k in sizing_keys if k in own), None)
    return [FieldError(("args", at) if at is not None else ("args",), f"this {mode}SPARK step could never run: {reason}")]


def _unschedulable(cluster: ClusterView, props: dict[str, dict[str, str]], spark: dict[str, str],
                   cluster_mode: bool) -> str | None:
    nodes = sizing.nodemanagers(cluster)
    if not nodes:
        return None
    if "yarn" not in cluster.services:
        return sizing.standalone_executor_unschedulable(nodes, spark)
    app = YarnApp("the step", sizing.spark_am_container(spark, cluster_mode),
                  (("executor", sizing.spark_executor_container(spark)),))
    return yarn_unschedulable(sizing.yarn_model(cluster, nodes, props), app, sizing.always_on(cluster, props))
