"""YARN: a ResourceManager on MASTER and a NodeManager on every CORE and TASK node, sized
from the node's instance type, with the mapreduce_shuffle aux service and a capacity
scheduler configuration Corral ships (the jars carry none).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from corral import formats
from corral.agent.protocol import ComponentSpec, FileHook, FileSpec, Probe, RestartPolicy
from corral.domain.spec import ClusterSpec
from corral.domain.states import NodeRole
from corral.errors import FieldError
from corral.services import hadoop_common as hc
from corral.metrics import samples
from corral.services import app_usage, yarn_diagnostics
from corral.services.base import (HTTP, ClusterView, Drain, MetricsEndpoint, NodeView, NotObserved, ReadyCheck, ServiceBase, StepWork,
                                  WaitMemo)
from corral.services.exclude_files import yarn_exclude_xml
from corral.services.sizing import MIN_ALLOCATION_MIB, derive, nodemanager_mib, nodemanagers

RM_SCHEDULER_PORT = 8030
RM_TRACKER_PORT = 8031
RM_PORT = 8032
RM_ADMIN_PORT = 8033
RM_WEB_PORT = 8088
NM_PORT = 8041
NM_LOCALIZER_PORT = 8040
NM_WEB_PORT = 8042
# YARN's standalone Web Application Proxy, on MASTER at EMR's port. See YarnService.
WEB_PROXY_PORT = 20888
_FINAL_APP_STATES = ("FINISHED", "FAILED", "KILLED")
APP_PREFIX = "application_"  # YARN's ids; a step's other ids (a Spark Master's app-...) are not ours
log = logging.getLogger(__name__)

# YARN's own default list, plus what containers must inherit from their NodeManager:
# the node's bind address, the Hadoop user, and Corral's process markers (so terminating
# a node finds its container JVMs too).
_ENV_WHITELIST = (
    "JAVA_HOME,HADOOP_COMMON_HOME,HADOOP_HDFS_HOME,HADOOP_CONF_DIR,CLASSPATH_PREPEND_DISTCACHE,"
    "HADOOP_YARN_HOME,HADOOP_HOME,PATH,LANG,TZ,HADOOP_MAPRED_HOME,HADOOP_USER_NAME,"
    "CORRAL_BIND_ADDRESS,CORRAL_NODE_ID,CORRAL_CLUSTER_ID"
)


# What lets anyone who reaches a daemon run code or act without a YARN client, turned off
# for every cluster (see default_properties); a user's yarn-site may turn one on again.
HARDENING = {
    "yarn.webapp.enable-rest-app-submissions": "false",
    "yarn.resourcemanager.webapp.ui-actions.enabled": "false",
    "yarn.nodemanager.aux-services.manifest.enabled": "false",
}

# Hadoop's default (the static web user), then Corral's redirect filter.
_PROXY_FILTERS = "org.apache.hadoop.http.lib.StaticUserWebFilter,io.corral.hadoop.LocalHostRedirects"


def application_classpath() -> str:
    return "$HADOOP_CONF_DIR,${HADOOP_HOME}/classes,${HADOOP_HOME}/lib/*"


_CAPACITY_SCHEDULER = {  # with maximum-am-resource-percent, derived per cluster (corral.services.sizing)
    "yarn.scheduler.capacity.root.queues": "default",
    "yarn.scheduler.capacity.root.default.capacity": "100",
    "yarn.scheduler.capacity.root.default.maximum-capacity": "100",
    "yarn.scheduler.capacity.root.default.user-limit-factor": "1",
    "yarn.scheduler.capacity.root.default.state": "RUNNING",
    "yarn.scheduler.capacity.maximum-applications": "10000",
    "yarn.scheduler.capacity.resource-calculator": "org.apache.hadoop.yarn.util.resource.DefaultResourceCalculator",
    "yarn.scheduler.capacity.node-locality-delay": "-1",
}


def _nodemanager_name(address: str, timeout: float) -> str | None:
    """The host name the NodeManager at ``address`` registered by, from its own REST API
    (``/ws/v1/node/info``), or None when it does not answer. A NodeManager names itself by
    the canonical name of its address (ContainerManagerImpl.buildNodeId: a reverse lookup,
    whatever yarn.nodemanager.hostname or bind-host say), so on a host whose address has a
    name (DNS, /etc/hosts) the ResourceManager lists that name, not the address. An answer
    is kept (``_NODEMANAGER_NAMES``): the health check asks about every node every 15 s
    while one is unhealthy, and an address's canonical name does not change under it."""
    if address in _NODEMANAGER_NAMES:
        return _NODEMANAGER_NAMES[address]
    try:
        info = HTTP.get(f"http://{address}:{NM_WEB_PORT}/ws/v1/node/info", timeout=timeout).json()
        name = str(info["nodeInfo"]["nodeHostName"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None
    _NODEMANAGER_NAMES[address] = name
    return name


_NODEMANAGER_NAMES: dict[str, str] = {}  # node address -> the name its NodeManager registered by


# Applications Corral itself keeps running, which never make a cluster busy: by name and
# by the YARN application tag Corral submits them with (spark.yarn.tags), so a user's job
# that happens to take the name is not mistaken for one.
ALWAYS_ON_APPLICATIONS = frozenset({"Corral SQL endpoint (Spark Thrift Server)"})
ALWAYS_ON_TAG = "corral-always-on"
# How long a failed ApplicationMaster attempt of an always-on application counts towards
# YARN's yarn.resourcemanager.am.max-attempts (2): the SQL endpoint's
# spark.yarn.am.attemptFailuresValidityInterval. A leaver holding its idle AM is let go at
# most once in this window (should YARN count the AM's end, a second would end the
# application).
ALWAYS_ON_ATTEMPT_WINDOW_SECONDS = 3600
_ALL_NODE_STATES = ("NEW", "RUNNING", "UNHEALTHY", "DECOMMISSIONING", "DECOMMISSIONED", "LOST", "REBOOTED", "SHUTDOWN")


def is_always_on(app: dict[str, Any]) -> bool:
    """Whether the RM's document ``app`` is one of Corral's always-on applications."""
    tags = str(app.get("applicationTags") or "").split(",")
    return app.get("name") in ALWAYS_ON_APPLICATIONS and ALWAYS_ON_TAG in tags


def exclude_path(cluster: ClusterView) -> str:
    """The ResourceManager's exclude file, on the master: XML, so its name ends in .xml
    (HostsFileReader reads a file as XML only then)."""
    return cluster.master.path("conf", "hadoop", "yarn-exclude.xml")


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _running_applications(address: str, timeout: float) -> list[str] | None:
    """The ids of the applications the NodeManager at ``address`` still keeps (its REST
    API's RUNNING ones, those a graceful decommission may wait for), or None when it does
    not answer."""
    try:
        apps = (HTTP.get(f"http://{address}:{NM_WEB_PORT}/ws/v1/node/apps?state=RUNNING", timeout=timeout)
                .json().get("apps") or {}).get("app", [])
        return [str(a.get("id")) for a in apps]
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


class YarnService(ServiceBase):
    name = "yarn"
    requires: tuple[str, ...] = ("hdfs",)  # staging, logs and the job history live in HDFS
    classifications = {"yarn-site": formats.HADOOP_XML, "capacity-scheduler": formats.HADOOP_XML}
    uses_hadoop = True
    # The NodeManager's shuffle handler takes a free port (mapreduce.shuffle.port=0).
    node_ports = {NodeRole.MASTER: (RM_SCHEDULER_PORT, RM_TRACKER_PORT, RM_PORT, RM_ADMIN_PORT, RM_WEB_PORT, WEB_PROXY_PORT),
                  NodeRole.CORE: (NM_PORT, NM_LOCALIZER_PORT, NM_WEB_PORT),
                  NodeRole.TASK: (NM_PORT, NM_LOCALIZER_PORT, NM_WEB_PORT)}

    def validate(self, spec: ClusterSpec) -> list[FieldError]:
        if spec.count(NodeRole.CORE) + spec.count(NodeRole.TASK) < 1:
            return [FieldError(("node_groups",), "YARN needs at least 1 CORE or TASK node for its NodeManagers")]
        return []

    def default_properties(self, cluster: ClusterView) -> dict[str, dict[str, str]]:
        master = cluster.master.address
        nms = nodemanagers(cluster)
        memory = [nodemanager_mib(cluster, n) for n in nms] or [1024]
        largest_vcores = max((n.itype.vcpus for n in nms), default=1)
        smallest = min(nms, key=lambda n: nodemanager_mib(cluster, n)) if nms else None
        sizes = derive(cluster)
        # MapReduce's shuffle runs inside each NodeManager; Spark on YARN needs none of it.
        shuffle = {"yarn.nodemanager.aux-services": "mapreduce_shuffle",
                   "yarn.nodemanager.aux-services.mapreduce_shuffle.class": "org.apache.hadoop.mapred.ShuffleHandler",
                   } if "mapreduce" in cluster.services else {}
        yarn = {
            "yarn.resourcemanager.hostname": master,
            "yarn.resourcemanager.address": f"{master}:{RM_PORT}",
            "yarn.resourcemanager.scheduler.address": f"{master}:{RM_SCHEDULER_PORT}",
            "yarn.resourcemanager.resource-tracker.address": f"{master}:{RM_TRACKER_PORT}",
            "yarn.resourcemanager.admin.address": f"{master}:{RM_ADMIN_PORT}",
            "yarn.resourcemanager.webapp.address": f"{master}:{RM_WEB_PORT}",
            # Tracking URLs are http://<yarn.web-proxy.address>/proxy/<app>/. Without this
            # key the ResourceManager proxies them itself, but names itself by
            # WebAppUtils.getResolvedAddress, which takes a loopback address (every local
            # node's) for a wildcard one and substitutes the host's canonical name
            # ("localhost"): links to a port nothing listens on. The standalone proxy's
            # address is used exactly as given, also by the AM filters that send browsers
            # to it (WebAppUtils.getProxyHostsAndPortsForAmFilter).
            "yarn.web-proxy.address": f"{master}:{WEB_PROXY_PORT}",
            "yarn.nodemanager.hostname": hc.NODE_ADDRESS,
            "yarn.nodemanager.address": f"{hc.NODE_ADDRESS}:{NM_PORT}",
            "yarn.nodemanager.localizer.address": f"{hc.NODE_ADDRESS}:{NM_LOCALIZER_PORT}",
            "yarn.nodemanager.webapp.address": f"{hc.NODE_ADDRESS}:{NM_WEB_PORT}",
            # Per node from its instance type; this is the CORE (smallest) node's value.
            "yarn.nodemanager.resource.memory-mb": str(min(memory)),
            "yarn.nodemanager.resource.cpu-vcores": str(smallest.itype.vcpus if smallest else 1),
            "yarn.scheduler.minimum-allocation-mb": str(MIN_ALLOCATION_MIB),
            "yarn.scheduler.maximum-allocation-mb": str(max(memory)),
            "yarn.scheduler.maximum-allocation-vcores": str(largest_vcores),
            "yarn.nodemanager.local-dirs": f"{hc.NODE_DIR}/data/yarn/local",
            "yarn.nodemanager.log-dirs": f"{hc.NODE_DIR}/logs/containers",
            **shuffle,
            "yarn.nodemanager.env-whitelist": _ENV_WHITELIST,
            # YARN gives container JVMs java.io.tmpdir=$PWD/tmp; TMPDIR does the same for
            # everything else in the container (Python workers, streaming scripts), so its
            # temporary files go with the container instead of into the host's /tmp. Written
            # {{PWD}}: YARN expands $VAR here from the NodeManager's own environment, but
            # turns {{VAR}} into the launch script's $VAR (ContainerLaunch.call).
            "yarn.nodemanager.admin-env": "MALLOC_ARENA_MAX=$MALLOC_ARENA_MAX,TMPDIR={{PWD}}/tmp",
            # A NodeManager silent for 60 s is LOST (default 10 min): its containers are
            # rescheduled elsewhere sooner.
            "yarn.nm.liveness-monitor.expiry-interval-ms": "60000",
            # Work-preserving NodeManager restart: the agent restarts a crashed NodeManager,
            # which then takes its running containers back. Without it the new NodeManager
            # wipes their local dirs at start-up and the orphaned executors fail every task
            # they are given. (Terminate still kills every container by the node's marker.)
            "yarn.nodemanager.recovery.enabled": "true",
            "yarn.nodemanager.recovery.supervised": "true",
            "yarn.nodemanager.recovery.dir": f"{hc.NODE_DIR}/data/yarn/recovery",
            # Java 17 reserves far more virtual than resident memory; only RSS is policed.
            "yarn.nodemanager.vmem-check-enabled": "false",
            "yarn.application.classpath": application_classpath(),
            "yarn.log-aggregation-enable": "true",
            "yarn.nodemanager.remote-app-log-dir": "/tmp/logs",  # in HDFS
            # Stores whose code defaults are under the host's /tmp (file:///tmp/hadoop-yarn-
            # ${user}/...): the node-attribute store is opened by every ResourceManager, and
            # would be shared by all of them on a host.
            "yarn.node-attribute.fs-store.root-dir": f"file://{hc.NODE_DIR}/data/yarn/node-attribute",
            "yarn.node-labels.fs-store.root-dir": f"file://{hc.NODE_DIR}/data/yarn/node-labels",
            "yarn.timeline-service.enabled": "false",
            # The daemons have no authentication (no Kerberos): anyone who reaches them is
            # trusted, so cluster nodes sit on a trusted network and daemons bind node
            # addresses only. What would let a visitor run code without even a YARN client
            # is off: the ResourceManager's REST submission (POST /ws/v1/cluster/apps, how
            # cryptominers find open YARNs; the kill Corral uses, PUT .../state, stays),
            # the UI's kill buttons, and NodeManager aux services loaded from a manifest
            # (its REST update would load a class named in a request).
            **HARDENING,
            # Graceful decommission on scale-in: the RM's exclude file in XML, the form with a
            # timeout per node, re-read on `rmadmin -refreshNodes` (corral.services.exclude_files).
            "yarn.resourcemanager.nodes.exclude-path": exclude_path(cluster),
        }
        # ApplicationMasters may take this share of the cluster: at least half (a Spark and a
        # MapReduce AM side by side), more where the SQL endpoint's AM and a step's must fit
        # together on a small cluster (corral.services.sizing).
        scheduler = {**_CAPACITY_SCHEDULER, "yarn.scheduler.capacity.maximum-am-resource-percent": f"{sizes.am_percent:g}"}
        return {"yarn-site": yarn, "capacity-scheduler": scheduler}

    def config_files(self, cluster: ClusterView, node: NodeView, props: dict[str, dict[str, str]]) -> list[FileSpec]:
        conf = hc.conf_dir(node)
        yarn = dict(props.get("yarn-site", {}))
        user = cluster.user_configurations.get("yarn-site", {})
        if node.role is not NodeRole.MASTER:
            # A NodeManager offers what its own instance type has, unless the user said otherwise.
            for key, value in (("yarn.nodemanager.resource.memory-mb", str(nodemanager_mib(cluster, node))),
                               ("yarn.nodemanager.resource.cpu-vcores", str(node.itype.vcpus))):
                yarn[key] = user.get(key, value)
        exclude = []
        if node.role is NodeRole.MASTER:
            refresh = FileHook(argv=[hc.tool(node, "yarn"), "rmadmin", "-refreshNodes", "-g", "-server"],
                               wait_for=Probe(kind="tcp", host=node.address, port=RM_ADMIN_PORT))
            deadlines = {n.address: n.decommission_deadline for n in cluster.leaving(NodeRole.CORE, NodeRole.TASK)}
            exclude = [FileSpec(path=exclude_path(cluster), content=yarn_exclude_xml(deadlines, time.time()),
                                on_change=[refresh])]
        return [
            *exclude,
            FileSpec(path=f"{conf}/yarn-site.xml", content=hc.site_xml(yarn), format="xml"),
            FileSpec(path=f"{conf}/capacity-scheduler.xml", content=hc.site_xml(props.get("capacity-scheduler", {})),
                     format="xml"),
        ]

    def components(self, cluster: ClusterView, node: NodeView, props: dict[str, dict[str, str]]) -> list[ComponentSpec]:
        yarn = hc.tool(node, "yarn")
        master = cluster.master.address
        if node.role is NodeRole.MASTER:
            return [
                hc.daemon(
                    "resourcemanager", self.name, node, [yarn, "resourcemanager"], heap="512m",
                    health=Probe(kind="http", host=node.address, port=RM_WEB_PORT, path="/ws/v1/cluster/info"),
                    ports=[RM_SCHEDULER_PORT, RM_TRACKER_PORT, RM_PORT, RM_ADMIN_PORT, RM_WEB_PORT],
                    directories=[],
                ),
                # The Web Application Proxy (as on EMR): serves the tracking URLs; it asks
                # the ResourceManager for each application's report. Corral's filter points
                # its redirects to Hadoop's substitute for loopback addresses (the host's
                # name) at the node instead (see io.corral.hadoop.LocalHostRedirects).
                hc.daemon(
                    "web-proxy", self.name, node,
                    [yarn, "proxyserver", "-D", f"hadoop.http.filter.initializers={_PROXY_FILTERS}"], heap="256m",
                    health=Probe(kind="http", host=node.address, port=WEB_PROXY_PORT, path="/jmx?qry=java.lang:type=Runtime"),
                    ports=[WEB_PROXY_PORT], directories=[],
                    wait_for=[Probe(kind="tcp", host=node.address, port=RM_PORT)],
                ),
            ]
        return [
            hc.daemon(
                "nodemanager", self.name, node, [yarn, "nodemanager"], heap="384m",
                health=Probe(kind="http", host=node.address, port=NM_WEB_PORT, path="/ws/v1/node/info"),
                ports=[NM_PORT, NM_LOCALIZER_PORT, NM_WEB_PORT],
                directories=[node.path("data", "yarn", "local"), node.path("logs", "containers")],
                # Registering before the ResourceManager listens costs a 10 s retry.
                wait_for=[Probe(kind="tcp", host=master, port=RM_TRACKER_PORT)],
                # A NodeManager exits 0 only when the RM tells it to shut down (it was
                # decommissioned): restarting it would only be refused again.
                restart=RestartPolicy(restart_on_success=False),
            )
        ]

    def step_env(self, cluster: ClusterView) -> dict[str, str]:
        return hc.client_env(cluster)

    def check_ready(self, cluster: ClusterView, timeout: float) -> ReadyCheck:
        url = f"http://{cluster.master.address}:{RM_WEB_PORT}/ws/v1/cluster/nodes"
        try:
            nodes = (HTTP.get(url, timeout=timeout).json().get("nodes") or {}).get("node", [])
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            return ReadyCheck(False, f"ResourceManager not answering at {url}: {exc!r}")
        running = {n["nodeHostName"] for n in nodes if n.get("state") == "RUNNING"}
        expected = {n.address for n in nodemanagers(cluster)}
        registered = {a for a in expected if a in running or _nodemanager_name(a, timeout) in running}
        if registered != expected:
            return ReadyCheck(False, f"{len(registered)}/{len(expected)} NodeManagers RUNNING in the ResourceManager")
        return ReadyCheck(True, f"ResourceManager with {len(expected)} RUNNING NodeManagers")

    def application_usage(self, cluster: ClusterView, application_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        """The RM's figures of each finished YARN application (``app_usage.rm_usage``)."""
        return app_usage.rm_usage(self._rm(cluster), [a for a in application_ids if a.startswith(APP_PREFIX)], timeout)

    def metrics_endpoints(self, cluster: ClusterView, timeout: float) -> list[MetricsEndpoint]:
        """The ResourceManager's, the web proxy's and each NodeManager's /prom. (The
        NodeManager's /prom lacks the per-container ``ContainerResource_*`` beans its /jmx
        has; Corral's own sampler takes YARN's figures from the RM's REST metrics.)"""
        if not cluster.monitoring:
            return []
        master = cluster.master
        return [MetricsEndpoint(master.node_id, master.role, "resourcemanager", f"{master.address}:{RM_WEB_PORT}", "/prom"),
                MetricsEndpoint(master.node_id, master.role, "web-proxy", f"{master.address}:{WEB_PROXY_PORT}", "/prom"),
                *(MetricsEndpoint(n.node_id, n.role, "nodemanager", f"{n.address}:{NM_WEB_PORT}", "/prom")
                  for n in cluster.with_roles(NodeRole.CORE, NodeRole.TASK))]

    def metric_values(self, cluster: ClusterView, now: float, timeout: float) -> dict[Any, float]:
        """EMR's YARN metrics from the RM's ``/ws/v1/cluster/metrics`` (``corral.metrics.samples``)."""
        try:
            metrics = HTTP.get(f"{self._rm(cluster)}/metrics", timeout=timeout).json()["clusterMetrics"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return {}
        return dict(samples.from_yarn_metrics(now, metrics).values)

    def busy_reason(self, cluster: ClusterView, timeout: float) -> str | None:
        """The first application NEW..RUNNING that is not one of Corral's always-on ones
        (``is_always_on``: the SQL endpoint's)."""
        url = f"{self._rm(cluster)}/apps?states=NEW,NEW_SAVING,SUBMITTED,ACCEPTED,RUNNING"
        try:
            apps = (HTTP.get(url, timeout=timeout).json().get("apps") or {}).get("app", [])
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise NotObserved(f"ResourceManager not answering: {exc!r}") from exc
        for app in apps:
            if not is_always_on(app):
                return f"YARN application {app.get('id')} is {app.get('state')}"
        return None

    def node_load(self, cluster: ClusterView, timeout: float) -> dict[str, tuple[int, int]]:
        """ApplicationMasters per node from the RM's RUNNING applications (``amHostHttpAddress``),
        running containers from its node list (``numContainers``)."""
        rm = self._rm(cluster)
        try:
            apps = (HTTP.get(f"{rm}/apps?states=RUNNING", timeout=timeout).json().get("apps") or {}).get("app", [])
            listed = (HTTP.get(f"{rm}/nodes", timeout=timeout).json().get("nodes") or {}).get("node", [])
        except (httpx.HTTPError, ValueError, AttributeError):
            return {}
        ams: dict[str, int] = {}
        for app in apps:
            host = str(app.get("amHostHttpAddress") or "").rsplit(":", 1)[0]
            ams[host] = ams.get(host, 0) + 1
        containers = {n.get("nodeHostName"): int(n.get("numContainers") or 0) for n in listed}
        return {n.node_id: (ams.get(n.address, 0), containers.get(n.address, 0)) for n in nodemanagers(cluster)}

    def unhealthy_nodes(self, cluster: ClusterView, timeout: float) -> dict[str, str]:
        """NodeManagers the ResourceManager lists UNHEALTHY (its node health checker: local
        or log dirs bad or above ``max-disk-utilization-per-disk-percentage``, 90 % by
        default, or a health script's ERROR), with their ``healthReport``."""
        try:
            listed = (HTTP.get(f"{self._rm(cluster)}/nodes?states=UNHEALTHY", timeout=timeout).json()
                      .get("nodes") or {}).get("node", [])
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise NotObserved(f"ResourceManager not answering ({type(exc).__name__})") from exc
        if not listed:
            return {}
        reports = {n.get("nodeHostName"): str(n.get("healthReport") or "") for n in listed}
        found = {}
        for node in nodemanagers(cluster):
            name = node.address if node.address in reports else _nodemanager_name(node.address, timeout)
            if name in reports:
                found[node.node_id] = reports[name]
        return found

    def drain_status(self, cluster: ClusterView, timeout: float) -> dict[str, Drain]:
        """A leaving NodeManager is done once the ResourceManager lists it DECOMMISSIONED
        (or it is gone: SHUTDOWN, LOST, never registered). While DECOMMISSIONING it waits for
        its running containers and for the applications that ran on it (their shuffle
        output may still be read), counted from the NodeManager's own REST API."""
        leaving = cluster.leaving(NodeRole.CORE, NodeRole.TASK)
        if not leaving:
            return {}
        url = f"{self._rm(cluster)}/nodes?states={','.join(_ALL_NODE_STATES)}"
        try:
            listed = (HTTP.get(url, timeout=timeout).json().get("nodes") or {}).get("node", [])
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            return {n.node_id: Drain(False, f"ResourceManager not answering ({type(exc).__name__})") for n in leaving}
        by_host = {n.get("nodeHostName"): n for n in listed}
        answer = {}
        for node in leaving:
            entry = by_host.get(node.address) or by_host.get(_nodemanager_name(node.address, timeout))
            state = (entry or {}).get("state")
            if entry is None or state in ("DECOMMISSIONED", "SHUTDOWN", "LOST"):
                answer[node.node_id] = Drain(True)
            elif state != "DECOMMISSIONING":
                answer[node.node_id] = Drain(False, f"NodeManager {state}, not yet DECOMMISSIONING")
            else:
                containers = int(entry.get("numContainers") or 0)
                apps = _running_applications(node.address, timeout)
                waiting = ", ".join(filter(None, (_count(containers, "container"),
                                                  _count(len(apps), "application") if apps is not None else None)))
                always_on = self._always_on(cluster, apps, timeout) if apps and containers <= 1 else None
                if always_on is not None and not containers:
                    # The RM waits for every application that ran on the node while it
                    # decommissions until it finishes; the SQL endpoint never does, though
                    # its executors (dynamic allocation, 30 s idle) have left the node.
                    answer[node.node_id] = Drain(False, "only the SQL endpoint's application, which has nothing "
                                                        "left on it", release_now=True)
                elif always_on is not None and self._idle_master(cluster, node, always_on, timeout):
                    # Its AM alone: ended now, the RM kills the container (ABORTED, not
                    # counted as the attempt's failure) and starts the application's next
                    # attempt on a node in service. The RM ignores a container signal to a
                    # DECOMMISSIONING node (RMNodeImpl handles SIGNAL_CONTAINER only RUNNING
                    # or UNHEALTHY), so moving it first is not an option.
                    answer[node.node_id] = Drain(False, "only the SQL endpoint's idle ApplicationMaster, which YARN "
                                                        "restarts on a node in service", release_now=True)
                else:
                    answer[node.node_id] = Drain(False, waiting or "the ResourceManager")
        return answer

    def _always_on(self, cluster: ClusterView, application_ids: list[str], timeout: float) -> list[dict[str, Any]] | None:
        """The RM's documents of ``application_ids`` when every one is one of Corral's
        always-on applications, else None."""
        found = self.applications(cluster, application_ids, timeout=timeout)
        if len(found) == len(application_ids) and all(is_always_on(a) for a in found):
            return found
        return None

    def _idle_master(self, cluster: ClusterView, node: NodeView, apps: list[dict[str, Any]], timeout: float) -> bool:
        """Whether the one container on ``node`` is the ApplicationMaster of an always-on
        application that runs nothing else (``runningContainers`` 1: no executor, so no
        task of a query; its driver, holding the SQL sessions, is on MASTER and keeps them
        while a new attempt registers) and no earlier attempt of which ended within
        ``ALWAYS_ON_ATTEMPT_WINDOW_SECONDS`` (in case YARN counts this one's end)."""
        for app in apps:
            if int(app.get("runningContainers") or 0) != 1:
                continue
            host = str(app.get("amHostHttpAddress") or "").rsplit(":", 1)[0]
            if host != node.address and host != _nodemanager_name(node.address, timeout):
                continue
            try:
                attempts = (HTTP.get(f"{self._rm(cluster)}/apps/{app.get('id')}/appattempts", timeout=timeout).json()
                            .get("appAttempts") or {}).get("appAttempt", [])
            except (httpx.HTTPError, ValueError, AttributeError):
                continue
            if not attempts:
                continue
            current = max(attempts, key=lambda a: int(a.get("id") or 0))
            since = (time.time() - ALWAYS_ON_ATTEMPT_WINDOW_SECONDS) * 1000
            if not any(int(a.get("finishedTime") or 0) > since for a in attempts if a is not current):
                return True
        return False

    def web_uis(self, cluster: ClusterView) -> dict[str, str]:
        return {"resourcemanager": f"http://{cluster.master.address}:{RM_WEB_PORT}"}

    def _rm(self, cluster: ClusterView) -> str:
        return f"http://{cluster.master.address}:{RM_WEB_PORT}/ws/v1/cluster"

    def applications(self, cluster: ClusterView, application_ids: list[str] | tuple[str, ...],
                     timeout: float = 2.0) -> list[dict[str, Any]]:
        """The RM's documents of those of ``application_ids`` that are YARN's and that it
        knows (an id it has forgotten or cannot be asked about is left out)."""
        found = []
        for app in application_ids:
            if not app.startswith(APP_PREFIX):
                continue
            try:
                found.append(HTTP.get(f"{self._rm(cluster)}/apps/{app}", timeout=timeout).json()["app"])
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                log.debug("no ResourceManager answer for %s: %s", app, exc)
        return found

    def waiting_reason(self, cluster: ClusterView, work: StepWork, memo: WaitMemo, now: float) -> str | None:
        apps = self.applications(cluster, [a for a in work.application_ids if a not in memo.ended])
        memo.ended.update(str(a.get("id")) for a in apps if a.get("state") in _FINAL_APP_STATES)
        apps = [a for a in apps if a.get("state") not in _FINAL_APP_STATES]
        if not apps:
            memo.keep_only(set())
            return None
        try:
            nodes = (HTTP.get(f"{self._rm(cluster)}/nodes", timeout=2.0).json().get("nodes") or {}).get("node") or []
        except (httpx.HTTPError, ValueError, AttributeError):
            nodes = []
        return yarn_diagnostics.waiting_reason(apps, nodes, memo, now)

    def failure_details(self, cluster: ClusterView, application_ids: list[str]) -> dict[str, str]:
        details = {}
        for app in self.applications(cluster, application_ids, timeout=5.0):
            line = yarn_diagnostics.app_failure(app)
            if line:
                details[str(app["id"])] = line
        return details

    def cancel_applications(self, cluster: ClusterView, application_ids: list[str]) -> None:
        base = f"{self._rm(cluster)}/apps"
        for app in application_ids:
            if not app.startswith(APP_PREFIX):
                continue
            try:
                state = HTTP.get(f"{base}/{app}/state", timeout=2.0).json().get("state")
                if state not in _FINAL_APP_STATES:
                    HTTP.put(f"{base}/{app}/state", json={"state": "KILLED"}, timeout=5.0,
                              params={"user.name": hc.HADOOP_USER})
                    log.info("killed YARN application %s (was %s)", app, state)
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("could not kill YARN application %s: %s", app, exc)
