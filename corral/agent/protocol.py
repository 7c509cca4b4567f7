"""The wire contract between the control plane and node agents.

The agent only ever calls the control plane (no inbound port on nodes):
- it long-polls its ``NodePlan`` (the desired state of its node, versioned), and
- it posts ``NodeReport``s (what is actually there) on every change and as a heartbeat.

Strings in a plan may contain runtime placeholders such as ``${SPARK_HOME}``; only the
agent knows where the release's runtime lives on its host, so it substitutes them (in a
file, escaped for the file's format). ``$${SPARK_HOME}`` stands for ``${SPARK_HOME}``
itself: how a value that must not be substituted (a secret) is sent.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

RUNTIME_PLACEHOLDERS = ("SPARK_HOME", "JAVA_HOME", "PYTHON", "HADOOP_HOME", "SPARK_CDS_OPTS", "HADOOP_CDS_OPTS")
# Placeholders that stand for JVM options: as a whole argv element they become one element
# per option (none when empty), so they can sit in a command line as in a string.
OPTION_PLACEHOLDERS = ("SPARK_CDS_OPTS", "HADOOP_CDS_OPTS")
# `${NAME}` is the node's value, `$${NAME}` the text `${NAME}`.
RUNTIME_PLACEHOLDER = re.compile(r"(\$?)\$\{(" + "|".join(RUNTIME_PLACEHOLDERS) + r")\}")
_BARE_PLACEHOLDER = re.compile(r"\$\{(?:" + "|".join(RUNTIME_PLACEHOLDERS) + r")\}")


def protect_runtime_placeholders(text: str) -> str:
    """``text`` such that the agent's substitution gives back ``text`` itself."""
    return _BARE_PLACEHOLDER.sub(lambda m: "$" + m.group(0), text)


# How a file's values are written, so that what is filled into it later (runtime paths,
# secrets) is escaped the same way (``corral.formats``): "text" means not at all.
FileKind = Literal["text", "xml", "properties", "shell"]


class Probe(BaseModel):
    """A reachability check: a TCP connect, or an HTTP GET answering < 500."""

    kind: Literal["tcp", "http"]
    host: str
    port: int
    path: str = "/"

    def describe(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}" if self.kind == "http" else f"tcp {self.host}:{self.port}"


class RestartPolicy(BaseModel):
    max_restarts: int = 5  # within window_seconds; beyond that the component is FAILED
    window_seconds: int = 300
    backoff_seconds: float = 1.0  # doubled after each restart, capped at 30 s
    # False: an exit with code 0 is the daemon's own decision (a NodeManager the
    # ResourceManager decommissioned shuts down so), and it stays STOPPED.
    restart_on_success: bool = True


class ComponentSpec(BaseModel):
    name: str  # unique on the node, e.g. "spark-worker"
    service: str
    argv: list[str]
    env: dict[str, str] = Field(default_factory=dict)
    health: Probe | None = None
    wait_for: list[Probe] = Field(default_factory=list)  # must answer before the start
    ports: list[int] = Field(default_factory=list)
    directories: list[str] = Field(default_factory=list)  # created before the first start
    restart: RestartPolicy = Field(default_factory=RestartPolicy)
    stop_timeout: float = 10.0


class FileHook(BaseModel):
    """A command the agent runs after it wrote a changed file (e.g. ``yarn rmadmin
    -refreshNodes`` after the ResourceManager's exclude file), once ``wait_for`` answers,
    retried with backoff until it exits 0. It also runs once after every agent start, so a
    refresh a crash cut short is redone: hooks must be idempotent."""

    argv: list[str]
    wait_for: Probe | None = None
    timeout: float = 120.0


class FileSpec(BaseModel):
    path: str  # absolute, on the node
    content: str  # written as UTF-8
    mode: int = 0o644
    format: FileKind = "text"
    on_change: list[FileHook] = Field(default_factory=list)


class ArtifactRef(BaseModel):
    """A file the control plane stores by content hash; the agent fetches it once."""

    sha256: str
    name: str


class BootstrapSpec(BaseModel):
    name: str
    artifact: ArtifactRef
    args: list[str] = Field(default_factory=list)
    timeout: float = 600.0


class StepCommand(BaseModel):
    """What the master's agent runs for a step. ``{artifact:<sha256>}`` in argv is the
    node-local directory of that artifact once fetched; each of ``artifacts`` is the file
    ``{artifact:<sha256>}/<name>`` in it (one content may be shipped under several names)."""

    id: str
    argv: list[str]
    env: dict[str, str] = Field(default_factory=dict)
    artifacts: list[ArtifactRef] = Field(default_factory=list)
    cancel: bool = False


