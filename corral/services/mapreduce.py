"""MAPREDUCE (on YARN): the JobHistory Server on MASTER, and mapred-site with the
application classpath (there is no $HADOOP_MAPRED_HOME/share layout to default to) and
task sizes derived from the NodeManagers' instance types.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from corral import formats
from corral.agent.protocol import ComponentSpec, FileSpec, Probe
from corral.domain.spec import ClusterSpec
from corral.domain.states import NodeRole
from corral.errors import FieldError
from corral.services import app_usage
from corral.services import hadoop_common as hc
from corral.services.base import HTTP, ClusterView, MetricsEndpoint, NodeView, NotYet, ReadyCheck, ServiceBase
from corral.services.hdfs import NAMENODE_RPC_PORT
from corral.services.sizing import MR_MIN_TASK_MIB, derive
from corral.services.yarn import APP_PREFIX, RM_WEB_PORT, application_classpath
from corral.services.yarn_diagnostics import error_line

HISTORY_PORT = 10020
HISTORY_WEB_PORT = 19888
HISTORY_ADMIN_PORT = 10033
CONTAINER_LOG_TAIL = 16 << 10  # bytes of a failed attempt's stderr read for its error line
_JSON = {"Accept": "application/json"}
# YARN's LogAggregationStatus values while a finished application's logs are still moving
# to HDFS (the JobHistory Server reads them from there).
_AGGREGATING = ("NOT_START", "RUNNING", "RUNNING_WITH_FAILURE")
log = logging.getLogger(__name__)


def listed(document: dict[str, Any] | None, outer: str, inner: str) -> list[dict[str, Any]]:
    """``document[outer][inner]`` as a list: the JobHistory Server's JSON (Jersey's JAXB
    mapping) gives a list of one element as the element itself (``"task": {...}``)."""
    value = ((document or {}).get(outer) or {}).get(inner)
    if isinstance(value, dict):
        return [value]
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def failed_attempt(tasks: dict[str, Any], attempts_of: Any) -> dict[str, Any] | None:
    """The last failed attempt of the job's first FAILED task (its error is the job's), from
    the JobHistory Server's ``/jobs/{job}/tasks`` document; ``attempts_of(task_id)`` returns
    that task's ``/attempts`` document."""
    failed = [t for t in listed(tasks, "tasks", "task") if t.get("state") == "FAILED"]
    for task in sorted(failed, key=lambda t: (t.get("finishTime") or 0, str(t.get("id")))):
        attempts = [a for a in listed(attempts_of(task["id"]), "taskAttempts", "taskAttempt")
                    if a.get("state") == "FAILED"]
        if attempts:
            return max(attempts, key=lambda a: (a.get("startTime") or 0, str(a.get("id"))))
    return None


def attempt_error(attempt: dict[str, Any], stderr: str) -> str | None:
    """A failed task attempt's own error line: the last exception its container wrote to
    stderr (a streaming mapper's Python traceback ends there), with the attempt's
    diagnostics line when that says something else (``PipeMapRed ... failed with code 1``)."""
    diagnostic = error_line(str(attempt.get("diagnostics") or ""))
    logged = error_line(stderr, last=True)
    if logged and diagnostic and logged != diagnostic:
        return f"{logged} (task attempt {attempt.get('id')}: {diagnostic})"
    return logged or diagnostic


def task_mib(cluster: ClusterView) -> int:
    """Map, reduce and ApplicationMaster containers: one per vcore of the smallest
    NodeManager, 512 MiB - 2 GiB, as large as still fits beside the SQL endpoint's AM
    (``corral.services.sizing``)."""
    return derive(cluster).mr_task_mib or MR_MIN_TASK_MIB


