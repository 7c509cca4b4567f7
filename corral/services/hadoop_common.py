"""What the Hadoop services (hdfs, yarn, mapreduce) share: the node's Hadoop
configuration directory, the command launcher, and how a Hadoop daemon is started.

Hadoop comes from Maven Central jars (``corral.runtime.hadoop``), not the binary tarball,
so there is no ``bin/hadoop``. Corral renders its own launcher on every node
(``<node>/bin/corral-hadoop``, with ``hadoop``, ``hdfs``, ``yarn`` and ``mapred`` beside
it): it maps the usual subcommands to their main classes and passes the JVM flags
Hadoop's scripts would (the Java 17 module openings of HADOOP-19310).
"""

from __future__ import annotations

from corral import formats
from corral.agent.protocol import ComponentSpec, FileSpec, Probe, RestartPolicy
from corral.services.base import ClusterView, NodeView

HADOOP_USER = "hadoop"  # the HDFS superuser and the user steps run as, as on EMR
TOOLS = ("hadoop", "hdfs", "yarn", "mapred")

# What Hadoop 3.5's scripts open for Java 17 (HADOOP-19310), for daemons and tools alike;
# MapReduce task JVMs get theirs from mapreduce.jvm.add-opens-as-default.
JAVA_MODULE_OPTS = " ".join(
    f"--add-opens=java.base/{pkg}=ALL-UNNAMED"
    for pkg in ("java.lang", "java.lang.reflect", "java.lang.invoke", "java.io", "java.net", "java.nio",
                "java.util", "java.util.concurrent", "java.util.concurrent.atomic", "java.util.regex",
                "java.util.zip", "java.security", "sun.nio.ch", "sun.nio.cs", "sun.security.util",
                "sun.security.x509", "sun.util.calendar")
)
# Control daemons compute little: C1-only JIT and the serial collector halve their
# start-up CPU and keep their resident memory small.
DAEMON_JAVA_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.net.preferIPv4Stack=true"
SOCKET_FACTORY = "io.corral.hadoop.NodeAddressSocketFactory"


def conf_dir(node: NodeView) -> str:
    return node.path("conf", "hadoop")


def bin_dir(node: NodeView) -> str:
    return node.path("bin")


def tool(node: NodeView, name: str) -> str:
    return f"{bin_dir(node)}/{name}"


def site_xml(props: dict[str, str], final: tuple[str, ...] = ()) -> str:
    """A Hadoop *-site.xml (``corral.formats.hadoop_xml``); ``final`` properties cannot be
    overridden by a job's own configuration (a job submitted from the master carries the
    master's values)."""
    return formats.hadoop_xml(props, final)


_LOG4J = """\
# Daemons and tools log to stderr; the node agent keeps each daemon's output in logs/.
hadoop.root.logger=INFO,console
log4j.rootLogger=${hadoop.root.logger}
log4j.appender.console=org.apache.log4j.ConsoleAppender
log4j.appender.console.target=System.err
log4j.appender.console.layout=org.apache.log4j.PatternLayout
log4j.appender.console.layout.ConversionPattern=%d{ISO8601} %p %c{2}: %m%n
log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR
log4j.logger.org.apache.hadoop.conf.Configuration.deprecation=WARN
"""

