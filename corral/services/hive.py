"""HIVE: a shared metastore and a SQL endpoint on MASTER.

- The Hive metastore (Thrift, 9083) from the Hive 2.3 jars that ship with pyspark, backed
  by embedded Derby in the master's data directory, its warehouse in HDFS.
- The Spark Thrift Server (HiveServer2 protocol, 10000): Spark's own, running on the
  cluster (on YARN when the cluster has it), with dynamic allocation so an idle endpoint
  holds no executors.

Every Spark step uses the metastore (spark-defaults point at it), so a table one step
creates is visible to the next and to SQL clients.
"""

from __future__ import annotations

import socket

import httpx

from corral import formats
from corral.agent.protocol import ComponentSpec, FileSpec, Probe
from corral.domain.jdbc import driver_class, driver_url, is_mysql
from corral.domain.secrets import METASTORE_PASSWORD, placeholder
from corral.domain.states import NodeRole
from corral.services import hadoop_common as hc
from corral.services.base import HTTP, ClusterView, NodeView, NotObserved, ReadyCheck, ServiceBase
from corral.services.hdfs import NAMENODE_RPC_PORT
from corral.services.s3a import JDBC_JARS, S3_JARS
from corral.services.spark import CDS_OPTS, SPARK_JARS
from corral.services.yarn import ALWAYS_ON_ATTEMPT_WINDOW_SECONDS, ALWAYS_ON_TAG

METASTORE_PORT = 9083
METASTORE_MAIN = "io.corral.hive.NodeBoundMetaStore"  # in HADOOP_CLASSES (corral/runtime/java)
THRIFT_PORT = 10000
SQL_ENDPOINT_NAME = "Corral SQL endpoint (Spark Thrift Server)"  # yarn.is_always_on
THRIFT_UI_PORT = 4041  # the Thrift server's Spark UI (4040 is left to step drivers)
WAREHOUSE = "/user/hive/warehouse"


def metastore_uri(cluster: ClusterView) -> str:
    return f"thrift://{cluster.master.address}:{METASTORE_PORT}"


def warehouse_dir(cluster: ClusterView) -> str:
    if cluster.metastore:
        return str(cluster.metastore["warehouse_dir"])
    return hc.default_fs(cluster) + WAREHOUSE


def jdbc_url(cluster: ClusterView) -> str:
    return f"jdbc:hive2://{cluster.master.address}:{THRIFT_PORT}/default"


def backing_store(cluster: ClusterView) -> dict[str, str]:
    """Embedded Derby in the master's data directory, or the spec's external database,
    which outlives the cluster: a later cluster on the same database sees its tables."""
    external = cluster.metastore
    if not external:
        derby = cluster.master.path("data", "hive", "metastore_db")
        return {"javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={derby};create=true",
                "javax.jdo.option.ConnectionDriverName": "org.apache.derby.jdbc.EmbeddedDriver"}
    url = external["jdbc_url"]
    # MySQL/MariaDB: DataNucleus picks its adapter by the product name the driver reports,
    # and MariaDB Connector/J says "MariaDB", which it does not know: it would fall back to
    # a generic adapter. Name the MySQL one. Tables are latin1, as in Hive's own MySQL
    # schema: in a utf8mb4 database a VARCHAR(32672) column such as
    # TABLE_PARAMS.PARAM_VALUE exceeds MySQL's 65535-byte row limit.
    mysql = {"datanucleus.rdbms.datastoreAdapterClassName": "org.datanucleus.store.rdbms.adapter.MySQLAdapter",
             "datanucleus.rdbms.mysql.characterSet": "latin1",
             "datanucleus.rdbms.mysql.collation": "latin1_bin"} if is_mysql(url) else {}
    return {**mysql, "javax.jdo.option.ConnectionURL": driver_url(url),
            "javax.jdo.option.ConnectionDriverName": driver_class(url),
            "javax.jdo.option.ConnectionUserName": external["username"],
            "javax.jdo.option.ConnectionPassword": placeholder(METASTORE_PASSWORD),
            # DataNucleus creates the schema's tables as they are first used, from a second
            # connection. Adding a foreign key there locks the referenced table, which the
            # first connection's open transaction holds: on PostgreSQL the metastore hangs
            # in its first CREATE TABLE. Tables and columns yes, constraints no.
            "datanucleus.schema.autoCreateAll": "false",
            "datanucleus.schema.autoCreateTables": "true",
            "datanucleus.schema.autoCreateColumns": "true",
            "datanucleus.schema.autoCreateConstraints": "false"}


