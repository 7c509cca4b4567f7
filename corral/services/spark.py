"""SPARK: on YARN whenever the cluster runs YARN, otherwise standalone (a Master on
MASTER, a Worker on each CORE and TASK node). Either way a History Server runs on MASTER,
reading event logs from HDFS when the cluster has it. Daemons are started with Spark's
own ``bin/spark-class`` from the release runtime (the pyspark distribution), bound to the
node's address on Spark's standard ports.

On YARN the Spark jars are not uploaded per submit: ``spark.yarn.jars`` points at
``local:`` copies, since every node deploys the same runtime at the same path (as
Dataproc does with /usr/lib/spark/jars).
"""

from __future__ import annotations

from typing import Any

import httpx

from corral import formats
from corral.agent.protocol import ComponentSpec, FileSpec, Probe
from corral.domain.spec import ClusterSpec
from corral.domain.states import NodeRole
from corral.errors import FieldError
from corral.services import app_usage
from corral.services import hadoop_common as hc
from corral.services.base import (HTTP, ClusterView, MetricsEndpoint, NodeView, ReadyCheck, ServiceBase, StepWork, WaitMemo,
                                   require_core_nodes)
from corral.services.hdfs import NAMENODE_RPC_PORT
from corral.services.s3a import JDBC_JARS, S3_JARS, s3a_properties
from corral.services.sizing import SPARK_AM_HEAP_MIB, SPARK_MIN_HEAP_MIB, derive, nodemanagers

MASTER_PORT = 7077
MASTER_UI_PORT = 8080
WORKER_UI_PORT = 8081
HISTORY_UI_PORT = 18080
HDFS_EVENT_DIR = "/spark-history"
HADOOP_CLASSES = "${HADOOP_HOME}/classes"
AM_FILTER_BARRIER = "io.corral.spark.AmFilterBarrier"  # in HADOOP_CLASSES (corral/runtime/java)
SPARK_EXTRA_CLASSPATH = f"{HADOOP_CLASSES}:{S3_JARS}:{JDBC_JARS}"
# Every Spark JVM's class path starts with Spark's jars, the class path of the host's
# class-data archive (``corral.runtime.cds``), so that the JVM can map it; SPARK_CDS_OPTS
# names the archive (or is the JDK's default when the host has none).
SPARK_JARS = "${SPARK_HOME}/jars/*"
CDS_OPTS = "${SPARK_CDS_OPTS}"
# pyspark 4.3.0's Python sources for executors (the py4j version is the one it ships)
PYSPARK_ARCHIVES = "local:${SPARK_HOME}/python/lib/pyspark.zip,local:${SPARK_HOME}/python/lib/py4j-0.10.9.9-src.zip"
# What a driver logs every spark.starvation.timeout (15 s) while its first job has no
# executor to run on (TaskSchedulerImpl), on YARN and standalone alike.
STARVED = "Initial job has not accepted any resources"
STARVED_FOR_SECONDS = 20.0  # the warning's period and some slack: longer silence means it got executors
WAIT_GRACE_SECONDS = 15.0
STANDALONE_APP_PREFIX = "app-"
# Spark's own Prometheus endpoints (its metrics.properties.template's PrometheusServlet
# lines): a driver's /metrics/prometheus and /metrics/executors/prometheus (the latter
# also needs spark.ui.prometheus.enabled, on by default since Spark 4.0: set for clarity),
# a standalone Master's /metrics/master/prometheus and /metrics/applications/prometheus,
# a Worker's /metrics/prometheus. The History Server starts no metrics system (Spark
# 4.3.0's HistoryServer registers no sink), so it has no such endpoint.
PROMETHEUS_SERVLETS = {
    "spark.metrics.conf.*.sink.prometheusServlet.class": "org.apache.spark.metrics.sink.PrometheusServlet",
    "spark.metrics.conf.*.sink.prometheusServlet.path": "/metrics/prometheus",
    "spark.metrics.conf.master.sink.prometheusServlet.path": "/metrics/master/prometheus",
    "spark.metrics.conf.applications.sink.prometheusServlet.path": "/metrics/applications/prometheus",
    "spark.ui.prometheus.enabled": "true",
}