# ${HADOOP_HOME}, ${JAVA_HOME} and ${HADOOP_CDS_OPTS} (braced, inside double quotes) are filled
# in by the node agent, escaped for the quotes; the script's own variables are written
# unbraced so they are left alone. hadoop-env.sh is sourced with `set +u`: its values may
# refer to variables that are not set ("$HADOOP_OPTS -Dx"), as in any shell.
_LAUNCHER = """\
#!/usr/bin/env bash
# Corral's launcher for Hadoop's tools and daemons on this node (rendered by Corral).
# Usage: corral-hadoop TOOL SUBCOMMAND [ARGS...], or through the hadoop/hdfs/yarn/mapred
# scripts beside it.
set -eu
export HADOOP_HOME="${HADOOP_HOME}"
export JAVA_HOME="${JAVA_HOME}"
export HADOOP_CONF_DIR="${HADOOP_CONF_DIR:-@CONF@}"
export HADOOP_USER_NAME="${HADOOP_USER_NAME:-@USER@}"
export CORRAL_BIND_ADDRESS="${CORRAL_BIND_ADDRESS:-@ADDRESS@}"
# Temporary files (Jetty work directories, hadoop-unjar*, extracted native libraries) go to
# the node's directory, which goes with the node: Java ignores TMPDIR, so it is passed on.
export TMPDIR="${TMPDIR:-@TMP@}"
if [ -f "$HADOOP_CONF_DIR/hadoop-env.sh" ]; then set +u; . "$HADOOP_CONF_DIR/hadoop-env.sh"; set -u; fi

tool=$1; shift
sub=${1:-}
[ $# -gt 0 ] && shift
resources=""
daemon=""
case "$tool:$sub" in
  hadoop:fs|hadoop:dfs|hdfs:dfs) class=org.apache.hadoop.fs.FsShell ;;
  hadoop:jar|yarn:jar) class=org.apache.hadoop.util.RunJar ;;
  hadoop:distcp|mapred:distcp) class=org.apache.hadoop.tools.DistCp ;;
  hadoop:version|hdfs:version|yarn:version|mapred:version) class=org.apache.hadoop.util.VersionInfo ;;
  hadoop:checknative) class=org.apache.hadoop.util.NativeLibraryChecker ;;
  hadoop:classpath|hdfs:classpath|yarn:classpath|mapred:classpath) class="" ;;
  hdfs:dfsadmin) class=org.apache.hadoop.hdfs.tools.DFSAdmin ;;
  hdfs:fsck) class=org.apache.hadoop.hdfs.tools.DFSck ;;
  hdfs:getconf) class=org.apache.hadoop.hdfs.tools.GetConf ;;
  hdfs:balancer) class=org.apache.hadoop.hdfs.server.balancer.Balancer ;;
  hdfs:namenode) class=org.apache.hadoop.hdfs.server.namenode.NameNode; resources=1; daemon=1 ;;
  hdfs:datanode) class=org.apache.hadoop.hdfs.server.datanode.DataNode; resources=1; daemon=1 ;;
  yarn:application|yarn:applicationattempt|yarn:container) class=org.apache.hadoop.yarn.client.cli.ApplicationCLI; set -- "$sub" "$@" ;;
  yarn:node) class=org.apache.hadoop.yarn.client.cli.NodeCLI ;;
  yarn:logs) class=org.apache.hadoop.yarn.client.cli.LogsCLI ;;
  yarn:queue) class=org.apache.hadoop.yarn.client.cli.QueueCLI ;;
  yarn:rmadmin) class=org.apache.hadoop.yarn.client.cli.RMAdminCLI ;;
  yarn:resourcemanager) class=org.apache.hadoop.yarn.server.resourcemanager.ResourceManager; daemon=1 ;;
  yarn:nodemanager) class=org.apache.hadoop.yarn.server.nodemanager.NodeManager; daemon=1 ;;
  yarn:proxyserver) class=org.apache.hadoop.yarn.server.webproxy.WebAppProxyServer; daemon=1 ;;
  mapred:job) class=org.apache.hadoop.mapred.JobClient ;;
  mapred:queue) class=org.apache.hadoop.mapred.JobQueueClient ;;
  mapred:streaming) class=org.apache.hadoop.streaming.HadoopStreaming ;;
  mapred:historyserver) class=org.apache.hadoop.mapreduce.v2.hs.JobHistoryServer; daemon=1 ;;
  hadoop:[a-z]*.*|yarn:[a-z]*.*) class=$sub ;;
  *) echo "$tool: unknown subcommand '$sub' (Corral's launcher knows the common ones; see $0)" >&2; exit 2 ;;
esac

# The jars first: the class path of the host's Hadoop class-data archive (corral.runtime.cds),
# which a JVM maps only when its class path begins with it. The jars hold no *-site.xml or
# log4j.properties that could shadow the configuration directory's.
cp="$HADOOP_HOME/lib/*:$HADOOP_HOME/classes:$HADOOP_CONF_DIR"
if [ -n "$resources" ]; then cp="$cp:$HADOOP_HOME/resources"; fi
if [ -n "${HADOOP_CLASSPATH:-}" ]; then cp="$cp:$HADOOP_CLASSPATH"; fi
if [ -z "$class" ]; then echo "$cp"; exit 0; fi

opts="@MODULE_OPTS@ ${HADOOP_CDS_OPTS} -Dhadoop.home.dir=$HADOOP_HOME -Dhadoop.root.logger=${HADOOP_ROOT_LOGGER:-INFO,console}"
if [ -n "${HADOOP_HEAPSIZE_MAX:-}" ]; then opts="$opts -Xmx$HADOOP_HEAPSIZE_MAX"; fi
if [ -n "$daemon" ]; then opts="$opts ${HADOOP_DAEMON_OPTS:-}"; else opts="$opts ${HADOOP_CLIENT_OPTS:-}"; fi
# A daemon's web UI serves /logs (its "Local logs" link) from hadoop.log.dir: the node's logs.
# These come first, so that a user's HADOOP_OPTS can still override them.
set -- "-Djava.io.tmpdir=$TMPDIR" ${daemon:+"-Dhadoop.log.dir=@LOGS@"} $opts ${HADOOP_OPTS:-} -cp "$cp" "$class" "$@"
exec "$JAVA_HOME/bin/java" "$@"
"""