class RuntimeSpec(BaseModel):
    release: str
    spark_version: str
    java_major: int
    hadoop_version: str | None = None  # only when the cluster runs a Hadoop service
    # The control plane's repository bundle with this runtime's archives
    # (``GET /agent/v1/repository/bundles/{bundle}``): what an agent whose host has
    # neither the release's pyspark nor its Hadoop runtime fetches, once per host.
    bundle: str | None = None


class MetricsSpec(BaseModel):
    """What the agent measures of its node for the control plane (``NodeMetrics``).

    ``scope`` "host": the node is the whole machine (the ssh provider): the host's CPU,
    memory, load and network, and each data directory's filesystem. "node": the node
    shares its machine with others (the local provider): only the node's own processes
    (the process trees of the agent, its daemons and its steps) and the bytes under its own
    directory, against ``vcpus``/``memory_bytes``/``disk_bytes`` of its instance type;
    load and network are the machine's, so they are not reported."""

    scope: Literal["host", "node"]
    interval_seconds: float = 10.0  # how often a measurement is taken and attached to a report
    data_dirs: list[str] = Field(default_factory=list)  # absolute; for "host", each one's filesystem
    vcpus: int | None = None  # "node": the node's size (its instance type)
    memory_bytes: int | None = None
    disk_bytes: int | None = None


class NodePlan(BaseModel):
    version: int
    cluster_id: str
    node_id: str
    role: str
    address: str
    terminate: bool = False
    runtime: RuntimeSpec
    files: list[FileSpec] = Field(default_factory=list)
    bootstrap: list[BootstrapSpec] = Field(default_factory=list)
    components: list[ComponentSpec] = Field(default_factory=list)
    steps: list[StepCommand] = Field(default_factory=list)
    base_env: dict[str, str] = Field(default_factory=dict)  # for bootstrap actions and steps
    log_archive_uri: str | None = None  # <LogUri>/<cluster>: where this node copies its logs
    metrics: MetricsSpec | None = None  # None: monitoring is off, the agent measures nothing


AgentPhase = Literal["DEPLOYING", "CONFIGURING", "BOOTSTRAPPING", "STARTING", "RUNNING", "FAILED", "STOPPING", "STOPPED"]
ComponentStatus = Literal["WAITING", "STARTING", "RUNNING", "RESTARTING", "FAILED", "STOPPED"]
StepStatus = Literal["RUNNING", "COMPLETED", "FAILED", "CANCELLED"]


class ComponentReport(BaseModel):
    status: ComponentStatus
    pid: int | None = None
    restarts: int = 0
    message: str | None = None


class StepReport(BaseModel):
    status: StepStatus
    pid: int | None = None
    exit_code: int | None = None
    message: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    logs_flushed: bool = False  # every byte of stdout/stderr has reached the control plane


class AgentEvent(BaseModel):
    seq: int  # per agent incarnation-independent: persisted on the node, strictly increasing
    time: float
    level: Literal["INFO", "WARN", "ERROR"] = "INFO"
    code: str
    message: str
    component: str | None = None


class DiskUsage(BaseModel):
    path: str  # a data directory ("host"), or the node's own directory ("node")
    used_bytes: int
    free_bytes: int
    total_bytes: int


class NodeMetrics(BaseModel):
    """One measurement of the node (``MetricsSpec``), taken at ``at`` (the agent's clock,
    epoch seconds). Rates are over the interval since the previous measurement; the first
    measurement after an agent start has none (None). None is "not measured", never 0."""

    at: float
    scope: Literal["host", "node"]
    cpu_cores_used: float | None = None  # CPU seconds per second: 1.5 = one and a half cores busy
    vcpus: int  # the cores the node has (the host's, or its instance type's)
    memory_used_bytes: int  # resident memory (the host's used, or the node's processes' RSS)
    memory_total_bytes: int
    processes: int | None = None  # "node": the processes counted
    load1: float | None = None  # "host": the 1-minute load average
    net_rx_bytes_per_second: float | None = None  # "host": all interfaces but loopback
    net_tx_bytes_per_second: float | None = None
    disks: list[DiskUsage] = Field(default_factory=list)


class NodeReport(BaseModel):
    node_id: str
    agent_pid: int
    plan_version: int  # the newest plan the agent has applied
    phase: AgentPhase
    error: str | None = None  # for phase FAILED: what failed, with the failing script's stderr tail
    error_code: Literal["DEPLOY_FAILURE", "BOOTSTRAP_FAILURE"] | None = None
    runtime: dict[str, str] = Field(default_factory=dict)
    components: dict[str, ComponentReport] = Field(default_factory=dict)
    steps: dict[str, StepReport] = Field(default_factory=dict)
    events: list[AgentEvent] = Field(default_factory=list)
    metrics: NodeMetrics | None = None  # the newest measurement, when the plan asks for them


class ReportAck(BaseModel):
    plan_version: int  # the current plan version, so the agent knows whether to fetch
    last_event_seq: int  # events up to here are stored; the agent can drop them