def starved_reason(work: StepWork, memo: WaitMemo, now: float) -> str | None:
    """The driver's own starvation warning, while it keeps repeating in the step's log."""
    if STARVED in work.new_log:
        memo.since["starved"] = now
    seen = memo.since.get("starved")
    if seen is None or now - seen > STARVED_FOR_SECONDS:
        memo.since.pop("starved", None)
        return None
    return (f"waiting for Spark executors: {STARVED}; check that workers are registered and have "
            "sufficient resources")


def standalone_waiting_reason(state: dict[str, Any], app_ids: set[str], memo: WaitMemo, now: float,
                              grace: float = WAIT_GRACE_SECONDS) -> str | None:
    """``waiting for Spark: ...`` when one of the step's applications in the standalone
    Master's ``/json/`` document (``activeapps``: ``id``, ``state``, ``cores`` granted,
    ``memoryperexecutor``; ``workers``: ``memoryfree``, ``coresfree``, ``state``) has had
    no executor for longer than ``grace`` seconds (WAITING, or no cores granted)."""
    reasons, seen = [], set()
    alive = [w for w in state.get("workers") or [] if w.get("state") == "ALIVE"]
    for app in state.get("activeapps") or []:
        app_id = str(app.get("id"))
        if app_id not in app_ids or (app.get("state") != "WAITING" and int(app.get("cores") or 0) > 0):
            continue
        key = f"{app_id}:no-executors"
        seen.add(key)
        waited = now - memo.first_seen(key, now)
        if waited < grace:
            continue
        memory = app.get("memoryperexecutor", app.get("memoryperslave"))
        free = max(((int(w.get("memoryfree") or 0), int(w.get("coresfree") or 0)) for w in alive), default=None)
        where = (f"largest free on a Worker: {free[0]} MB, {free[1]} cores" if free else "no Worker is ALIVE")
        reasons.append(f"application {app_id} {app.get('state')} for {waited:.0f} s without executors; "
                       f"each needs {memory} MB ({where})")
    memo.keep_only(seen | ({"starved"} if "starved" in memo.since else set()))
    return "waiting for Spark: " + "; ".join(reasons) if reasons else None


def _mib(value: int) -> str:
    return f"{value}m"


def on_yarn(cluster: ClusterView) -> bool:
    return "yarn" in cluster.services


def yarn_executor_mib(cluster: ClusterView) -> int:
    """One executor per NodeManager, as large as fits beside its share of the
    ApplicationMasters, the SQL endpoint's included (``corral.services.sizing``)."""
    return derive(cluster).executor_heap_mib or SPARK_MIN_HEAP_MIB


def java_opts_file(node: NodeView) -> FileSpec:
    """``$SPARK_CONF_DIR/java-opts``: options Spark's launcher puts first on the command line
    of every JVM it builds on the node (AbstractCommandBuilder.buildJavaCommand): spark-submit
    (a client-mode driver), beeline, the daemons, and standalone executors (a Worker's
    SPARK_CONF_DIR). Options given later (a user's extraJavaOptions) win. YARN containers are
    not built by the launcher and get their container's own tmp directory from YARN.

    java.io.tmpdir is the node's: Java ignores TMPDIR, and its default /tmp collects what
    Spark, Hive sessions (``${system:java.io.tmpdir}``) and native libraries leave there."""
    # The launcher splits a line like a shell: quoted, the path may hold spaces.
    quoted = '"-Djava.io.tmpdir=' + node.tmp_dir.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return FileSpec(path=node.path("conf", "spark", "java-opts"), content=quoted + "\n")