class MapReduceService(ServiceBase):
    name = "mapreduce"
    requires: tuple[str, ...] = ("yarn", "hdfs")
    classifications = {"mapred-site": formats.HADOOP_XML}
    uses_hadoop = True
    node_ports = {NodeRole.MASTER: (HISTORY_PORT, HISTORY_WEB_PORT, HISTORY_ADMIN_PORT)}

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
            "yarn.app.mapreduce.am.command-opts": f"-Xmx{int(task) * 4 // 5}m {hc.DAEMON_JAVA_OPTS}",
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
        return [FileSpec(path=f"{hc.conf_dir(node)}/mapred-site.xml", content=hc.site_xml(props.get("mapred-site", {})),
                         format="xml")]

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

    def failure_details(self, cluster: ClusterView, application_ids: list[str]) -> dict[str, str]:
        """The FAILED ones among the applications, read through the JobHistory Server's
        REST API, the cluster's reader of aggregated container logs: a MapReduce job's
        (DistCp, HADOOP_JAR, STREAMING) failed task attempt (its ``diagnostics`` and its
        container's stderr, ``/ws/v1/history/containerlogs``); any other application's
        (a cluster-mode Spark driver) last ApplicationMaster container's stdout/stderr
        when the RM's diagnostics name no exception. Raises NotYet while YARN still
        aggregates the logs or the server does not have a finished job's history yet."""
        details = {}
        for app in application_ids:
            if not app.startswith(APP_PREFIX):
                continue
            try:
                info = HTTP.get(f"{self._rm(cluster)}/apps/{app}", timeout=5.0).json()["app"]
                if info.get("finalStatus") != "FAILED":
                    continue
                if info.get("logAggregationStatus") in _AGGREGATING:
                    raise NotYet(f"{app}'s container logs are still being aggregated")
                line = self._job_failure(cluster, app, info)
                if line is None:
                    line = self._am_failure(cluster, app, info)
            except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
                log.debug("no JobHistory answer for %s: %s", app, exc)
                continue
            if line:
                details[app] = line
        return details

    def application_usage(self, cluster: ClusterView, application_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        """Each MapReduce job's task containers, from the JobHistory Server."""
        history = f"http://{cluster.master.address}:{HISTORY_WEB_PORT}"
        usage: dict[str, dict[str, Any]] = {}
        for app in application_ids:
            if not app.startswith(APP_PREFIX) or app_usage.application_type(self._rm(cluster), app, timeout) != "MAPREDUCE":
                continue
            try:
                usage[app] = {"task_containers": app_usage.mapreduce_task_containers(history, app, timeout)}
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                continue
        return usage

    def metrics_endpoints(self, cluster: ClusterView, timeout: float) -> list[MetricsEndpoint]:
        """The JobHistory Server's /prom."""
        if not cluster.monitoring:
            return []
        master = cluster.master
        return [MetricsEndpoint(master.node_id, master.role, "jobhistoryserver", f"{master.address}:{HISTORY_WEB_PORT}",
                                "/prom")]

    def _rm(self, cluster: ClusterView) -> str:
        return f"http://{cluster.master.address}:{RM_WEB_PORT}/ws/v1/cluster"

    def _history(self, cluster: ClusterView) -> str:
        return f"http://{cluster.master.address}:{HISTORY_WEB_PORT}/ws/v1/history"

    def _container_log(self, cluster: ClusterView, container: str, name: str) -> str:
        """The tail of a finished container's aggregated log file (HsWebServices' containerlogs)."""
        resp = HTTP.get(f"{self._history(cluster)}/containerlogs/{container}/{name}",
                        params={"size": str(-CONTAINER_LOG_TAIL)}, timeout=5.0)
        return resp.text if resp.status_code == 200 else ""

    def _job_failure(self, cluster: ClusterView, app: str, info: dict[str, Any]) -> str | None:
        """A MapReduce job's failed task attempt error; None when it is no MapReduce job or
        its ApplicationMaster wrote no history (it died: its container's logs may say why)."""
        if info.get("applicationType") != "MAPREDUCE":
            return None
        jobs = f"{self._history(cluster)}/mapreduce/jobs/job_{app.removeprefix(APP_PREFIX)}"
        resp = HTTP.get(f"{jobs}/tasks", timeout=5.0, headers=_JSON)
        if resp.status_code == 404 and info.get("state") == "FINISHED":
            # The ApplicationMaster unregistered (it did not die), so it wrote the job's
            # history; but the job's client returns once the AM reports the failure, and
            # the AM moves that history to where this server reads it only as it stops.
            raise NotYet(f"the JobHistory Server does not have {app}'s job yet")
        if resp.status_code != 200:
            return None
        attempt = failed_attempt(resp.json(), lambda task: HTTP.get(
            f"{jobs}/tasks/{task}/attempts", timeout=5.0, headers=_JSON).json())
        if attempt is None:
            return None
        container = attempt.get("assignedContainerId")
        return attempt_error(attempt, self._container_log(cluster, container, "stderr") if container else "")

    def _am_failure(self, cluster: ClusterView, app: str, info: dict[str, Any]) -> str | None:
        """Any other FAILED application (a cluster-mode Spark driver, an ApplicationMaster
        that died) whose RM diagnostics (``info``) name no exception: the last exception
        its last ApplicationMaster container wrote (stdout first: a PySpark driver's
        traceback goes there), from the aggregated logs this server reads."""
        if error_line(str(info.get("diagnostics") or "")):
            return None  # the yarn service's diagnostics already say it
        url = f"{self._rm(cluster)}/apps/{app}/appattempts"
        attempts = listed(HTTP.get(url, timeout=5.0).json(), "appAttempts", "appAttempt")
        if not attempts:
            return None
        container = max(attempts, key=lambda a: int(a.get("id") or 0)).get("containerId")
        if not container:
            return None
        for name in ("stdout", "stderr"):
            line = error_line(self._container_log(cluster, container, name), last=True)
            if line:
                return line
        return None
