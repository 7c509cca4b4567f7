"""Metric samples of one cluster and their recent history, behind a small interface.

A ``Sample`` is what one reading of the daemons gave at one time, as metric name -> value.
The names are EMR's CloudWatch metric names for the same quantities, so an EMR user's
autoscaling rules read the same (EMR Management Guide, "Monitor metrics with CloudWatch"):

============================== ====================================================== =========
metric                         from                                                   unit
============================== ====================================================== =========
YARNMemoryAvailablePercentage  RM ``/ws/v1/cluster/metrics``: availableMB / totalMB   percent
MemoryPendingMB                RM: pendingMB (memory asked for by containers waiting)  MiB
MemoryAvailableMB              RM: availableMB                                        MiB
ContainerPending               RM: containersPending                                  count
ContainerAllocated             RM: containersAllocated                                count
ContainerPendingRatio          ContainerPending / ContainerAllocated (0 when none)    ratio
AppsPending                    RM: appsPending                                        count
AppsRunning                    RM: appsRunning                                        count
HDFSUtilization                NameNode JMX FSNamesystem: CapacityUsed / CapacityTotal percent
============================== ====================================================== =========

Samples of a metric a reading could not get (the NameNode down, a cluster without HDFS)
are simply absent: a rule on it sees no data rather than a made-up zero.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Mapping


class Metric(str, enum.Enum):
    YARN_MEMORY_AVAILABLE_PERCENTAGE = "YARNMemoryAvailablePercentage"
    MEMORY_PENDING_MB = "MemoryPendingMB"
    MEMORY_AVAILABLE_MB = "MemoryAvailableMB"
    CONTAINER_PENDING = "ContainerPending"
    CONTAINER_ALLOCATED = "ContainerAllocated"
    CONTAINER_PENDING_RATIO = "ContainerPendingRatio"
    APPS_PENDING = "AppsPending"
    APPS_RUNNING = "AppsRunning"
    HDFS_UTILIZATION = "HDFSUtilization"


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the epoch (the control plane's clock)
    values: Mapping[Metric, float] = field(default_factory=dict)


def from_yarn_metrics(at: float, cluster_metrics: Mapping[str, object],
                      hdfs: Mapping[str, object] | None = None) -> Sample:
    """A sample from the RM's ``clusterMetrics`` object and, when given, the NameNode's
    ``FSNamesystem`` JMX bean (``CapacityUsed``, ``CapacityTotal``, bytes). Missing keys
    give no value for the metrics that need them."""
    def number(source: Mapping[str, object] | None, key: str) -> float | None:
        value = (source or {}).get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    values: dict[Metric, float] = {}
    direct = {Metric.MEMORY_PENDING_MB: "pendingMB", Metric.MEMORY_AVAILABLE_MB: "availableMB",
              Metric.CONTAINER_PENDING: "containersPending", Metric.CONTAINER_ALLOCATED: "containersAllocated",
              Metric.APPS_PENDING: "appsPending", Metric.APPS_RUNNING: "appsRunning"}
    for metric, key in direct.items():
        if (value := number(cluster_metrics, key)) is not None:
            values[metric] = value
    available, total = number(cluster_metrics, "availableMB"), number(cluster_metrics, "totalMB")
    if available is not None and total:
        values[Metric.YARN_MEMORY_AVAILABLE_PERCENTAGE] = 100.0 * available / total
    pending, allocated = values.get(Metric.CONTAINER_PENDING), values.get(Metric.CONTAINER_ALLOCATED)
    if pending is not None and allocated is not None:
        values[Metric.CONTAINER_PENDING_RATIO] = pending / allocated if allocated else 0.0
    used, capacity = number(hdfs, "CapacityUsed"), number(hdfs, "CapacityTotal")
    if used is not None and capacity:
        values[Metric.HDFS_UTILIZATION] = 100.0 * used / capacity
    return Sample(at, values)


class History:
    """The recent samples of one cluster, oldest first, at most ``keep_seconds`` old
    (relative to the newest). Thread-safe: the sampler appends, evaluators read."""

    def __init__(self, keep_seconds: float = 3600.0):
        self.keep_seconds = keep_seconds
        self._samples: deque[Sample] = deque()
        self._lock = threading.Lock()

    def add(self, sample: Sample) -> None:
        with self._lock:
            if self._samples and sample.at < self._samples[-1].at:
                raise ValueError("samples are added in time order")
            self._samples.append(sample)
            while self._samples and self._samples[0].at < sample.at - self.keep_seconds:
                self._samples.popleft()

    def between(self, start: float, end: float) -> list[Sample]:
        """The samples with ``start < at <= end``."""
        with self._lock:
            return [s for s in self._samples if start < s.at <= end]

    def latest(self) -> Sample | None:
        with self._lock:
            return self._samples[-1] if self._samples else None

    def values(self, metric: Metric, start: float, end: float) -> list[float]:
        return [s.values[metric] for s in self.between(start, end) if metric in s.values]


def average(values: Iterable[float]) -> float | None:
    items = list(values)
    return sum(items) / len(items) if items else None
