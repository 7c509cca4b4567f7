"""Metric samples of one cluster and their recent history, behind a small interface.

A ``Sample`` is what one reading of the daemons gave at one time, as metric name -> value.
The names are EMR's CloudWatch metric names for the same quantities, so an EMR user's
autoscaling rules and alarms read the same (EMR Management Guide, "Monitor metrics with
CloudWatch"); where EMR has none, Hadoop's own JMX name (``NumLiveDataNodes``) or EC2's
(per node: ``CPUUtilization``):

============================== ========================================================== =======
metric                         from                                                       unit
============================== ========================================================== =======
YARNMemoryAvailablePercentage  RM ``/ws/v1/cluster/metrics``: availableMB / totalMB       percent
MemoryTotalMB                  RM: totalMB                                                MiB
MemoryAllocatedMB              RM: allocatedMB                                            MiB
MemoryReservedMB               RM: reservedMB                                             MiB
MemoryAvailableMB              RM: availableMB                                            MiB
MemoryPendingMB                RM: pendingMB (memory asked for by containers waiting)     MiB
ContainerAllocated             RM: containersAllocated                                    count
ContainerReserved              RM: containersReserved                                     count
ContainerPending               RM: containersPending                                      count
ContainerPendingRatio          ContainerPending / ContainerAllocated (0 when none)        ratio
AppsSubmitted/Completed/       RM: appsSubmitted, appsCompleted, appsFailed, appsKilled   count
  Failed/Killed                (since the ResourceManager started)
AppsPending                    RM: appsPending                                            count
AppsRunning                    RM: appsRunning                                            count
MRTotalNodes, MRActiveNodes,   RM: totalNodes, activeNodes, lostNodes, unhealthyNodes,    count
  MRLostNodes, MRUnhealthyNodes, decommissionedNodes, rebootedNodes (NodeManagers)
  MRDecommissionedNodes, MRRebootedNodes
HDFSUtilization                NameNode JMX FSNamesystem: CapacityUsed / CapacityTotal    percent
CapacityRemainingGB            FSNamesystem: CapacityRemaining                            GiB
MissingBlocks, CorruptBlocks,  FSNamesystem: MissingBlocks, CorruptBlocks,                count
  UnderReplicatedBlocks,         UnderReplicatedBlocks, PendingDeletionBlocks
  PendingDeletionBlocks
TotalLoad                      FSNamesystem: TotalLoad (concurrent transfers)             count
NumLiveDataNodes               FSNamesystemState: NumLiveDataNodes                        count
NumDeadDataNodes               FSNamesystemState: NumDeadDataNodes                        count
LiveDataNodes                  NumLiveDataNodes / the CORE nodes in service (EMR's)       percent
CoreNodesRunning/Pending,      the store: the group's nodes RUNNING / on their way        count
  TaskNodesRunning/Pending
============================== ========================================================== =======

Per node (``NodeMetric``, from the agents' reports, ``corral.agent.protocol.NodeMetrics``):
CPUUtilization (percent of the node's vCPUs), CPUCoresUsed, MemoryUsedMB,
MemoryUtilization (percent), DiskUsedGB / DiskFreeGB / DiskUtilization (all its data
directories together), LoadAverage, NetworkInBytesPerSecond, NetworkOutBytesPerSecond.

Samples of a metric a reading could not get (the NameNode down, a cluster without HDFS)
are simply absent: a rule on it sees no data rather than a made-up zero.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Mapping

if TYPE_CHECKING:
    from corral.agent.protocol import NodeMetrics

GIB = float(1 << 30)
MIB = float(1 << 20)


class Metric(str, enum.Enum):
    YARN_MEMORY_AVAILABLE_PERCENTAGE = "YARNMemoryAvailablePercentage"
    MEMORY_TOTAL_MB = "MemoryTotalMB"
    MEMORY_ALLOCATED_MB = "MemoryAllocatedMB"
    MEMORY_RESERVED_MB = "MemoryReservedMB"
    MEMORY_PENDING_MB = "MemoryPendingMB"
    MEMORY_AVAILABLE_MB = "MemoryAvailableMB"
    CONTAINER_PENDING = "ContainerPending"
    CONTAINER_ALLOCATED = "ContainerAllocated"
    CONTAINER_RESERVED = "ContainerReserved"
    CONTAINER_PENDING_RATIO = "ContainerPendingRatio"
    APPS_SUBMITTED = "AppsSubmitted"
    APPS_PENDING = "AppsPending"
    APPS_RUNNING = "AppsRunning"
    APPS_COMPLETED = "AppsCompleted"
    APPS_FAILED = "AppsFailed"
    APPS_KILLED = "AppsKilled"
    MR_TOTAL_NODES = "MRTotalNodes"
    MR_ACTIVE_NODES = "MRActiveNodes"
    MR_LOST_NODES = "MRLostNodes"
    MR_UNHEALTHY_NODES = "MRUnhealthyNodes"
    MR_DECOMMISSIONED_NODES = "MRDecommissionedNodes"
    MR_REBOOTED_NODES = "MRRebootedNodes"
    HDFS_UTILIZATION = "HDFSUtilization"
    CAPACITY_REMAINING_GB = "CapacityRemainingGB"
    MISSING_BLOCKS = "MissingBlocks"
    CORRUPT_BLOCKS = "CorruptBlocks"
    UNDER_REPLICATED_BLOCKS = "UnderReplicatedBlocks"
    PENDING_DELETION_BLOCKS = "PendingDeletionBlocks"
    TOTAL_LOAD = "TotalLoad"
    NUM_LIVE_DATA_NODES = "NumLiveDataNodes"
    NUM_DEAD_DATA_NODES = "NumDeadDataNodes"
    LIVE_DATA_NODES = "LiveDataNodes"
    CORE_NODES_RUNNING = "CoreNodesRunning"
    CORE_NODES_PENDING = "CoreNodesPending"
    TASK_NODES_RUNNING = "TaskNodesRunning"
    TASK_NODES_PENDING = "TaskNodesPending"


class NodeMetric(str, enum.Enum):
    CPU_UTILIZATION = "CPUUtilization"
    CPU_CORES_USED = "CPUCoresUsed"
    MEMORY_USED_MB = "MemoryUsedMB"
    MEMORY_UTILIZATION = "MemoryUtilization"
    DISK_USED_GB = "DiskUsedGB"
    DISK_FREE_GB = "DiskFreeGB"
    DISK_UTILIZATION = "DiskUtilization"
    LOAD_AVERAGE = "LoadAverage"
    NETWORK_IN = "NetworkInBytesPerSecond"
    NETWORK_OUT = "NetworkOutBytesPerSecond"


def unit(metric: Metric | NodeMetric) -> str:
    """percent, MiB, GiB, ratio, bytes/s or count (the tables above)."""
    name = metric.value
    if name.endswith(("Percentage", "Utilization")):
        return "percent"
    if name.endswith("MB"):
        return "MiB"
    if name.endswith("GB"):
        return "GiB"
    if name.endswith("BytesPerSecond"):
        return "bytes/s"
    if metric in (Metric.CONTAINER_PENDING_RATIO,):
        return "ratio"
    if metric is Metric.LIVE_DATA_NODES:
        return "percent"
    if metric in (NodeMetric.CPU_CORES_USED, NodeMetric.LOAD_AVERAGE):
        return "cores"
    return "count"


def metric_named(name: str) -> Metric | NodeMetric:
    """The cluster or node metric of that EMR/CloudWatch name; ValueError naming the known ones."""
    for kind in (Metric, NodeMetric):
        try:
            return kind(name)
        except ValueError:
            continue
    known = ", ".join([m.value for m in Metric] + [m.value for m in NodeMetric])
    raise ValueError(f"unknown metric {name!r} (known: {known})")


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the epoch (the control plane's clock)
    values: Mapping[Metric, float] = field(default_factory=dict)
    nodes: Mapping[str, Mapping[NodeMetric, float]] = field(default_factory=dict)  # node id -> its values


def _number(source: Mapping[str, object] | None, key: str) -> float | None:
    value = (source or {}).get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


_RM_DIRECT = {
    Metric.MEMORY_TOTAL_MB: "totalMB", Metric.MEMORY_ALLOCATED_MB: "allocatedMB",
    Metric.MEMORY_RESERVED_MB: "reservedMB", Metric.MEMORY_PENDING_MB: "pendingMB",
    Metric.MEMORY_AVAILABLE_MB: "availableMB", Metric.CONTAINER_PENDING: "containersPending",
    Metric.CONTAINER_ALLOCATED: "containersAllocated", Metric.CONTAINER_RESERVED: "containersReserved",
    Metric.APPS_SUBMITTED: "appsSubmitted", Metric.APPS_PENDING: "appsPending", Metric.APPS_RUNNING: "appsRunning",
    Metric.APPS_COMPLETED: "appsCompleted", Metric.APPS_FAILED: "appsFailed", Metric.APPS_KILLED: "appsKilled",
    Metric.MR_TOTAL_NODES: "totalNodes", Metric.MR_ACTIVE_NODES: "activeNodes", Metric.MR_LOST_NODES: "lostNodes",
    Metric.MR_UNHEALTHY_NODES: "unhealthyNodes", Metric.MR_DECOMMISSIONED_NODES: "decommissionedNodes",
    Metric.MR_REBOOTED_NODES: "rebootedNodes",
}
_NN_DIRECT = {
    Metric.MISSING_BLOCKS: "MissingBlocks", Metric.CORRUPT_BLOCKS: "CorruptBlocks",
    Metric.UNDER_REPLICATED_BLOCKS: "UnderReplicatedBlocks", Metric.PENDING_DELETION_BLOCKS: "PendingDeletionBlocks",
    Metric.TOTAL_LOAD: "TotalLoad", Metric.NUM_LIVE_DATA_NODES: "NumLiveDataNodes",
    Metric.NUM_DEAD_DATA_NODES: "NumDeadDataNodes",
}


def from_yarn_metrics(at: float, cluster_metrics: Mapping[str, object],
                      hdfs: Mapping[str, object] | None = None) -> Sample:
    """A sample from the RM's ``clusterMetrics`` object and, when given, the NameNode's
    ``FSNamesystem`` JMX bean (``from_namenode``). Missing keys give no value for the
    metrics that need them."""
    values: dict[Metric, float] = {}
    for metric, key in _RM_DIRECT.items():
        if (value := _number(cluster_metrics, key)) is not None:
            values[metric] = value
    available, total = _number(cluster_metrics, "availableMB"), _number(cluster_metrics, "totalMB")
    if available is not None and total:
        values[Metric.YARN_MEMORY_AVAILABLE_PERCENTAGE] = 100.0 * available / total
    pending, allocated = values.get(Metric.CONTAINER_PENDING), values.get(Metric.CONTAINER_ALLOCATED)
    if pending is not None and allocated is not None:
        values[Metric.CONTAINER_PENDING_RATIO] = pending / allocated if allocated else 0.0
    if hdfs is not None:
        values.update(from_namenode(hdfs))
    return Sample(at, values)


def from_namenode(fs: Mapping[str, object], core_nodes: int | None = None) -> dict[Metric, float]:
    """HDFS metrics from the NameNode's JMX ``FSNamesystem`` bean, merged by the caller
    with ``FSNamesystemState`` (``NumLiveDataNodes``, ``NumDeadDataNodes``); byte counts.
    ``core_nodes``: the CORE nodes in service, for EMR's LiveDataNodes percentage."""
    values: dict[Metric, float] = {}
    used, capacity = _number(fs, "CapacityUsed"), _number(fs, "CapacityTotal")
    if used is not None and capacity:
        values[Metric.HDFS_UTILIZATION] = 100.0 * used / capacity
    if (remaining := _number(fs, "CapacityRemaining")) is not None:
        values[Metric.CAPACITY_REMAINING_GB] = remaining / GIB
    for metric, key in _NN_DIRECT.items():
        if (value := _number(fs, key)) is not None:
            values[metric] = value
    live = values.get(Metric.NUM_LIVE_DATA_NODES)
    if live is not None and core_nodes:
        values[Metric.LIVE_DATA_NODES] = min(100.0, 100.0 * live / core_nodes)
    return values


