"""MAPREDUCE (on YARN): the JobHistory Server on MASTER, and mapred-site with the
application classpath (there is no $HADOOP_MAPRED_HOME/share layout to default to) and
task sizes derived from the NodeManagers' instance types.
"""

from __future__ import annotations

import httpx

from corral.agent.protocol import ComponentSpec, FileSpec, Probe
from corral.domain.spec import ClusterSpec
from corral.domain.states import NodeRole
from corral.errors import FieldError
from corral.services import hadoop_common as hc
from corral.services.base import HTTP, ClusterView, NodeView, ReadyCheck, ServiceBase
from corral.services.hdfs import NAMENODE_RPC_PORT
from corral.services.yarn import MIN_ALLOCATION_MIB, application_classpath, nodemanagers, smallest_nodemanager_mib

HISTORY_PORT = 10020
HISTORY_WEB_PORT = 19888
HISTORY_ADMIN_PORT = 10033


def task_mib(cluster: ClusterView) -> int:
    """Map and reduce containers: two per vcore of the smallest NodeManager would starve
    the JVMs; one per vcore, between 512 MiB and 2 GiB, keeps every core busy."""
    nms = nodemanagers(cluster)
    vcores = min((n.itype.vcpus for n in nms), default=1)
    per_core = smallest_nodemanager_mib(cluster) // max(1, vcores)
    mib = max(512, min(2048, per_core))
    return mib // MIN_ALLOCATION_MIB * MIN_ALLOCATION_MIB


class MapReduceService(ServiceBase):
    name = "mapreduce"
    requires: tuple[str, ...] = ("yarn", "hdfs")
    classifications = ("mapred-site",)
    uses_hadoop = True

    def validate(self, spec: ClusterSpec) -> list[FieldError]:
        return []

    def default_properties(self, cluster: ClusterView) -> dict[str, dict[str, str]]:
        master = cluster.master.address
        task = str(task_mib(cluster))
        mapred = {
            "mapreduce.framework.name": "yarn",
            "mapreduce.application.classpath": application_classpath(),
            "mapreduce.jobhistory.address": f"{master}:{HISTORY_PORT}",
            "mapreduce.jobhistory.webapp.address": f"{master}:{HISTORY_WEB_PORT}",
            "mapreduce.jobhistory.admin.address": f"{master}:{HISTORY_ADMIN_PORT}",
            "yarn.app.mapreduce.am.resource.mb": task,
            # The ApplicationMaster coordinates and computes little, like Corral's daemons:
            # C1 and the serial collector halve its start-up CPU. Its heap is 80 % of its
            # container, the ratio Hadoop applies to tasks (the stock -Xmx1024m ignores it).
            "yarn.app.mapreduce.am.command-opts": f"-Xmx{task_mib(cluster) * 4 // 5}m {hc.DAEMON_JAVA_OPTS}",
            "mapreduce.map.memory.mb": task,
            "mapreduce.reduce.memory.mb": task,
            # Several NodeManagers may share a host (the local provider): the shuffle
            # handler binds every address, so each takes a free port and advertises it.
            "mapreduce.shuffle.port": "0",
            "mapreduce.jvm.add-opens-as-default": "true",
            "yarn.app.mapreduce.am.env": "HADOOP_MAPRED_HOME=${HADOOP_HOME}",
            "mapreduce.map.env": "HADOOP_MAPRED_HOME=${HADOOP_HOME}",
            "mapreduce.reduce.env": "HADOOP_MAPRED_HOME=${HADOOP_HOME}",
        }
        # The JobHistory Server also serves every YARN application's aggregated logs (as on
        # EMR): a NodeManager sends links to a finished container's logs there.
        logs = {"yarn.log.server.url": f"http://{master}:{HISTORY_WEB_PORT}/jobhistory/logs",
                "yarn.log.server.web-service.url": f"http://{master}:{HISTORY_WEB_PORT}/ws/v1/history"}
        return {"mapred-site": mapred, "yarn-site": logs}

    def config_files(self, cluster: ClusterView, node: NodeView, props: dict[str, dict[str, str]]) -> list[FileSpec]:
        return [FileSpec(path=f"{hc.conf_dir(node)}/mapred-site.xml", content=hc.site_xml(props.get("mapred-site", {})))]

    def components(self, cluster: ClusterView, node: NodeView, props: dict[str, dict[str, str]]) -> list[ComponentSpec]:
        if node.role is not NodeRole.MASTER:
            return []
        return [
            hc.daemon(
                "jobhistoryserver", self.name, node, [hc.tool(node, "mapred"), "historyserver"], heap="384m",
                health=Probe(kind="http", host=node.address, port=HISTORY_WEB_PORT, path="/ws/v1/history/info"),
                ports=[HISTORY_PORT, HISTORY_WEB_PORT, HISTORY_ADMIN_PORT],
                directories=[],
                # It creates its directories in HDFS as it starts.
                wait_for=[Probe(kind="tcp", host=node.address, port=NAMENODE_RPC_PORT)],
            )
        ]

    def step_env(self, cluster: ClusterView) -> dict[str, str]:
        return hc.client_env(cluster)

    def check_ready(self, cluster: ClusterView, timeout: float) -> ReadyCheck:
        url = f"http://{cluster.master.address}:{HISTORY_WEB_PORT}/ws/v1/history/info"
        try:
            info = HTTP.get(url, timeout=timeout, headers={"Accept": "application/json"}).json()
        except (httpx.HTTPError, ValueError) as exc:
            return ReadyCheck(False, f"JobHistory Server not answering at {url}: {exc!r}")
        version = (info.get("historyInfo") or {}).get("hadoopVersion", "?")
        return ReadyCheck(True, f"JobHistory Server answering (Hadoop {version})")

    def web_uis(self, cluster: ClusterView) -> dict[str, str]:
        return {"jobhistory": f"http://{cluster.master.address}:{HISTORY_WEB_PORT}"}
