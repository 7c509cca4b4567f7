"""The newest node measurement each agent reported (``NodeReport.metrics``), in memory.

Agents attach a measurement to a report every ``MetricsSpec.interval_seconds``; the
control plane keeps only the newest per node here. The metrics sampler
(``corral.reconcile.sampler``) copies them into each cluster's history every sampling
interval, which is what survives a restart; the control plane's ``/metrics`` exposes them
for Prometheus. A restart empties the board until the agents' next reports (seconds).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from corral.agent.protocol import NodeMetrics


@dataclass(frozen=True)
class Reading:
    cluster_id: str
    node_id: str
    received_at: float  # the control plane's clock, epoch seconds
    metrics: NodeMetrics


class NodeMetricsBoard:
    """Thread-safe: report handlers put, the sampler and ``/metrics`` read."""

    def __init__(self) -> None:
        self._readings: dict[str, Reading] = {}
        self._lock = threading.Lock()

    def put(self, cluster_id: str, node_id: str, metrics: NodeMetrics, received_at: float) -> None:
        with self._lock:
            self._readings[node_id] = Reading(cluster_id, node_id, received_at, metrics)

    def latest(self, node_id: str) -> Reading | None:
        with self._lock:
            return self._readings.get(node_id)

    def for_cluster(self, cluster_id: str) -> list[Reading]:
        with self._lock:
            return [r for r in self._readings.values() if r.cluster_id == cluster_id]

    def all(self) -> list[Reading]:
        with self._lock:
            return list(self._readings.values())

    def forget(self, node_id: str) -> None:
        """A node that is gone (terminated, released) has no current reading."""
        with self._lock:
            self._readings.pop(node_id, None)