def node_values(measured: "NodeMetrics") -> dict[NodeMetric, float]:
    """One node's metrics from its agent's measurement (``NodeMetrics``); what it did not
    measure is absent."""
    values: dict[NodeMetric, float] = {}
    if measured.cpu_cores_used is not None:
        values[NodeMetric.CPU_CORES_USED] = measured.cpu_cores_used
        if measured.vcpus:
            values[NodeMetric.CPU_UTILIZATION] = 100.0 * measured.cpu_cores_used / measured.vcpus
    values[NodeMetric.MEMORY_USED_MB] = measured.memory_used_bytes / MIB
    if measured.memory_total_bytes:
        values[NodeMetric.MEMORY_UTILIZATION] = 100.0 * measured.memory_used_bytes / measured.memory_total_bytes
    if measured.disks:
        used = sum(d.used_bytes for d in measured.disks)
        free = sum(d.free_bytes for d in measured.disks)
        total = sum(d.total_bytes for d in measured.disks)
        values[NodeMetric.DISK_USED_GB] = used / GIB
        values[NodeMetric.DISK_FREE_GB] = free / GIB
        if total:
            values[NodeMetric.DISK_UTILIZATION] = 100.0 * used / total
    optional = {NodeMetric.LOAD_AVERAGE: measured.load1, NodeMetric.NETWORK_IN: measured.net_rx_bytes_per_second,
                NodeMetric.NETWORK_OUT: measured.net_tx_bytes_per_second}
    values.update({k: float(v) for k, v in optional.items() if v is not None})
    return values


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
