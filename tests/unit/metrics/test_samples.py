"""Samples from the ResourceManager's and NameNode's own figures, and the short history."""

from __future__ import annotations

import pytest

from corral.metrics.samples import History, Metric, Sample, from_yarn_metrics

RM = {"appsPending": 1, "appsRunning": 2, "availableMB": 1024, "totalMB": 4096, "pendingMB": 3072,
      "containersPending": 3, "containersAllocated": 4}


def test_a_sample_has_emrs_metrics_from_the_rm_and_namenode_figures() -> None:
    sample = from_yarn_metrics(5.0, RM, {"CapacityUsed": 25, "CapacityTotal": 200})
    assert sample.values == {
        Metric.YARN_MEMORY_AVAILABLE_PERCENTAGE: 25.0, Metric.MEMORY_PENDING_MB: 3072.0,
        Metric.MEMORY_AVAILABLE_MB: 1024.0, Metric.CONTAINER_PENDING: 3.0, Metric.CONTAINER_ALLOCATED: 4.0,
        Metric.CONTAINER_PENDING_RATIO: 0.75, Metric.APPS_PENDING: 1.0, Metric.APPS_RUNNING: 2.0,
        Metric.HDFS_UTILIZATION: 12.5}


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
