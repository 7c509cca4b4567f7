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

import httpx

from corral.agent.protocol import ComponentSpec, FileSpec, Probe
from corral.domain.spec import ClusterSpec
from corral.domain.states import NodeRole
from corral.errors import FieldError
from corral.services import hadoop_common as hc
from corral.services.base import HTTP, ClusterView, NodeView, ReadyCheck, ServiceBase, require_core_nodes
from corral.services.hdfs import NAMENODE_RPC_PORT
from corral.services.s3a import JDBC_JARS, S3_JARS, s3a_properties
from corral.services.yarn import MIN_ALLOCATION_MIB, nodemanagers, smallest_nodemanager_mib

MASTER_PORT = 7077
MASTER_UI_PORT = 8080
WORKER_UI_PORT = 8081
HISTORY_UI_PORT = 18080
HDFS_EVENT_DIR = "/spark-history"
YARN_AM_MIB = 512
HADOOP_CLASSES = "${HADOOP_HOME}/classes"
SPARK_EXTRA_CLASSPATH = f"{HADOOP_CLASSES}:{S3_JARS}:{JDBC_JARS}"
# Every Spark JVM's class path starts with Spark's jars, the class path of the host's
# class-data archive (``corral.runtime.cds``), so that the JVM can map it; SPARK_CDS_OPTS
# names the archive (or is the JDK's default when the host has none).
SPARK_JARS = "${SPARK_HOME}/jars/*"
CDS_OPTS = "${SPARK_CDS_OPTS}"
# pyspark 4.3.0's Python sources for executors (the py4j version is the one it ships)
PYSPARK_ARCHIVES = "local:${SPARK_HOME}/python/lib/pyspark.zip,local:${SPARK_HOME}/python/lib/py4j-0.10.9.9-src.zip"


def _mib(value: int) -> str:
    return f"{value}m"


def on_yarn(cluster: ClusterView) -> bool:
    return "yarn" in cluster.services


def _with_overhead(mib: int) -> int:
    """A container's size for a JVM of ``mib``: Spark adds max(384 MiB, 10%)."""
    return mib + max(384, mib // 10)


def yarn_executor_mib(cluster: ClusterView) -> int:
    """One executor per NodeManager, leaving room beside it for an ApplicationMaster, so
    an application gets an executor on every node."""
    am_container = -(-_with_overhead(YARN_AM_MIB) // MIN_ALLOCATION_MIB) * MIN_ALLOCATION_MIB
    room = smallest_nodemanager_mib(cluster) - am_container
    mib = room * 10 // 11 if room >= 384 * 11 else room - 384
    return max(512, mib)


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
    classifications = ("spark-defaults", "spark-env")
    uses_hadoop = False  # on YARN it is, through YARN

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
            "spark.executor.instances": str(len(nodemanagers(cluster))),
            "spark.yarn.am.memory": _mib(YARN_AM_MIB),
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
            "spark.master.rest.enabled": "false",
        }
        # spark-env has no derived defaults: daemon heaps are set per daemon below, and a
        # user's SPARK_DAEMON_MEMORY (or any other variable) applies to every daemon.
        return {"spark-defaults": defaults, "spark-env": {}}

    def _conf_dir(self, node: NodeView) -> str:
        return node.path("conf", "spark")

    def config_files(self, cluster: ClusterView, node: NodeView, props: dict[str, dict[str, str]]) -> list[FileSpec]:
        lines = [f"{k} {v}" for k, v in sorted(props.get("spark-defaults", {}).items())]
        return [FileSpec(path=self._conf_dir(node) + "/spark-defaults.conf", content="\n".join(lines) + "\n"),
                java_opts_file(node)]

    # -- daemons -------------------------------------------------------------------------

    def _daemon_env(self, node: NodeView, props: dict[str, dict[str, str]], memory: str) -> dict[str, str]:
        env = dict(props.get("spark-env", {}))
        env.setdefault("SPARK_DAEMON_MEMORY", memory)
        env.update(
            {
                "SPARK_HOME": "${SPARK_HOME}",
                "SPARK_CONF_DIR": self._conf_dir(node),
                "SPARK_LOCAL_IP": node.address,
                "SPARK_LOCAL_DIRS": node.path("data", "spark-local"),
                # Spark's control daemons run as lean as Hadoop's (C1, serial collector).
                "SPARK_DAEMON_JAVA_OPTS": f"{hc.DAEMON_JAVA_OPTS} {CDS_OPTS} {env.get('SPARK_DAEMON_JAVA_OPTS', '')}".strip(),
                "SPARK_DAEMON_CLASSPATH": SPARK_JARS,
                "SPARK_LAUNCHER_OPTS": CDS_OPTS,
                "SPARK_NO_DAEMONIZE": "1",
                "PYSPARK_PYTHON": "${PYTHON}",
            }
        )
        return env

    def _history_server(self, cluster: ClusterView, node: NodeView, props: dict[str, dict[str, str]]) -> ComponentSpec:
        spark_class = "${SPARK_HOME}/bin/spark-class"
        argv = [spark_class, "org.apache.spark.deploy.history.HistoryServer", "--properties-file",
                self._conf_dir(node) + "/spark-defaults.conf"]
        env = self._daemon_env(node, props, "512m")
        wait_for: list[Probe] = []
        if "hdfs" in cluster.services:
            # The History Server refuses a missing log directory: create it in HDFS first
            # (retrying while the NameNode is still in safe mode).
            hdfs = hc.tool(node, "hdfs")
            mkdir = f'until "{hdfs}" dfs -mkdir -p {HDFS_EVENT_DIR}; do sleep 2; done; exec "$@"'
            argv = ["/bin/bash", "-c", mkdir, "spark-history-server", *argv]
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
                env=self._daemon_env(node, props, "512m"),
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
                env=self._daemon_env(node, props, "384m"),
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

    def endpoints(self, cluster: ClusterView) -> dict[str, str]:
        return {} if on_yarn(cluster) else {"spark-master": self.master_url(cluster)}

    def web_uis(self, cluster: ClusterView) -> dict[str, str]:
        master = cluster.master.address
        uis = {} if on_yarn(cluster) else {"spark-master": f"http://{master}:{MASTER_UI_PORT}"}
        return {**uis, "spark-history-server": f"http://{master}:{HISTORY_UI_PORT}"}
