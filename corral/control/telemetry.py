"""The control plane's own Prometheus metrics, served at ``GET /metrics`` (issue 13).

One ``CollectorRegistry`` per ``ControlPlane`` (``cp.telemetry``), never the client's
process-wide default: tests run many control planes in one process, and each must count
only its own requests. Two kinds of metric:

- **From the store, computed at scrape time** (``_StoreCollector``), so they are right after
  a restart and need no bookkeeping where the state changes; cheap: GROUP BY counts over
  ``clusters``, ``nodes`` and ``steps``, and a few columns of the nodes of clusters not
  terminated (the only rows read; never the events table).

  - ``corral_clusters{state}``: clusters, every ClusterState (0 when none);
  - ``corral_nodes{status}``: nodes of clusters not terminated, every NodeState;
  - ``corral_steps{state}``: steps, every StepState;
  - ``corral_step_duration_seconds_sum/_count{type,state}`` (a summary): the run time
    (ended_at - started_at, seconds) of finished steps;
  - ``corral_agent_report_age_seconds{cluster_id,node_id,role}``: seconds since the node's
    last report (``nodes.last_heartbeat``), per node that has reported (LOST ones too) and
    is not TERMINATING, of a cluster neither TERMINATING nor terminated;
  - ``corral_node_*{cluster_id,node_id,role}`` (``NODE_GAUGES``, the disks by ``path``, and
    ``corral_node_metrics_age_seconds``): each live node's newest ``NodeMetrics`` on
    ``cp.node_metrics``, a gauge omitted where the agent measured nothing (None).

- **Process instruments**, since this process started: ``corral_api_request_duration_seconds``
  (histogram by method, route template and status class; ``corral.api.request_metrics``),
  ``corral_reconcile_pass_duration_seconds`` (histogram by outcome, one observation per
  cluster pass; ``corral.reconcile.loop``) and ``corral_autoscaling_decisions_total``
  (counter by cluster_id, group and direction; ``corral.reconcile.autoscaling``).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select

from corral.agent.protocol import NodeMetrics
from corral.control.node_metrics import NodeMetricsBoard
from corral.domain.states import ClusterState, NodeState, StepState
from corral.store.db import Store
from corral.store.models import Cluster, Node, Step

if TYPE_CHECKING:
    from corral.control.context import ControlPlane

# API latency: the goal is p99 < 100 ms, so the buckets are dense up to 100 ms (100 ms is
# one boundary) and sparse above, to 10 s. The agents' plan long polls wait up to 20 s: their
# route is a series of its own, mostly in +Inf, which a latency alert leaves out.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A cluster pass calls providers and services (SSH, the ResourceManager) and may take seconds.
PASS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
NODE_LABELS = ("cluster_id", "node_id", "role")
# Metric name -> (help, the NodeMetrics field). A field that is None (not measured) is omitted.
NODE_GAUGES: dict[str, tuple[str, str]] = {
    "corral_node_cpu_cores_used": ("CPU seconds per second the node used (1.5: one and a half cores busy)",
                                   "cpu_cores_used"),
    "corral_node_vcpus": ("Cores the node has", "vcpus"),
    "corral_node_memory_used_bytes": ("Resident memory the node uses, bytes", "memory_used_bytes"),
    "corral_node_memory_total_bytes": ("Memory the node has, bytes", "memory_total_bytes"),
    "corral_node_load1": ("The host's 1-minute load average", "load1"),
    "corral_node_network_receive_bytes_per_second": ("Bytes received per second, all interfaces but loopback",
                                                     "net_rx_bytes_per_second"),
    "corral_node_network_transmit_bytes_per_second": ("Bytes sent per second, all interfaces but loopback",
                                                      "net_tx_bytes_per_second"),
}
_ENDED = [s.value for s in ClusterState if s.is_terminal()]
_FINISHED_STEPS = [s.value for s in StepState if s.is_terminal()]


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

class Telemetry:
    """The registry of one control plane and its process instruments. ``render(cp)`` is
    the exposition; the store collector is attached to the registry on the first one
    (``ControlPlane`` builds this object before it has a store to hand it)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock  # epoch seconds, the clock of ``last_heartbeat`` and the board's ``received_at``
        self.registry = CollectorRegistry(auto_describe=False)
        self.api_requests = Histogram(
            "corral_api_request_duration_seconds",
            "Time from a request's arrival to the end of its response, seconds, by route template",
            ("method", "route", "status"), buckets=REQUEST_BUCKETS, registry=self.registry)
        self.reconcile_passes = Histogram(
            "corral_reconcile_pass_duration_seconds",
            "Duration of one reconciler pass over one cluster, seconds (outcome: ok, or error when it raised)",
            ("outcome",), buckets=PASS_BUCKETS, registry=self.registry)
        self.autoscaling_decisions = Counter(
            "corral_autoscaling_decisions",
            "Autoscaling changes of a node group's target (direction: out grows it, in shrinks it)",
            ("cluster_id", "group", "direction"), registry=self.registry)
        self._decision_labels: dict[str, set[tuple[str, str, str]]] = {}  # cluster id -> its counter's label sets
        self._labels_lock = threading.Lock()
        self._attached = False
        self._lock = threading.Lock()

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One answered request; ``route`` is its template (``/api/v1/clusters/{cluster_id}``)."""
        method = method.upper()
        # HTTP's methods, else OTHER: a client must not make a new series per made-up method.
        self.api_requests.labels(method if method in _METHODS else "OTHER", route, f"{status // 100}xx").observe(seconds)

    def reconcile_pass(self, seconds: float, ok: bool) -> None:
        self.reconcile_passes.labels("ok" if ok else "error").observe(seconds)

    def autoscaling_decision(self, cluster_id: str, group: str, current: int, desired: int) -> None:
        """A recorded AUTOSCALING_DECISION: ``group``'s target goes from ``current`` to ``desired`` nodes."""
        labels = (cluster_id, group, "out" if desired > current else "in")
        self.autoscaling_decisions.labels(*labels).inc()
        with self._labels_lock:
            self._decision_labels.setdefault(cluster_id, set()).add(labels)

    def forget_cluster(self, cluster_id: str) -> None:
        """An ended cluster's series go (a cluster id is never reused): the exposition stays
        as large as the clusters that are up, however many have come and gone."""
        with self._labels_lock:
            gone = self._decision_labels.pop(cluster_id, set())
        for labels in gone:
            self.autoscaling_decisions.remove(*labels)

    def render(self, cp: "ControlPlane") -> bytes:
        """The Prometheus text exposition (``CONTENT_TYPE_LATEST``) of everything above."""
        with self._lock:
            if not self._attached:
                self.registry.register(_StoreCollector(cp.store, cp.node_metrics, lambda: self.clock()))
                self._attached = True
        return generate_latest(self.registry)