def launcher_files(node: NodeView, props: dict[str, dict[str, str]]) -> list[FileSpec]:
    """The Hadoop configuration directory's shared files and the command launcher."""
    launcher = (
        _LAUNCHER.replace("@CONF@", formats.shell_literal(conf_dir(node)))
        .replace("@USER@", formats.shell_literal(HADOOP_USER))
        .replace("@ADDRESS@", formats.shell_literal(node.address)).replace("@MODULE_OPTS@", JAVA_MODULE_OPTS)
        .replace("@TMP@", formats.shell_literal(node.tmp_dir))
        .replace("@LOGS@", formats.shell_literal(node.path("logs")))
    )
    hadoop_env = formats.shell_exports(props.get("hadoop-env", {}), "hadoop-env classification, rendered by Corral")
    files = [
        FileSpec(path=f"{bin_dir(node)}/corral-hadoop", content=launcher, mode=0o755, format="shell"),
        FileSpec(path=f"{conf_dir(node)}/log4j.properties", content=_LOG4J, format="properties"),
        FileSpec(path=f"{conf_dir(node)}/hadoop-env.sh", content=hadoop_env, format="shell"),
    ]
    for name in TOOLS:
        files.append(FileSpec(path=tool(node, name), mode=0o755,
                              content=f'#!/usr/bin/env bash\nexec "$(dirname "$0")/corral-hadoop" {name} "$@"\n'))
    return files


def daemon(name: str, service: str, node: NodeView, command: list[str], heap: str, health: Probe,
           ports: list[int], directories: list[str], wait_for: list[Probe] | None = None,
           restart: RestartPolicy | None = None) -> ComponentSpec:
    """A Hadoop daemon started through the node's launcher, logging to the agent."""
    return ComponentSpec(
        name=name,
        service=service,
        argv=command,
        env={
            "HADOOP_CONF_DIR": conf_dir(node),
            "HADOOP_USER_NAME": HADOOP_USER,
            "CORRAL_BIND_ADDRESS": node.address,
            "HADOOP_HEAPSIZE_MAX": heap,
            "HADOOP_DAEMON_OPTS": DAEMON_JAVA_OPTS,
        },
        health=health,
        wait_for=wait_for or [],
        ports=ports,
        directories=directories,
        restart=restart or RestartPolicy(),
    )


def uses_hadoop_runtime(cluster: ClusterView) -> bool:
    """Nodes deploy the release's Hadoop runtime for a Hadoop service, or for S3A (its jars)."""
    from corral.services.registry import get_service  # noqa: PLC0415 - services import this module

    return cluster.object_storage is not None or any(get_service(name).uses_hadoop for name in cluster.services)


def client_env(cluster: ClusterView) -> dict[str, str]:
    """Environment for steps on the master: the tools on PATH, the cluster's configuration."""
    master = cluster.master
    return {
        "HADOOP_HOME": "${HADOOP_HOME}",
        "HADOOP_CONF_DIR": conf_dir(master),
        "HADOOP_USER_NAME": HADOOP_USER,
        "CORRAL_BIND_ADDRESS": master.address,
        "PATH": bin_dir(master),
    }


# Per-node values every site file may refer to as ${corral.node.address} and
# ${corral.node.dir} (Hadoop expands them): one cluster-wide configuration, and each
# node's core-site says who it is.
NODE_ADDRESS = "${corral.node.address}"
NODE_DIR = "${corral.node.dir}"


def node_properties(node: NodeView) -> dict[str, str]:
    return {"corral.node.address": node.address, "corral.node.dir": node.directory.rstrip("/")}


def default_fs(cluster: ClusterView) -> str:
    from corral.services.hdfs import NAMENODE_RPC_PORT  # noqa: PLC0415 - hdfs builds on this module

    return f"hdfs://{cluster.master.address}:{NAMENODE_RPC_PORT}"
