"""HDFS: a NameNode on MASTER (formatted on its first start only) and a DataNode on every
CORE node. HDFS also owns the Hadoop configuration every Hadoop service shares: core-site,
hadoop-env, log4j and the command launcher (see ``hadoop_common``).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from corral import formats
from corral.agent.protocol import ComponentSpec, FileHook, FileSpec, Probe
from corral.domain.spec import ClusterSpec
from corral.domain.states import NodeRole
from corral.errors import FieldError
from corral.services import hadoop_common as hc
from corral.services.s3a import s3a_properties
from corral.services.base import (HTTP, ClusterView, Drain, MetricsEndpoint, NodeView, ReadyCheck, ServiceBase,
                                   require_core_nodes)
from corral.elastic import scalein
from corral.metrics import samples
from corral.services.exclude_files import hdfs_exclude

NAMENODE_RPC_PORT = 8020


def exclude_path(cluster: ClusterView) -> str:
    """The NameNode's ``dfs.hosts.exclude`` file, on the master."""
    return cluster.master.path("conf", "hadoop", "dfs.exclude")

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
            # Every Hadoop daemon's metrics in Prometheus' text format at /prom on its HTTP
            # port (HADOOP-16398): what Prometheus scrapes (``Service.metrics_endpoints``).
            "hadoop.prometheus.endpoint.enabled": "true" if cluster.monitoring else "false",
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
            # Meanwhile a DataNode silent for 30 s (dfs.namenode.stale.datanode.interval) is
            # neither read from nor written to, re-replication targets included; a transfer
            # that failed anyway is retried after 60 s, not the default 5 minutes (a node
            # replaced or decommissioned right after another was lost would wait that long).
            "dfs.namenode.avoid.read.stale.datanode": "true",
            "dfs.namenode.avoid.write.stale.datanode": "true",
            "dfs.namenode.reconstruction.pending.timeout-sec": "60",
            # Graceful decommission on scale-in: the NameNode re-reads this file on
            # `dfsadmin -refreshNodes` (corral.services.exclude_files).
            "dfs.hosts.exclude": exclude_path(cluster),
            # Its decommission monitor queues a leaver's blocks for re-replication at one
            # tick and marks the node DECOMMISSIONED at a later one: every 5 s, not 30 s
            # (the scan is bounded by dfs.namenode.decommission.blocks.per.interval).
            "dfs.namenode.decommission.interval": "5s",
        }
        return {"core-site": core, "hdfs-site": hdfs, "hadoop-env": {}}

    def config_files(self, cluster: ClusterView, node: NodeView, props: dict[str, dict[str, str]]) -> list[FileSpec]:
        conf = hc.conf_dir(node)
        per_node = hc.node_properties(node)
        exclude = []
        if node.role is NodeRole.MASTER:
            refresh = FileHook(argv=[hc.tool(node, "hdfs"), "dfsadmin", "-refreshNodes"],
                               wait_for=Probe(kind="tcp", host=node.address, port=NAMENODE_RPC_PORT))
            leaving = [n.address for n in cluster.excluded(NodeRole.CORE)]
            exclude = [FileSpec(path=exclude_path(cluster), content=hdfs_exclude(leaving), on_change=[refresh])]
        return [
            *exclude,
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

    def metrics_endpoints(self, cluster: ClusterView, timeout: float) -> list[MetricsEndpoint]:
        """The NameNode's and each DataNode's /prom (``hadoop.prometheus.endpoint.enabled``)."""
        if not cluster.monitoring:
            return []
        master = cluster.master
        return [MetricsEndpoint(master.node_id, master.role, "namenode", f"{master.address}:{NAMENODE_HTTP_PORT}", "/prom"),
                *(MetricsEndpoint(n.node_id, n.role, "datanode", f"{n.address}:{DATANODE_HTTP_PORT}", "/prom")
                  for n in self._datanodes(cluster))]

    def metric_values(self, cluster: ClusterView, now: float, timeout: float) -> dict[Any, float]:
        """HDFS's EMR metrics (``corral.metrics.samples.from_namenode``) from the NameNode's
        ``FSNamesystem`` and ``FSNamesystemState`` JMX beans, in one request."""
        url = f"http://{cluster.master.address}:{NAMENODE_HTTP_PORT}/jmx?qry=Hadoop:service=NameNode,name=FSNamesystem*"
        try:
            beans = HTTP.get(url, timeout=timeout).json()["beans"]
            merged = {k: v for bean in beans for k, v in bean.items()}
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            return {}
        return dict(samples.from_namenode(merged, core_nodes=len(self._datanodes(cluster))))

    def scale_in_problem(self, cluster: ClusterView, props: dict[str, dict[str, str]], role: NodeRole,
                         leaving: list[str], timeout: float) -> str | None:
        """A CORE shrink is refused below dfs.replication or when the DataNodes left would
        hold the data past ``scalein.MAX_FILL`` of their capacity (``corral.elastic.scalein``),
        from the NameNode's own per-DataNode capacity and use (``NameNodeInfo.LiveNodes``)."""
        if role is not NodeRole.CORE:
            return None
        core = self._datanodes(cluster)
        kept = [n for n in core if n.node_id not in leaving]
        going = [n for n in core if n.node_id in leaving]
        replication = int(props.get("hdfs-site", {}).get("dfs.replication", "3"))
        url = f"http://{cluster.master.address}:{NAMENODE_HTTP_PORT}/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo"
        try:
            live = json.loads(HTTP.get(url, timeout=timeout).json()["beans"][0]["LiveNodes"] or "{}")
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            if len(kept) < replication:
                return scalein.shrink_problem(len(kept), scalein.HdfsState(replication, 0, [0] * len(core)))
            return f"cannot check HDFS capacity: the NameNode does not answer ({type(exc).__name__})"
        by_host = {name.rsplit(":", 1)[0]: value for name, value in live.items()}

        def capacity(node: NodeView) -> int:
            """The DataNode's own, at most its instance type's disk: local nodes share one
            filesystem, and each DataNode reports all of it."""
            reported = int((by_host.get(node.address) or {}).get("capacity") or 0)
            gib = node.itype.disk_gib
            return min(reported, gib << 30) if gib is not None else reported

        used = sum(int(v.get("usedSpace") or 0) for v in live.values())
        state = scalein.HdfsState(replication, used, [capacity(n) for n in (*kept, *going)])
        return scalein.shrink_problem(len(kept), state)

    def drain_status(self, cluster: ClusterView, timeout: float) -> dict[str, Drain]:
        """A leaving CORE node is done once the NameNode lists its DataNode Decommissioned
        (live or dead): no block depends on it any more (HDFS's decommission waits until
        every block has its replicas elsewhere). Else: how many blocks are still being
        re-replicated, from ``NameNodeInfo.DecomNodes``."""
        leaving = cluster.leaving(NodeRole.CORE)
        if not leaving:
            return {}
        url = f"http://{cluster.master.address}:{NAMENODE_HTTP_PORT}/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo"
        try:
            info = HTTP.get(url, timeout=timeout).json()["beans"][0]
            live, dead, decom = (json.loads(info[key] or "{}") for key in ("LiveNodes", "DeadNodes", "DecomNodes"))
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            return {n.node_id: Drain(False, f"NameNode not answering ({type(exc).__name__})") for n in leaving}
        by_host = {name.rsplit(":", 1)[0]: name for name in (*live, *dead)}
        answer = {}
        for node in leaving:
            name = by_host.get(node.address)
            if name is None:
                answer[node.node_id] = Drain(True)  # never registered: it holds nothing
            elif name in live and live[name].get("adminState") != "Decommissioned":
                blocks = decom.get(name, {}).get("underReplicatedBlocks")
                answer[node.node_id] = Drain(False, f"{blocks} blocks to re-replicate" if blocks is not None
                                             else f"DataNode {live[name].get('adminState', '?')}")
            elif name in dead and not (dead[name].get("decommissioned") or dead[name].get("adminState") == "Decommissioned"):
                answer[node.node_id] = Drain(False, "DataNode dead before its decommission ended")
            else:
                answer[node.node_id] = Drain(True)
        return answer

    def remembered(self, cluster: ClusterView, timeout: float) -> set[str]:
        """Departed CORE nodes whose DataNode the NameNode still lists among its LiveNodes
        (until ``dfs.namenode.heartbeat.recheck-interval`` x 2 + 10 heartbeats, ~90 s,
        after it stopped). An address a node of the cluster holds again is not one: the
        new DataNode's registration replaced the old one."""
        departed = [n for n in cluster.departed if n.role is NodeRole.CORE]
        in_use = {n.address for n in cluster.nodes}
        candidates = [n for n in departed if n.address not in in_use]
        if not candidates:
            return set()
        url = f"http://{cluster.master.address}:{NAMENODE_HTTP_PORT}/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo"
        try:
            live = json.loads(HTTP.get(url, timeout=timeout).json()["beans"][0]["LiveNodes"] or "{}")
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
            return {n.node_id for n in candidates}
        hosts = {name.rsplit(":", 1)[0] for name in live}
        return {n.node_id for n in candidates if n.address in hosts}

    def web_uis(self, cluster: ClusterView) -> dict[str, str]:
        return {"namenode": f"http://{cluster.master.address}:{NAMENODE_HTTP_PORT}"}

    def endpoints(self, cluster: ClusterView) -> dict[str, str]:
        return {"hdfs": hc.default_fs(cluster)}