class SparkService(ServiceBase):
    name = "spark"
    requires: tuple[str, ...] = ()
    classifications = {"spark-defaults": formats.SPARK_PROPERTIES, "spark-env": formats.SHELL_EXPORTS}
    uses_hadoop = False  # on YARN it is, through YARN
    # A standalone Worker's own port is chosen free; drivers' UIs (4040...) move on when taken.
    node_ports = {NodeRole.MASTER: (MASTER_PORT, MASTER_UI_PORT, HISTORY_UI_PORT),
                  NodeRole.CORE: (WORKER_UI_PORT,), NodeRole.TASK: (WORKER_UI_PORT,)}

    def validate(self, spec: ClusterSpec) -> list[FieldError]:
        return require_core_nodes(spec, "Spark needs at least 1 CORE node")

    # -- configuration -----------------------------------------------------------------

    def _workers(self, cluster: ClusterView) -> list[NodeView]:
        return cluster.with_roles(NodeRole.CORE, NodeRole.TASK)

    def master_url(self, cluster: ClusterView) -> str:
        return f"spark://{cluster.master.address}:{MASTER_PORT}"

    def _event_dir(self, cluster: ClusterView) -> str:
        if "hdfs" in cluster.services:
            return hc.default_fs(cluster) + HDFS_EVENT_DIR
        return "file://" + cluster.master.path("data", "spark-events")

    def _placement(self, cluster: ClusterView) -> dict[str, str]:
        workers = self._workers(cluster)
        executor_cores = min((w.itype.vcpus for w in workers), default=1)
        if not on_yarn(cluster):
            # One executor per worker, as large as the smallest worker allows, so a job
            # spreads over every node (EMR's maximizeResourceAllocation).
            executor_mib = min((w.itype.usable_mib for w in workers), default=1024)
            return {"spark.master": self.master_url(cluster), "spark.executor.memory": _mib(executor_mib),
                    "spark.executor.cores": str(executor_cores), "spark.driver.host": cluster.master.address,
                    "spark.driver.bindAddress": cluster.master.address}
        return {
            "spark.master": "yarn",
            "spark.submit.deployMode": "client",
            "spark.executor.memory": _mib(yarn_executor_mib(cluster)),
            "spark.executor.cores": str(executor_cores),
            # Dynamic allocation, as on EMR: a job takes executors on nodes that join while
            # it runs and gives back those it does not use. Shuffle tracking keeps an
            # executor while its shuffle output is needed (no external shuffle service on
            # the NodeManagers); it starts with one per NodeManager of the cluster at create
            # (registry.COUNT_DERIVED keeps that number through resizes).
            "spark.dynamicAllocation.enabled": "true",
            "spark.dynamicAllocation.shuffleTracking.enabled": "true",
            "spark.dynamicAllocation.minExecutors": "0",
            "spark.dynamicAllocation.initialExecutors": str(len(nodemanagers(cluster))),
            # A NodeManager YARN decommissions gracefully: its executors stop taking tasks
            # and move their shuffle and cached blocks to executors that stay
            # (SPARK-30873, SPARK-20624), so a scale-in loses no work.
            "spark.decommission.enabled": "true",
            "spark.storage.decommission.enabled": "true",
            "spark.storage.decommission.shuffleBlocks.enabled": "true",
            "spark.storage.decommission.rddBlocks.enabled": "true",
            # The client-mode AM (ExecutorLauncher) only asks for executors: a small heap
            # leaves room beside it for an executor on small nodes.
            "spark.yarn.am.memory": _mib(SPARK_AM_HEAP_MIB),
            "spark.yarn.jars": "local:${SPARK_HOME}/jars/*",
            # pyspark ships its own (shaded) Hadoop client; Hadoop's jars would clash with it.
            "spark.yarn.populateHadoopClasspath": "false",
            "spark.yarn.am.extraClassPath": f"{SPARK_JARS}:{HADOOP_CLASSES}",
            "spark.yarn.am.extraJavaOptions": CDS_OPTS,
            "spark.executorEnv.PYSPARK_PYTHON": "${PYTHON}",
            "spark.yarn.appMasterEnv.PYSPARK_PYTHON": "${PYTHON}",
            "spark.yarn.historyServer.address": f"{cluster.master.address}:{HISTORY_UI_PORT}",
            # The driver runs on the master (client mode, SPARK_LOCAL_IP from the step's
            # environment) or in a container (cluster mode): there it takes the address
            # of the node it landed on, which YARN expands from the NodeManager's env.
            "spark.yarn.appMasterEnv.SPARK_LOCAL_IP": "{{CORRAL_BIND_ADDRESS}}",
            "spark.yarn.submit.waitAppCompletion": "true",
            # A client-mode driver attaches its web UI only once the AM's filter is on it:
            # else the two can overlap and fail the SparkContext (io.corral.spark.AmFilterBarrier).
            # The "default" list: a user's spark.plugins come on top of it.
            "spark.plugins.defaultList": AM_FILTER_BARRIER,
        }

    def default_properties(self, cluster: ClusterView) -> dict[str, dict[str, str]]:
        master = cluster.master
        driver_mib = max(512, min(2048, master.itype.usable_mib // 2))
        # Spark's jars first (the class-data archive's class path), then Corral's socket
        # factory (which the cluster's core-site names), S3A and the JDBC drivers, for every
        # JVM. Without core-site, spark.hadoop.* carries the S3A settings.
        extra = f"{SPARK_JARS}:{SPARK_EXTRA_CLASSPATH}" if hc.uses_hadoop_runtime(cluster) else SPARK_JARS
        classpath = {"spark.driver.extraClassPath": extra, "spark.executor.extraClassPath": extra}
        if "hdfs" not in cluster.services:
            classpath.update({f"spark.hadoop.{k}": v for k, v in s3a_properties(cluster).items()})
            # No core-site either: Hadoop's hadoop.tmp.dir (S3A's upload buffers, among
            # others) would be /tmp/hadoop-${user.name}. Hadoop expands the JVM's own
            # java.io.tmpdir: the node's, or a YARN container's.
            classpath["spark.hadoop.hadoop.tmp.dir"] = "${java.io.tmpdir}/hadoop"
        # With HIVE, every Spark application shares the cluster's metastore.
        from corral.services.hive import metastore_uri, warehouse_dir  # noqa: PLC0415 - hive builds on spark

        hive = {"spark.sql.catalogImplementation": "hive", "spark.hadoop.hive.metastore.uris": metastore_uri(cluster),
                "spark.sql.warehouse.dir": warehouse_dir(cluster)} if "hive" in cluster.services else {}
        defaults = {
            **self._placement(cluster),
            **classpath,
            **hive,
            "spark.driver.memory": _mib(driver_mib),
            # The "default" options come before a user's extraJavaOptions, which keep them.
            "spark.driver.defaultJavaOptions": CDS_OPTS,
            "spark.executor.defaultJavaOptions": CDS_OPTS,
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": self._event_dir(cluster),
            "spark.history.fs.logDirectory": self._event_dir(cluster),
            "spark.history.ui.port": str(HISTORY_UI_PORT),
            "spark.history.fs.update.interval": "5s",
            "spark.pyspark.python": "${PYTHON}",
            "spark.ui.showConsoleProgress": "false",
            # No authentication (spark.authenticate is off): a standalone Master's REST
            # submission server (port 6066) would run any jar for whoever posts one, and
            # the web UIs' kill links stop anyone's jobs. Both off; the Master's RPC port
            # still takes applications from anyone who reaches it, hence a trusted network.
            "spark.master.rest.enabled": "false",
            "spark.ui.killEnabled": "false",
            **(PROMETHEUS_SERVLETS if cluster.monitoring else {"spark.ui.prometheus.enabled": "false"}),
        }
        # spark-env has no derived defaults: daemon heaps are set per daemon below, and a
        # user's SPARK_DAEMON_MEMORY (or any other variable) applies to every daemon and step.
        return {"spark-defaults": defaults, "spark-env": {}}

    def _conf_dir(self, node: NodeView) -> str:
        return node.path("conf", "spark")

    def config_files(self, cluster: ClusterView, node: NodeView, props: dict[str, dict[str, str]]) -> list[FileSpec]:
        conf = self._conf_dir(node)
        defaults = formats.java_properties(props.get("spark-defaults", {}), "spark-defaults classification, rendered by Corral")
        # spark-env.sh is sourced by Spark's scripts (load-spark-env.sh) for every daemon and
        # every spark-submit (steps, the SQL endpoint), after the environment Corral gives
        # them; the node's binding and directories are set again after the user's lines.
        env = formats.shell_exports(props.get("spark-env", {}), "spark-env classification, rendered by Corral",
                                    trailer={"SPARK_LOCAL_IP": node.address, "SPARK_LOCAL_DIRS": node.path("data", "spark-local")})
        return [FileSpec(path=conf + "/spark-defaults.conf", content=defaults, format="properties"),
                FileSpec(path=conf + "/spark-env.sh", content=env, format="shell"),
                java_opts_file(node)]

    # -- daemons -------------------------------------------------------------------------

    def _daemon_env(self, node: NodeView, memory: str) -> dict[str, str]:
        # The spark-env classification reaches daemons through spark-env.sh (config_files),
        # which replaces any of these it sets ("$SPARK_DAEMON_JAVA_OPTS -Dx" adds to one).
        return {
            "SPARK_DAEMON_MEMORY": memory,
            "SPARK_HOME": "${SPARK_HOME}",
            "SPARK_CONF_DIR": self._conf_dir(node),
            "SPARK_LOCAL_IP": node.address,
            "SPARK_LOCAL_DIRS": node.path("data", "spark-local"),
            # Spark's control daemons run as lean as Hadoop's (C1, serial collector).
            "SPARK_DAEMON_JAVA_OPTS": f"{hc.DAEMON_JAVA_OPTS} {CDS_OPTS}",
            "SPARK_DAEMON_CLASSPATH": SPARK_JARS,
            "SPARK_LAUNCHER_OPTS": CDS_OPTS,
            "SPARK_NO_DAEMONIZE": "1",
            "PYSPARK_PYTHON": "${PYTHON}",
        }

    def _history_server(self, cluster: ClusterView, node: NodeView, props: dict[str, dict[str, str]]) -> ComponentSpec:
        spark_class = "${SPARK_HOME}/bin/spark-class"
        argv = [spark_class, "org.apache.spark.deploy.history.HistoryServer", "--properties-file",
                self._conf_dir(node) + "/spark-defaults.conf"]
        env = self._daemon_env(node, "512m")
        wait_for: list[Probe] = []
        if "hdfs" in cluster.services:
            # The History Server refuses a missing log directory: create it in HDFS first
            # (retrying while the NameNode is still in safe mode).
            hdfs = hc.tool(node, "hdfs")
            # (The paths are arguments, not part of the script: nothing in them is shell syntax.)
            mkdir = 'until "$1" dfs -mkdir -p "$2"; do sleep 2; done; shift 2; exec "$@"'
            argv = ["/bin/bash", "-c", mkdir, "spark-history-server", hdfs, HDFS_EVENT_DIR, *argv]
            env.update(hc.client_env(cluster))
            env.pop("PATH")
            env["SPARK_DAEMON_CLASSPATH"] = f"{SPARK_JARS}:{HADOOP_CLASSES}"
            wait_for = [Probe(kind="tcp", host=node.address, port=NAMENODE_RPC_PORT)]
        return ComponentSpec(
            name="spark-history-server",
            service=self.name,
            argv=argv,
            env=env,
            health=Probe(kind="http", host=node.address, port=HISTORY_UI_PORT, path="/api/v1/version"),
            ports=[HISTORY_UI_PORT],
            wait_for=wait_for,
            directories=[node.path("data", "spark-events"), node.path("data", "spark-local")],
        )

    def components(self, cluster: ClusterView, node: NodeView, props: dict[str, dict[str, str]]) -> list[ComponentSpec]:
        spark_class = "${SPARK_HOME}/bin/spark-class"
        props_file = self._conf_dir(node) + "/spark-defaults.conf"
        if node.role is NodeRole.MASTER:
            history = self._history_server(cluster, node, props)
            if on_yarn(cluster):
                return [history]
            master = ComponentSpec(
                name="spark-master",
                service=self.name,
                argv=[spark_class, "org.apache.spark.deploy.master.Master", "--host", node.address,
                      "--port", str(MASTER_PORT), "--webui-port", str(MASTER_UI_PORT), "--properties-file", props_file],
                env=self._daemon_env(node, "512m"),
                health=Probe(kind="http", host=node.address, port=MASTER_UI_PORT, path="/json/"),
                ports=[MASTER_PORT, MASTER_UI_PORT],
                # Drivers run on the master and write their event logs here.
                directories=[node.path("data", "spark-events"), node.path("data", "spark-local")],
            )
            return [master, history]
        if on_yarn(cluster):
            return []  # executors run in YARN containers
        itype = node.itype
        return [
            ComponentSpec(
                name="spark-worker",
                service=self.name,
                argv=[spark_class, "org.apache.spark.deploy.worker.Worker", self.master_url(cluster),
                      "--host", node.address, "--cores", str(itype.vcpus), "--memory", _mib(itype.usable_mib),
                      "--webui-port", str(WORKER_UI_PORT), "--work-dir", node.path("data", "spark-work"),
                      "--properties-file", props_file],
                env=self._daemon_env(node, "384m"),
                health=Probe(kind="http", host=node.address, port=WORKER_UI_PORT, path="/json/"),
                # A Worker that starts before the Master listens backs off 5-15 s before
                # retrying its registration; waiting for the port avoids that stall.
                wait_for=[Probe(kind="tcp", host=cluster.master.address, port=MASTER_PORT)],
                ports=[WORKER_UI_PORT],
                directories=[node.path("data", "spark-work"), node.path("data", "spark-local")],
            )
        ]

    def step_env(self, cluster: ClusterView) -> dict[str, str]:
        master = cluster.master
        return {
            "SPARK_HOME": "${SPARK_HOME}",
            "SPARK_CONF_DIR": self._conf_dir(master),
            "SPARK_LOCAL_IP": master.address,
            "SPARK_LOCAL_DIRS": master.path("data", "spark-local"),
            "PYSPARK_PYTHON": "${PYTHON}",
            "SPARK_MASTER_URL": "yarn" if on_yarn(cluster) else self.master_url(cluster),
            "SPARK_LAUNCHER_OPTS": CDS_OPTS,  # spark-submit's own first JVM
            # spark-submit's own JVM talks to HDFS and YARN too (in cluster mode it is not
            # the driver, so spark.driver.extraClassPath does not reach it).
            **({"SPARK_DIST_CLASSPATH": HADOOP_CLASSES} if "hdfs" in cluster.services else {}),
            # PySpark's own archives are on every node at the same path: YARN containers
            # take them from there instead of a copy uploaded with every application.
            **({"PYSPARK_ARCHIVES_PATH": PYSPARK_ARCHIVES} if on_yarn(cluster) else {}),
            "PATH": "${SPARK_HOME}/bin",
        }

    # -- readiness and UIs ---------------------------------------------------------------

    def check_ready(self, cluster: ClusterView, timeout: float) -> ReadyCheck:
        if on_yarn(cluster):
            url = f"http://{cluster.master.address}:{HISTORY_UI_PORT}/api/v1/version"
            try:
                version = HTTP.get(url, timeout=timeout).json().get("spark", "?")
            except (httpx.HTTPError, ValueError) as exc:
                return ReadyCheck(False, f"Spark History Server not answering at {url}: {exc!r}")
            return ReadyCheck(True, f"Spark {version} on YARN, History Server answering")
        url = f"http://{cluster.master.address}:{MASTER_UI_PORT}/json/"
        try:
            state = HTTP.get(url, timeout=timeout).json()
        except (httpx.HTTPError, ValueError) as exc:
            return ReadyCheck(False, f"Spark Master not answering at {url}: {exc}")
        expected = {w.address for w in self._workers(cluster)}
        alive = {w["host"] for w in state.get("workers", []) if w.get("state") == "ALIVE"}
        if state.get("status") != "ALIVE":
            return ReadyCheck(False, f"Spark Master is {state.get('status')}")
        missing = expected - alive
        if missing:
            return ReadyCheck(False, f"{len(alive & expected)}/{len(expected)} Spark workers registered")
        return ReadyCheck(True, f"Spark Master ALIVE with {len(expected)} workers")

    def waiting_reason(self, cluster: ClusterView, work: StepWork, memo: WaitMemo, now: float) -> str | None:
        """Standalone: the Master's view of the step's applications; either way, the
        driver's own starvation warning in the step's log (the yarn service, asked first,
        says what YARN withholds)."""
        reason = None
        apps = {a for a in work.application_ids if a.startswith(STANDALONE_APP_PREFIX)}
        if apps and not on_yarn(cluster):
            try:
                state = HTTP.get(f"http://{cluster.master.address}:{MASTER_UI_PORT}/json/", timeout=2.0).json()
                reason = standalone_waiting_reason(state, apps, memo, now)
            except (httpx.HTTPError, ValueError, AttributeError, TypeError):
                reason = None
        starved = starved_reason(work, memo, now)
        return reason or starved

    def endpoints(self, cluster: ClusterView) -> dict[str, str]:
        return {} if on_yarn(cluster) else {"spark-master": self.master_url(cluster)}

    def application_usage(self, cluster: ClusterView, application_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        """Each Spark application's executors (on YARN, one container each), from the
        History Server; a standalone Master's applications (``app-...``) too."""
        from corral.services.yarn import RM_WEB_PORT  # noqa: PLC0415 - spark on yarn

        history = f"http://{cluster.master.address}:{HISTORY_UI_PORT}"
        rm = f"http://{cluster.master.address}:{RM_WEB_PORT}/ws/v1/cluster"
        usage: dict[str, dict[str, Any]] = {}
        for app in application_ids:
            spark = app.startswith(STANDALONE_APP_PREFIX) or (
                on_yarn(cluster) and app_usage.application_type(rm, app, timeout) == "SPARK")
            if not spark:
                continue
            try:
                usage[app] = {"task_containers": app_usage.spark_executors(history, app, timeout)}
            except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
                continue
        return usage

    def metrics_endpoints(self, cluster: ClusterView, timeout: float) -> list[MetricsEndpoint]:
        """Standalone: the Master's /metrics/master/prometheus and
        /metrics/applications/prometheus, each Worker's /metrics/prometheus. On YARN: each
        running Spark application's driver (/metrics/prometheus and, with executors,
        /metrics/executors/prometheus) through YARN's web proxy, which a driver's AmIpFilter
        lets through (it redirects any other client to the proxy), labelled with its
        application id; the SQL endpoint's as component ``sql-endpoint``. The History
        Server has no metrics system (``PROMETHEUS_SERVLETS``)."""
        if not cluster.monitoring:
            return []
        master = cluster.master
        if not on_yarn(cluster):
            ui = f"{master.address}:{MASTER_UI_PORT}"
            return [MetricsEndpoint(master.node_id, master.role, "spark-master", ui, "/metrics/master/prometheus"),
                    MetricsEndpoint(master.node_id, master.role, "spark-master", ui, "/metrics/applications/prometheus"),
                    *(MetricsEndpoint(n.node_id, n.role, "spark-worker", f"{n.address}:{WORKER_UI_PORT}", "/metrics/prometheus")
                      for n in cluster.with_roles(NodeRole.CORE, NodeRole.TASK))]
        from corral.services.yarn import RM_WEB_PORT, WEB_PROXY_PORT, is_always_on  # noqa: PLC0415 - spark on yarn

        url = f"http://{master.address}:{RM_WEB_PORT}/ws/v1/cluster/apps?states=RUNNING&applicationTypes=SPARK"
        try:
            apps = (HTTP.get(url, timeout=timeout).json().get("apps") or {}).get("app") or []
        except (httpx.HTTPError, ValueError, AttributeError):
            return []
        proxy = f"{master.address}:{WEB_PROXY_PORT}"
        out = []
        for app in apps:
            app_id = str(app.get("id") or "")
            if not app_id.startswith("application_"):
                continue
            component = "sql-endpoint" if is_always_on(app) else "spark-driver"
            labels = (("application_id", app_id),)
            out += [MetricsEndpoint(master.node_id, master.role, component, proxy, f"/proxy/{app_id}{path}", labels)
                    for path in ("/metrics/prometheus", "/metrics/executors/prometheus")]
        return out

    def web_uis(self, cluster: ClusterView) -> dict[str, str]:
        master = cluster.master.address
        uis = {} if on_yarn(cluster) else {"spark-master": f"http://{master}:{MASTER_UI_PORT}"}
        return {**uis, "spark-history-server": f"http://{master}:{HISTORY_UI_PORT}"}
