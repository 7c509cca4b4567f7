"""The stored metric history on a real SQLite file: chunks continue across restarts,
queries give exact points and step averages, and the retention bound holds however long
a cluster runs: rows and file size stay bounded, and rolled-up points are the means of
the points they replace."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from corral.metrics.chunks import Chunk, merge, rollup
from corral.metrics.history import HistoryStore, Retention, parse_duration
from corral.metrics.samples import Metric, NodeMetric, Sample
from corral.store.db import Store

T0 = 1_800_000_000.0  # a multiple of every chunk span used here
SHORT = Retention(interval=10, raw_seconds=600, rollup_step=60, rollup_seconds=3600,
                  raw_chunk_seconds=120, rollup_chunk_seconds=600)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'corral.db'}")
    s.migrate()
    return s


def _sample(at: float, running: float, node_cpu: float | None = None) -> Sample:
    nodes = {"n-a": {NodeMetric.CPU_UTILIZATION: node_cpu}} if node_cpu is not None else {}
    return Sample(at, {Metric.APPS_RUNNING: running}, nodes)


def test_a_chunk_round_trips_with_series_that_start_late() -> None:
    chunk = Chunk()
    chunk.append(1.0, {"a": 1.5})
    chunk.append(2.0, {"a": 2.5, "b@n-x": -3.0})
    chunk.append(3.0, {"b@n-x": 4.0})
    back = Chunk.decode(chunk.encode())
    assert back.times == [1.0, 2.0, 3.0]
    assert back.points("a") == [(1.0, 1.5), (2.0, 2.5)]
    assert back.points("b@n-x") == [(2.0, -3.0), (3.0, 4.0)]
    with pytest.raises(ValueError, match="time order"):
        back.append(2.5, {"a": 1.0})


def test_rollup_averages_each_bucket_and_merging_twice_changes_nothing() -> None:
    chunk = Chunk()
    for i, value in enumerate([1.0, 3.0, 5.0, 7.0]):  # at 0, 30, 60, 90: buckets [0, 60) and [60, 120)
        chunk.append(i * 30.0, {"a": value, **({"b": value * 10} if i % 2 == 0 else {})})
    buckets = rollup([chunk], 60)
    assert buckets == {0.0: {"a": 2.0, "b": 10.0}, 60.0: {"a": 6.0, "b": 50.0}}
    once = merge(Chunk(), buckets)
    assert merge(once, buckets).points("a") == once.points("a") == [(0.0, 2.0), (60.0, 6.0)]


def test_appends_continue_the_open_chunk_across_a_restart(store: Store) -> None:
    first = HistoryStore(store, SHORT)
    for i in range(5):
        first.append("c-1", _sample(T0 + 10 * i, i))
    assert first.row_count("c-1") == 1
    again = HistoryStore(store, SHORT)  # a restarted control plane
    for i in range(5, 15):  # T0+50 .. T0+140: the chunk spans 120 s, so a second one starts
        again.append("c-1", _sample(T0 + 10 * i, i, node_cpu=50.0 + i))
    assert again.row_count("c-1") == 2
    points = again.query("c-1", T0, T0 + 1000)
    assert points["AppsRunning"] == [(T0 + 10 * i, float(i)) for i in range(15)]
    assert points["CPUUtilization@n-a"] == [(T0 + 10 * i, 50.0 + i) for i in range(5, 15)]
    assert again.query("c-1", T0, T0 + 1000, keys=["AppsRunning"]).keys() == {"AppsRunning"}
    assert again.query("c-2", T0, T0 + 1000) == {}
    recent = again.recent("c-1", T0 + 95, T0 + 1000)
    assert [s.at for s in recent] == [T0 + 100 + 10 * i for i in range(5)]
    assert recent[0].values == {Metric.APPS_RUNNING: 10.0} and recent[0].nodes == {"n-a": {NodeMetric.CPU_UTILIZATION: 60.0}}


def test_a_query_with_a_step_averages_and_refuses_too_many_points(store: Store) -> None:
    history = HistoryStore(store, SHORT)
    for i in range(12):
        history.append("c-1", _sample(T0 + 10 * i, i))
    by_minute = history.query("c-1", T0, T0 + 119, step=60)["AppsRunning"]
    assert by_minute == [(T0, 2.5), (T0 + 60, 8.5)]  # means of 0..5 and 6..11
    with pytest.raises(ValueError, match="at most 11000"):
        history.query("c-1", T0, T0 + 1_000_000, step=1)


def test_retention_keeps_rows_and_file_size_bounded_and_rollups_are_exact(store: Store, tmp_path: Path) -> None:
    history = HistoryStore(store, SHORT)
    db = tmp_path / "corral.db"

    def size() -> int:
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return db.stat().st_size + (os.path.getsize(f"{db}-wal") if os.path.exists(f"{db}-wal") else 0)

    def value(at: float) -> float:
        return (at - T0) % 97  # varies within every bucket, so a wrong mean shows

    rows, sizes = [], {}
    hours = 3
    for i in range(hours * 360):  # 3 h of one sample per 10 s, with 40 node series each
        at = T0 + 10 * i
        history.append("c-1", Sample(at, {Metric.APPS_RUNNING: value(at)},
                                     {f"n-{k}": {NodeMetric.CPU_UTILIZATION: value(at) + k} for k in range(40)}))
        if i % 6 == 5:
            history.sweep(at)
            rows.append(history.row_count("c-1"))
        if i in (360 * 2 - 1, 360 * 3 - 1):
            sizes[i] = size()
    # Raw: 600 s of 120 s chunks (+1 open, +1 partly expired); rolled up: 3600 s of 600 s chunks (+2).
    assert max(rows[len(rows) // 3:]) <= (600 // 120 + 2) + (3600 // 600 + 2)
    assert sizes[360 * 3 - 1] <= sizes[360 * 2 - 1] * 1.1  # the third hour did not grow the file
    end = T0 + 10 * (hours * 360 - 1)
    points = history.query("c-1", end - 3600, end, keys=["AppsRunning"])["AppsRunning"]
    old = [(t, v) for t, v in points if t < end - 600 - 120]
    assert old and all(t % 60 == 0 for t, _ in old)  # rolled up: one point per minute
    for t, v in old:
        assert math.isclose(v, sum(value(t + 10 * j) for j in range(6)) / 6)
    recent = [(t, v) for t, v in points if t > end - 600]
    assert recent == [(t, value(t)) for t in [end - 10 * j for j in range(59, -1, -1)]]
    assert history.query("c-1", T0, end - 3600 - 700) == {}  # past the rolled-up retention: dropped


def test_durations_and_retention_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [parse_duration(t) for t in ("90", "90s", "15m", "24h", "14d", "0.5m")] == [90, 90, 900, 86400, 1209600, 30]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")
    assert Retention.from_env() == Retention()
    monkeypatch.setenv("CORRAL_METRICS_RAW_RETENTION", "10m")
    monkeypatch.setenv("CORRAL_METRICS_ROLLUP_STEP", "1m")
    monkeypatch.setenv("CORRAL_METRICS_ROLLUP_RETENTION", "1h")
    assert Retention.from_env() == Retention(10, 600, 60, 3600, 60, 360)
    with pytest.raises(ValueError, match="multiple"):
        Retention(raw_chunk_seconds=90, rollup_step=60)
    with pytest.raises(ValueError, match="longer than the sampling interval"):
        Retention(interval=300, rollup_step=300)
