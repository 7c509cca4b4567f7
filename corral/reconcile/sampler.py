"""The one metrics sampler: every ``Retention.interval`` (10 s) per up cluster, one
``Sample`` of EMR's CloudWatch metrics (``corral.metrics.samples``) from the services'
own endpoints (``Service.metric_values``: the RM's REST metrics, the NameNode's JMX), the
node counts from the store, and each in-service node's newest agent measurement
(``ControlPlane.node_metrics``). Each sample goes to

- the cluster's in-memory ``History`` (the last hour), which autoscaling evaluates
  (``corral.reconcile.autoscaling``) and, on a restarted control plane, starts from the
  stored history;
- the stored history (``corral.metrics.history``, bounded), which the metrics API and CLI
  read and which survives restarts;
- the sample listeners (alerts: ``corral.alerts``).

A cluster with monitoring off (``clusters.monitoring``) is sampled only while a group has
an autoscaling policy, and then only in memory. Samples are taken on the sampler's own
pool, one job per cluster at a time, so a daemon that does not answer (3 s timeout per
request) delays only its own cluster's sample and never a reconcile pass.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Callable

from sqlalchemy import select

from corral.control.clusters import load_cluster
from corral.control.context import ControlPlane
from corral.control.views import in_service_view
from corral.domain.states import ClusterState, GroupState, NodeRole, NodeState, NodeTarget
from corral.metrics.samples import History, Metric, Sample, node_values
from corral.reconcile.workers import KeyedPool
from corral.services.registry import get_service
from corral.store.models import Cluster

log = logging.getLogger("corral.metrics")
UP = (ClusterState.WAITING.value, ClusterState.RUNNING.value)  # the states in which every daemon serves
HISTORY_SECONDS = 3600.0  # what autoscaling's longest rule window may read
SWEEP_SECONDS = 60.0
REQUEST_TIMEOUT = 3.0
STALE_SECONDS = 30.0  # three of the agents' measurement intervals (MetricsSpec.interval_seconds)
HISTORIES: dict[str, History] = {}  # cluster id -> its recent samples
_histories_lock = threading.Lock()
SampleListener = Callable[[ControlPlane, Cluster, Sample], None]


def history(cluster_id: str, cp: ControlPlane | None = None, now: float | None = None) -> History:
    """The cluster's recent samples; the first call after a start loads the last hour from
    the stored history when ``cp`` is given."""
    with _histories_lock:
        found = HISTORIES.get(cluster_id)
        if found is not None:
            return found
    earlier = []
    if cp is not None:
        until = time.time() if now is None else now
        try:
            earlier = cp.history.recent(cluster_id, until - HISTORY_SECONDS, until)
        except Exception:  # noqa: BLE001 - no stored history is no data, not a failure
            log.exception("cannot load the stored history of %s", cluster_id)
    # Published only once filled: a sample recorded meanwhile by another thread would
    # otherwise come before the older ones.
    with _histories_lock:
        found = HISTORIES.get(cluster_id)
        if found is not None:
            return found
        fresh = HISTORIES[cluster_id] = History(HISTORY_SECONDS)
        for sample in earlier:
            fresh.add(sample)
    return fresh


def wanted(cluster: Cluster) -> bool:
    """Whether the cluster is sampled now: up, and monitored or autoscaled."""
    if cluster.status not in UP:
        return False
    policed = any(g.autoscaling_policy and g.status != GroupState.TERMINATED.value for g in cluster.groups)
    return cluster.monitoring is not False or policed


def _node_counts(cluster: Cluster) -> dict[Metric, float]:
    """EMR's CoreNodesRunning/Pending and TaskNodesRunning/Pending, from the store."""
    counts = {Metric.CORE_NODES_RUNNING: 0.0, Metric.CORE_NODES_PENDING: 0.0,
              Metric.TASK_NODES_RUNNING: 0.0, Metric.TASK_NODES_PENDING: 0.0}
    ended = (NodeState.TERMINATING.value, NodeState.TERMINATED.value)
    for node in cluster.nodes:
        if node.role == NodeRole.MASTER.value or node.status in ended or node.target == NodeTarget.TERMINATED.value:
            continue
        core = node.role == NodeRole.CORE.value
        if node.status == NodeState.RUNNING.value and not node.decommission_state:
            counts[Metric.CORE_NODES_RUNNING if core else Metric.TASK_NODES_RUNNING] += 1
        elif node.status != NodeState.RUNNING.value and node.status != NodeState.LOST.value:
            counts[Metric.CORE_NODES_PENDING if core else Metric.TASK_NODES_PENDING] += 1
    return counts


