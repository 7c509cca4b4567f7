"""Samples from the ResourceManager's and NameNode's own figures, and the short history."""

from __future__ import annotations

import pytest

from corral.agent.protocol import DiskUsage, NodeMetrics
from corral.metrics.samples import (History, Metric, NodeMetric, Sample, from_namenode, from_yarn_metrics, metric_named,
                                    node_values)

RM = {"appsPending": 1, "appsRunning": 2, "availableMB": 1024, "totalMB": 4096, "pendingMB": 3072,
      "containersPending": 3, "containersAllocated": 4}


def test_a_sample_has_emrs_metrics_from_the_rm_and_namenode_figures() -> None:
    sample = from_yarn_metrics(5.0, RM, {"CapacityUsed": 25, "CapacityTotal": 200})
    assert sample.values == {
        Metric.YARN_MEMORY_AVAILABLE_PERCENTAGE: 25.0, Metric.MEMORY_PENDING_MB: 3072.0,
        Metric.MEMORY_AVAILABLE_MB: 1024.0, Metric.CONTAINER_PENDING: 3.0, Metric.CONTAINER_ALLOCATED: 4.0,
        Metric.CONTAINER_PENDING_RATIO: 0.75, Metric.APPS_PENDING: 1.0, Metric.APPS_RUNNING: 2.0,
        Metric.HDFS_UTILIZATION: 12.5, Metric.MEMORY_TOTAL_MB: 4096.0}


def test_hdfs_metrics_from_the_namenode_beans_with_emrs_live_datanode_percentage() -> None:
    bean = {"CapacityUsed": 1 << 30, "CapacityTotal": 4 << 30, "CapacityRemaining": 3 << 30, "MissingBlocks": 2,
            "CorruptBlocks": 1, "UnderReplicatedBlocks": 7, "PendingDeletionBlocks": 0, "TotalLoad": 5,
            "NumLiveDataNodes": 2, "NumDeadDataNodes": 1}
    assert from_namenode(bean, core_nodes=3) == {
        Metric.HDFS_UTILIZATION: 25.0, Metric.CAPACITY_REMAINING_GB: 3.0, Metric.MISSING_BLOCKS: 2.0,
        Metric.CORRUPT_BLOCKS: 1.0, Metric.UNDER_REPLICATED_BLOCKS: 7.0, Metric.PENDING_DELETION_BLOCKS: 0.0,
        Metric.TOTAL_LOAD: 5.0, Metric.NUM_LIVE_DATA_NODES: 2.0, Metric.NUM_DEAD_DATA_NODES: 1.0,
        Metric.LIVE_DATA_NODES: pytest.approx(200 / 3)}
    assert Metric.LIVE_DATA_NODES not in from_namenode(bean, core_nodes=0)


def test_node_values_from_an_agents_measurement() -> None:
    gib = 1 << 30
    measured = NodeMetrics(at=1.0, scope="host", cpu_cores_used=1.5, vcpus=4, memory_used_bytes=2 * gib,
                           memory_total_bytes=8 * gib, load1=0.7, net_rx_bytes_per_second=100.0,
                           disks=[DiskUsage(path="/a", used_bytes=gib, free_bytes=3 * gib, total_bytes=4 * gib),
                                  DiskUsage(path="/b", used_bytes=3 * gib, free_bytes=gib, total_bytes=4 * gib)])
    assert node_values(measured) == {
        NodeMetric.CPU_CORES_USED: 1.5, NodeMetric.CPU_UTILIZATION: 37.5, NodeMetric.MEMORY_USED_MB: 2048.0,
        NodeMetric.MEMORY_UTILIZATION: 25.0, NodeMetric.DISK_USED_GB: 4.0, NodeMetric.DISK_FREE_GB: 4.0,
        NodeMetric.DISK_UTILIZATION: 50.0, NodeMetric.LOAD_AVERAGE: 0.7, NodeMetric.NETWORK_IN: 100.0}
    first = NodeMetrics(at=1.0, scope="node", vcpus=2, memory_used_bytes=0, memory_total_bytes=0)
    assert node_values(first) == {NodeMetric.MEMORY_USED_MB: 0.0}  # no rate yet, no disks: absent
    assert metric_named("CPUUtilization") is NodeMetric.CPU_UTILIZATION
    assert metric_named("MissingBlocks") is Metric.MISSING_BLOCKS
    with pytest.raises(ValueError, match="unknown metric 'Bogus'.*AppsRunning"):
        metric_named("Bogus")


def test_what_a_reading_lacks_is_absent_not_zero() -> None:
    sample = from_yarn_metrics(5.0, {"totalMB": 0, "availableMB": 0, "containersPending": 2,
                                     "containersAllocated": 0, "appsRunning": True})
    assert Metric.YARN_MEMORY_AVAILABLE_PERCENTAGE not in sample.values  # no NodeManager yet: no percentage
    assert Metric.HDFS_UTILIZATION not in sample.values and Metric.APPS_RUNNING not in sample.values
    assert sample.values[Metric.CONTAINER_PENDING_RATIO] == 0.0


def test_history_keeps_recent_samples_in_order_and_answers_windows() -> None:
    history = History(keep_seconds=30)
    for at in (0, 10, 20, 30, 40):
        history.add(Sample(at, {Metric.APPS_RUNNING: at}))
    assert [s.at for s in history.between(-1, 100)] == [10, 20, 30, 40]  # 0 is more than 30 s older than 40
    assert history.values(Metric.APPS_RUNNING, 10, 30) == [20, 30]  # (start, end]
    assert history.values(Metric.APPS_PENDING, 0, 100) == []
    assert history.latest() == Sample(40, {Metric.APPS_RUNNING: 40})
    with pytest.raises(ValueError, match="time order"):
        history.add(Sample(35, {}))