def conf_dir(node: NodeView) -> str:
    return node.path("conf", "hive")


class HiveService(ServiceBase):
    name = "hive"
    requires: tuple[str, ...] = ("hdfs", "spark")  # the warehouse is in HDFS; the endpoint is Spark's
    classifications = {"hive-site": formats.HADOOP_XML}
    uses_hadoop = True
    node_ports = {NodeRole.MASTER: (METASTORE_PORT, THRIFT_PORT, THRIFT_UI_PORT)}

    def default_properties(self, cluster: ClusterView) -> dict[str, dict[str, str]]:
        return {"hive-site": {
            # The metastore creates its schema on first start (Hive's schematool is not shipped).
            "datanucleus.schema.autoCreateAll": "true",
            **backing_store(cluster),
            "hive.metastore.schema.verification": "false",
            "hive.metastore.uris": metastore_uri(cluster),
            "hive.metastore.warehouse.dir": warehouse_dir(cluster),
            "hive.async.log.enabled": "false",
            "hive.server2.thrift.bind.host": cluster.master.address,
            "hive.server2.thrift.port": str(THRIFT_PORT),
            "hive.server2.enable.doAs": "false",
            # Every Hive session (each Spark driver, the SQL endpoint) makes scratch and
            # resource directories, by default in /tmp and left behind: keep them in the
            # master's directory, which goes with the cluster.
            "hive.exec.local.scratchdir": cluster.master.path("data", "hive-tmp"),
            "hive.downloaded.resources.dir": cluster.master.path("data", "hive-tmp", "${hive.session.id}_resources"),
        }}

    def config_files(self, cluster: ClusterView, node: NodeView, props: dict[str, dict[str, str]]) -> list[FileSpec]:
        if node.role is not NodeRole.MASTER:
            return []
        site = hc.site_xml(props.get("hive-site", {}))
        # Spark reads hive-site.xml from its conf dir; the metastore from its own classpath.
        return [FileSpec(path=f"{conf_dir(node)}/hive-site.xml", content=site, format="xml"),
                FileSpec(path=node.path("conf", "spark", "hive-site.xml"), content=site, format="xml")]

    def components(self, cluster: ClusterView, node: NodeView, props: dict[str, dict[str, str]]) -> list[ComponentSpec]:
        if node.role is not NodeRole.MASTER:
            return []
        env = {**hc.client_env(cluster), "SPARK_HOME": "${SPARK_HOME}", "SPARK_CONF_DIR": node.path("conf", "spark"),
               "SPARK_LOCAL_IP": node.address, "PYSPARK_PYTHON": "${PYTHON}", "SPARK_LAUNCHER_OPTS": CDS_OPTS}
        env.pop("PATH")
        # Spark's Hive 2.3 jars (first: the class path of the Spark class-data archive; they
        # hold no configuration files to shadow ours), the configuration, S3A (tables may
        # live in s3a://) and the JDBC drivers of an external metastore database.
        classpath = f"{SPARK_JARS}:{conf_dir(node)}:{hc.conf_dir(node)}:${{HADOOP_HOME}}/classes:{S3_JARS}:{JDBC_JARS}"
        namenode = Probe(kind="tcp", host=node.address, port=NAMENODE_RPC_PORT)
        metastore = ComponentSpec(
            name="hive-metastore", service=self.name,
            argv=["${JAVA_HOME}/bin/java", "-Xmx512m", *hc.DAEMON_JAVA_OPTS.split(), CDS_OPTS, *hc.JAVA_MODULE_OPTS.split(),
                  f"-Dderby.system.home={node.path('data', 'hive')}", f"-Djava.io.tmpdir={node.tmp_dir}", "-cp", classpath,
                  # HiveMetaStore's own main listens on 0.0.0.0 (Hive 2.3 has no bind
                  # host): this one is the same server on the node's address.
                  METASTORE_MAIN, node.address, str(METASTORE_PORT)],
            env=env,
            health=Probe(kind="tcp", host=node.address, port=METASTORE_PORT),
            wait_for=[namenode],
            ports=[METASTORE_PORT],
            directories=[node.path("data", "hive")],
        )
        thrift = ComponentSpec(
            name="spark-thriftserver", service=self.name,
            argv=["${SPARK_HOME}/bin/spark-submit", "--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
                  "--name", SQL_ENDPOINT_NAME, "--conf", f"spark.yarn.tags={ALWAYS_ON_TAG}",
                  # Idle, the endpoint keeps only its driver (and, on YARN, an AM).
                  "--conf", "spark.dynamicAllocation.enabled=true",
                  "--conf", "spark.dynamicAllocation.shuffleTracking.enabled=true",
                  "--conf", "spark.dynamicAllocation.minExecutors=0",
                  "--conf", "spark.dynamicAllocation.initialExecutors=0",
                  "--conf", "spark.dynamicAllocation.executorIdleTimeout=30s",
                  # Executors holding shuffle data are otherwise kept forever, and a
                  # query's GROUP BY would pin them, starving the steps that follow.
                  "--conf", "spark.dynamicAllocation.shuffleTracking.timeout=30s",
                  "--conf", "spark.dynamicAllocation.cachedExecutorIdleTimeout=60s",
                  "--conf", "spark.executor.instances=0",
                  # A leaving node may take its idle AM with it (YarnService.drain_status):
                  # failed attempts count for an hour only, so a long-lived endpoint
                  # never runs out of them.
                  "--conf", f"spark.yarn.am.attemptFailuresValidityInterval={ALWAYS_ON_ATTEMPT_WINDOW_SECONDS}s",
                  "--conf", f"spark.ui.port={THRIFT_UI_PORT}",
                  "--conf", "spark.driver.memory=512m",
                  "spark-internal"],
            env={**env, "SPARK_DIST_CLASSPATH": "${HADOOP_HOME}/classes", "SPARK_NO_DAEMONIZE": "1"},
            health=Probe(kind="tcp", host=node.address, port=THRIFT_PORT),
            wait_for=[Probe(kind="tcp", host=node.address, port=METASTORE_PORT)],
            ports=[THRIFT_PORT, THRIFT_UI_PORT],
            directories=[],
            stop_timeout=20.0,
        )
        return [metastore, thrift]

    def step_env(self, cluster: ClusterView) -> dict[str, str]:
        return {"HIVE_JDBC_URL": jdbc_url(cluster)}

    def busy_reason(self, cluster: ClusterView, timeout: float) -> str | None:
        """Queries running on the SQL endpoint, from its driver's REST API (Spark's
        ``/api/v1/applications/{id}/sql``; on YARN the driver's UI redirects to the web
        proxy, which is followed)."""
        ui = f"http://{cluster.master.address}:{THRIFT_UI_PORT}/api/v1/applications"
        try:
            running = 0
            for app in HTTP.get(ui, timeout=timeout, follow_redirects=True).json():
                executions = HTTP.get(f"{ui}/{app['id']}/sql?details=false&length=1000", timeout=timeout,
                                      follow_redirects=True).json()
                running += sum(1 for e in executions if e.get("status") == "RUNNING")
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise NotObserved(f"SQL endpoint not answering: {exc!r}") from exc
        return f"{running} SQL quer{'y is' if running == 1 else 'ies are'} running" if running else None

    def check_ready(self, cluster: ClusterView, timeout: float) -> ReadyCheck:
        for what, port in (("Hive metastore", METASTORE_PORT), ("Spark Thrift Server", THRIFT_PORT)):
            try:
                with socket.create_connection((cluster.master.address, port), timeout=timeout):
                    pass
            except OSError as exc:
                return ReadyCheck(False, f"{what} not answering on {cluster.master.address}:{port}: {exc}")
        return ReadyCheck(True, f"Hive metastore and SQL endpoint answering ({jdbc_url(cluster)})")

    def web_uis(self, cluster: ClusterView) -> dict[str, str]:
        return {"sql-endpoint-ui": f"http://{cluster.master.address}:{THRIFT_UI_PORT}"}

    def endpoints(self, cluster: ClusterView) -> dict[str, str]:
        return {"sql": jdbc_url(cluster), "hive-metastore": metastore_uri(cluster)}
