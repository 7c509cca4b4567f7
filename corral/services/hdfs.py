"""HDFS: a NameNode on MASTER (formatted on its first start only) and a DataNode on every
CORE node. HDFS also owns the Hadoop configuration every Hadoop service shares: core-site,
hadoop-env, log4j and the command launcher (see ``hadoop_common``).
"""

from __future__ import annotations

import json

import httpx

from corral import formats
from corral.agent.protocol import ComponentSpec, FileSpec, Probe
from corral.domain.spec import ClusterSpec
from corral.domain.states import NodeRole
from corral.errors import FieldError
from corral.services import hadoop_common as hc
from corral.services.s3a import s3a_properties
from corral.services.base import HTTP, ClusterView, NodeView, ReadyCheck, ServiceBase, require_core_nodes

NAMENODE_RPC_PORT = 8020
NAMENODE_HTTP_PORT = 9870
DATANODE_PORT = 9866
DATANODE_HTTP_PORT = 9864
DATANODE_IPC_PORT = 9867


class HdfsService(ServiceBase):
    name = "hdfs"
    requires: tuple[str, ...] = ()
    classifications = {"core-site": formats.HADOOP_XML, "hdfs-site": formats.HADOOP_XML, "hadoop-env": formats.SHELL_EXPORTS}
    uses_hadoop = True
    node_ports = {NodeRole.MASTER: (NAMENODE_RPC_PORT, NAMENODE_HTTP_PORT),
                  NodeRole.CORE: (DATANODE_PORT, DATANODE_HTTP_PORT, DATANODE_IPC_PORT)}

    def validate(self, spec: ClusterSpec) -> list[FieldError]:
        return require_core_nodes(spec, "HDFS needs at least 1 CORE node to hold its DataNodes")

    def _datanodes(self, cluster: ClusterView) -> list[NodeView]:
        return cluster.with_roles(NodeRole.CORE)

    def default_properties(self, cluster: ClusterView) -> dict[str, dict[str, str]]:
        master = cluster.master.address
        node = hc.NODE_ADDRESS
        core = {
            "fs.defaultFS": hc.default_fs(cluster),
            "hadoop.tmp.dir": f"{hc.NODE_DIR}/data/hadoop-tmp",
            # Outgoing connections from the node's own address (see NodeAddressSocketFactory).
            "hadoop.rpc.socket.factory.class.default": hc.SOCKET_FACTORY,
            # Users need not exist on the hosts: no `id` lookups (and their warnings).
            "hadoop.user.group.static.mapping.overrides": f"dr.who=;{hc.HADOOP_USER}=supergroup",
            # Services running as the hadoop user (the SQL endpoint) act for the users who
            # connect to them, as HiveServer2 does on EMR.
            f"hadoop.proxyuser.{hc.HADOOP_USER}.hosts": "*",
            f"hadoop.proxyuser.{hc.HADOOP_USER}.groups": "*",
            **s3a_properties(cluster),
        }
        hdfs = {
            "dfs.replication": str(min(3, max(1, len(self._datanodes(cluster))))),
            "dfs.namenode.name.dir": f"file://{hc.NODE_DIR}/data/hdfs/name",
            "dfs.datanode.data.dir": f"file://{hc.NODE_DIR}/data/hdfs/data",
            "dfs.namenode.rpc-address": f"{master}:{NAMENODE_RPC_PORT}",
            "dfs.namenode.http-address": f"{master}:{NAMENODE_HTTP_PORT}",
            "dfs.datanode.address": f"{node}:{DATANODE_PORT}",
            "dfs.datanode.http.address": f"{node}:{DATANODE_HTTP_PORT}",
            "dfs.datanode.ipc.address": f"{node}:{DATANODE_IPC_PORT}",
            "dfs.datanode.hostname": node,
            # Node addresses need not resolve back to names.
            "dfs.namenode.datanode.registration.ip-hostname-check": "false",
            # Small clusters have no spare DataNode to replace a failed one in a write
            # pipeline: carry on with the remaining ones (re-replication follows).
            "dfs.client.block.write.replace-datanode-on-failure.best-effort": "true",
            # Short-circuit reads' shared memory segments (if a user enables them): the
            # default is /dev/shm,/tmp.
            "dfs.datanode.shared.file.descriptor.paths": f"{hc.NODE_DIR}/tmp",
            "dfs.namenode.safemode.extension": "5000",
            # A DataNode is dead after 2 x 30 s + 10 heartbeats (90 s) instead of 10.5 min, so
            # the NameNode re-replicates its blocks (and Corral reports it) sooner.
            "dfs.namenode.heartbeat.recheck-interval": "30000",
        }
        return {"core-site": core, "hdfs-site": hdfs, "hadoop-env": {}}

    def config_files(self, cluster: ClusterView, node: NodeView, props: dict[str, dict[str, str]]) -> list[FileSpec]:
        conf = hc.conf_dir(node)
        per_node = hc.node_properties(node)
        return [
            *hc.launcher_files(node, props),
            FileSpec(path=f"{conf}/core-site.xml",
                     content=hc.site_xml({**props.get("core-site", {}), **per_node}, final=tuple(per_node)), format="xml"),
            FileSpec(path=f"{conf}/hdfs-site.xml", content=hc.site_xml(props.get("hdfs-site", {})), format="xml"),
        ]

    def components(self, cluster: ClusterView, node: NodeView, props: dict[str, dict[str, str]]) -> list[ComponentSpec]:
        hdfs = hc.tool(node, "hdfs")
        if node.role is NodeRole.MASTER:
            name_dir = node.path("data", "hdfs", "name")
            # Format only a NameNode that has never been formatted: its VERSION file is the
            # mark, so a restarted NameNode keeps its namespace. The paths are arguments, not
            # part of the script, so that no character in them is read as shell syntax.
            start = ('test -f "$1/current/VERSION" || "$0" namenode -format -nonInteractive -clusterId "$2" '
                     '|| exit 1; exec "$0" namenode')
            return [
                hc.daemon(
                    "namenode", self.name, node,
                    ["/bin/bash", "-c", start, hdfs, name_dir, f"CID-{cluster.cluster_id}"], heap="512m",
                    health=Probe(kind="http", host=node.address, port=NAMENODE_HTTP_PORT, path="/jmx?qry=java.lang:type=Runtime"),
                    ports=[NAMENODE_RPC_PORT, NAMENODE_HTTP_PORT], directories=[name_dir],
                )
            ]
        if node.role is NodeRole.CORE:
            master = cluster.master.address
            return [
                hc.daemon(
                    "datanode", self.name, node, [hdfs, "datanode"], heap="384m",
                    health=Probe(kind="http", host=node.address, port=DATANODE_HTTP_PORT, path="/jmx?qry=java.lang:type=Runtime"),
                    ports=[DATANODE_PORT, DATANODE_HTTP_PORT, DATANODE_IPC_PORT],
                    directories=[node.path("data", "hdfs", "data")],
                    # Registering before the NameNode listens costs a retry back-off.
                    wait_for=[Probe(kind="tcp", host=master, port=NAMENODE_RPC_PORT)],
                )
            ]
        return []

    def step_env(self, cluster: ClusterView) -> dict[str, str]:
        return hc.client_env(cluster)

    def check_ready(self, cluster: ClusterView, timeout: float) -> ReadyCheck:
        url = f"http://{cluster.master.address}:{NAMENODE_HTTP_PORT}/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo"
        try:
            beans = HTTP.get(url, timeout=timeout).json()["beans"]
            info = beans[0]
            live = json.loads(info["LiveNodes"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
            return ReadyCheck(False, f"NameNode not answering at {url}: {exc!r}")
        if info.get("Safemode"):
            return ReadyCheck(False, "NameNode is in safe mode")
        live_hosts = {name.rsplit(":", 1)[0] for name in live}
        expected = {n.address for n in self._datanodes(cluster)}
        if not expected <= live_hosts:
            return ReadyCheck(False, f"{len(expected & live_hosts)}/{len(expected)} DataNodes live in the NameNode")
        return ReadyCheck(True, f"NameNode out of safe mode with {len(expected)} live DataNodes")

    def web_uis(self, cluster: ClusterView) -> dict[str, str]:
        return {"namenode": f"http://{cluster.master.address}:{NAMENODE_HTTP_PORT}"}

    def endpoints(self, cluster: ClusterView) -> dict[str, str]:
        return {"hdfs": hc.default_fs(cluster)}