class _LiveNode(NamedTuple):
    cluster_id: str
    role: str
    status: str
    cluster_status: str
    last_heartbeat: float | None


class _StoreCollector(Collector):
    """Collected on every scrape; registered without ``describe`` (so registration runs no query)."""

    def __init__(self, store: Store, board: NodeMetricsBoard, clock: Callable[[], float]) -> None:
        self.store, self.board, self.clock = store, board, clock

    def collect(self) -> Iterable[Metric]:
        with self.store.session() as s:
            clusters = dict(s.execute(select(Cluster.status, func.count()).group_by(Cluster.status)).all())
            nodes = dict(s.execute(select(Node.status, func.count()).join(Cluster, Node.cluster_id == Cluster.id)
                                   .where(Cluster.status.not_in(_ENDED)).group_by(Node.status)).all())
            steps = dict(s.execute(select(Step.status, func.count()).group_by(Step.status)).all())
            # Clock skew between an agent's start and the control plane's end cannot make a sum negative.
            duration = case((Step.ended_at > Step.started_at, Step.ended_at - Step.started_at), else_=0.0)
            durations = s.execute(
                select(Step.type, Step.status, func.sum(duration), func.count())
                .where(Step.status.in_(_FINISHED_STEPS), Step.started_at.is_not(None), Step.ended_at.is_not(None))
                .group_by(Step.type, Step.status)).all()
            live = {row.id: _LiveNode(row.cluster_id, row.role, row.status, row.cluster_status, row.last_heartbeat)
                    for row in s.execute(
                        select(Node.id, Node.cluster_id, Node.role, Node.status, Node.last_heartbeat,
                               Cluster.status.label("cluster_status"))
                        .join(Cluster, Node.cluster_id == Cluster.id)
                        .where(Cluster.status.not_in(_ENDED), Node.status != NodeState.TERMINATED.value))}
        now = self.clock()
        yield _counts("corral_clusters", "Clusters by state", "state", ClusterState, clusters)
        yield _counts("corral_nodes", "Nodes of clusters not terminated, by status", "status", NodeState, nodes)
        yield _counts("corral_steps", "Steps by state", "state", StepState, steps)
        summary = SummaryMetricFamily("corral_step_duration_seconds",
                                      "Run time of finished steps (ended_at - started_at), seconds",
                                      labels=("type", "state"))
        for step_type, state, total, count in durations:
            summary.add_metric([step_type, state], count_value=int(count), sum_value=float(total or 0.0))
        yield summary
        yield self._report_ages(live, now)
        yield from self._node_gauges(live, now)

    @staticmethod
    def _report_ages(live: dict[str, _LiveNode], now: float) -> Metric:
        """Nodes that have reported at least once and are neither leaving nor of a cluster
        terminating, where silence is expected (their agents are being stopped). LOST nodes
        are in: their age is what an alert on silence looks at."""
        ages = GaugeMetricFamily("corral_agent_report_age_seconds",
                                 "Seconds since the node's agent last reported", labels=NODE_LABELS)
        for node_id, n in sorted(live.items()):
            if (n.last_heartbeat is None or n.status == NodeState.TERMINATING.value
                    or n.cluster_status == ClusterState.TERMINATING.value):
                continue
            ages.add_metric([n.cluster_id, node_id, n.role], max(0.0, now - n.last_heartbeat))
        return ages

    def _node_gauges(self, live: dict[str, _LiveNode], now: float) -> Iterator[Metric]:
        """The board's readings of live nodes (a reading of a node gone or of another
        cluster than its row's is stale: skipped)."""
        gauges = {name: GaugeMetricFamily(name, help_text, labels=NODE_LABELS)
                  for name, (help_text, _) in NODE_GAUGES.items()}
        disk_used = GaugeMetricFamily("corral_node_disk_used_bytes", "Bytes used on the file system of a data directory",
                                      labels=(*NODE_LABELS, "path"))
        disk_free = GaugeMetricFamily("corral_node_disk_free_bytes", "Bytes free on the file system of a data directory",
                                      labels=(*NODE_LABELS, "path"))
        age = GaugeMetricFamily("corral_node_metrics_age_seconds",
                                "Seconds since the control plane received the node's newest measurement",
                                labels=NODE_LABELS)
        for reading in sorted(self.board.all(), key=lambda r: r.node_id):
            node = live.get(reading.node_id)
            if node is None or node.cluster_id != reading.cluster_id:
                continue
            labels = [reading.cluster_id, reading.node_id, node.role]
            for name, value in _gauge_values(reading.metrics):
                gauges[name].add_metric(labels, value)
            for disk in reading.metrics.disks:
                disk_used.add_metric([*labels, disk.path], disk.used_bytes)
                disk_free.add_metric([*labels, disk.path], disk.free_bytes)
            age.add_metric(labels, max(0.0, now - reading.received_at))
        yield from gauges.values()
        yield from (disk_used, disk_free, age)


def _gauge_values(metrics: NodeMetrics) -> Iterator[tuple[str, float]]:
    for name, (_, attribute) in NODE_GAUGES.items():
        value = getattr(metrics, attribute)
        if value is not None:
            yield name, float(value)


def _counts(name: str, help_text: str, label: str, states: Iterable[ClusterState | NodeState | StepState],
            counted: dict[str, int]) -> GaugeMetricFamily:
    """Every state of the enum (0 when none: a series that vanishes breaks rate() and
    alerts), and any other value the table holds (rows written by a newer version)."""
    family = GaugeMetricFamily(name, help_text, labels=(label,))
    values = [s.value for s in states]
    for value in [*values, *sorted(v for v in counted if v not in values)]:
        family.add_metric([value], int(counted.get(value, 0)))
    return family