def take_sample(cp: ControlPlane, cluster: Cluster, now: float, interval: float) -> Sample:
    """One reading of the cluster (not stored: ``record`` does that)."""
    view = in_service_view(cluster)
    values: dict = dict(_node_counts(cluster))
    for name in cluster.services:
        try:
            values.update(get_service(name).metric_values(view, now, timeout=REQUEST_TIMEOUT))
        except Exception:  # noqa: BLE001 - one service's failure leaves the others' metrics
            log.exception("metrics of %s from %s failed", cluster.id, name)
    nodes = {}
    if cluster.monitoring is not False:
        serving = {n.node_id for n in view.nodes}
        for reading in cp.node_metrics.for_cluster(cluster.id):
            # A measurement older than STALE_SECONDS is a node that stopped reporting: its
            # last values are not its present ones.
            if reading.node_id in serving and now - reading.received_at <= max(3 * interval, STALE_SECONDS):
                nodes[reading.node_id] = node_values(reading.metrics)
    return Sample(now, values, nodes)


def record(cp: ControlPlane, cluster: Cluster, sample: Sample) -> None:
    history(cluster.id, cp, sample.at).add(sample)
    if cluster.monitoring is not False:
        cp.history.append(cluster.id, sample)


def forget(cp: ControlPlane, cluster_id: str) -> None:
    """A terminated cluster's in-memory history and its control-plane series go; its stored
    history ages out."""
    with _histories_lock:
        HISTORIES.pop(cluster_id, None)
    cp.history.forget(cluster_id)
    cp.telemetry.forget_cluster(cluster_id)


class MetricsSampler:
    """Driven by the reconcile loop's ticks (``tick``, every 0.5 s); samples on a pool of
    its own. ``listeners`` run after each sample is recorded, on the same worker."""

    def __init__(self, cp: ControlPlane, clock: Callable[[], float] = time.time, workers: int = 4,
                 tick_seconds: float = 0.5):
        self.cp = cp
        self.clock = clock
        self.tick_seconds = tick_seconds  # how often ``tick`` is called
        self.interval = cp.history.retention.interval
        self.pool = KeyedPool(workers, "metrics-sampler")
        self.listeners: list[SampleListener] = []
        self._last: dict[str, float] = {}
        self._last_sweep = 0.0

    def tick(self) -> None:
        now = self.clock()
        with self.cp.store.session() as s:
            ids = list(s.scalars(select(Cluster.id).where(Cluster.status.in_(UP))))
        up = set(ids)
        for gone in [c for c in self._last if c not in up]:  # ended (or down) since: nothing kept for it
            del self._last[gone]
            forget(self.cp, gone)
        # Due clusters take turns, the longest waiting first, at most their share of the
        # interval per tick: sampled in the same instant (as all clusters would be after a
        # restart), their samples, alert checks and the passes they poke came as one burst
        # every interval that held up every API request meanwhile (bench/monitoring.py).
        due = sorted((c for c in ids if now - self._last.get(c, 0.0) >= self.interval),
                     key=lambda c: self._last.get(c, 0.0))
        share = max(1, math.ceil(len(ids) * self.tick_seconds / self.interval))
        for cluster_id in due[:share]:
            if self.pool.submit(cluster_id, lambda c=cluster_id: self.sample_now(c)) is not None:
                self._last[cluster_id] = now
        if now - self._last_sweep >= SWEEP_SECONDS:
            self._last_sweep = now
            self.pool.submit("__sweep__", lambda: self._sweep(now))

    def sample_now(self, cluster_id: str) -> Sample | None:
        """Sample one cluster now, record it and tell the listeners; None when the cluster
        is not to be sampled (``wanted``)."""
        now = self.clock()
        try:
            with self.cp.store.session() as s:
                cluster = load_cluster(s, cluster_id)
            if not wanted(cluster):
                return None
            sample = take_sample(self.cp, cluster, now, self.interval)
            record(self.cp, cluster, sample)
        except Exception:  # noqa: BLE001 - the next interval tries again
            log.exception("sampling %s failed", cluster_id)
            return None
        self.cp.notifier.poke_reconciler(cluster_id)  # autoscaling evaluates the new sample on the next pass
        for listener in self.listeners:
            try:
                listener(self.cp, cluster, sample)
            except Exception:  # noqa: BLE001 - a listener's failure is its own
                log.exception("sample listener %s failed for %s", getattr(listener, "__name__", listener), cluster_id)
        return sample

    def _sweep(self, now: float) -> None:
        try:
            self.cp.history.sweep(now)
        except Exception:  # noqa: BLE001 - next sweep
            log.exception("metric history sweep failed")

    def stop(self) -> None:
        self.pool.stop()
