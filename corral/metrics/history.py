"""Every cluster's metric history in the store, bounded in size (``MetricChunk`` rows).

Full resolution (one point per sampling interval, 10 s) is kept for ``raw_seconds``
(24 h); older points are averaged into ``rollup_step`` buckets (5 min) kept for
``rollup_seconds`` (14 days); older ones are dropped. Points live in chunks
(``corral.metrics.chunks``), one row per cluster per ``raw_chunk_seconds`` (10 min) at
full resolution and per ``rollup_chunk_seconds`` (1 day) rolled up, so a cluster that runs
for a year holds at most ~144 + 14 rows, however many samples it had. ``sweep`` rolls up
and deletes whole rows as they age out, in one transaction per cluster (a crash between
the two is impossible, so nothing is rolled up twice or lost), then has SQLite hand the
freed pages back to the file system (``PRAGMA incremental_vacuum``; PostgreSQL reuses
them through autovacuum).

Appending rewrites the cluster's open chunk in place: a sample is in the store as soon as
it is taken, and a restarted control plane continues the chunk it finds.
"""

from __future__ import annotations

import math
import os
import re
import threading
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from corral.metrics.chunks import Chunk, merge, rollup, series_key, split_key
from corral.metrics.samples import Metric, NodeMetric, Sample
from corral.store.db import Store
from corral.store.monitoring import MetricChunk

MAX_POINTS = 11_000  # per series per query, as Prometheus' query_range limit
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``24h``, ``14d`` -> seconds; ValueError otherwise."""
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError(f"not a duration (e.g. 30s, 15m, 24h, 14d): {text!r}")
    return float(match.group(1)) * _UNIT[match.group(2)]


@dataclass(frozen=True)
class Retention:
    interval: float = 10.0  # seconds between samples, as autoscaling evaluates (EMR's and Dataproc's order)
    raw_seconds: float = 86_400.0
    rollup_step: int = 300
    rollup_seconds: float = 14 * 86_400.0
    raw_chunk_seconds: int = 600
    rollup_chunk_seconds: int = 86_400

    def __post_init__(self) -> None:
        if self.raw_chunk_seconds % self.rollup_step:
            # A bucket must lie in one raw chunk, so each is rolled up exactly once.
            raise ValueError("raw_chunk_seconds must be a multiple of rollup_step")
        if min(self.interval, self.raw_seconds, self.rollup_step, self.rollup_seconds) <= 0:
            raise ValueError("retention durations must be positive")
        if max(1, round(self.interval)) >= self.rollup_step:
            raise ValueError("the rollup step must be longer than the sampling interval")

    @classmethod
    def from_env(cls) -> "Retention":
        """``CORRAL_METRICS_INTERVAL`` (10s), ``CORRAL_METRICS_RAW_RETENTION`` (24h),
        ``CORRAL_METRICS_ROLLUP_STEP`` (5m), ``CORRAL_METRICS_ROLLUP_RETENTION`` (14d).
        Chunk spans follow: a tenth of each retention, at most 10 min and 1 day."""
        interval = parse_duration(os.environ.get("CORRAL_METRICS_INTERVAL", "10s"))
        raw = parse_duration(os.environ.get("CORRAL_METRICS_RAW_RETENTION", "24h"))
        step = int(parse_duration(os.environ.get("CORRAL_METRICS_ROLLUP_STEP", "5m")))
        kept = parse_duration(os.environ.get("CORRAL_METRICS_ROLLUP_RETENTION", "14d"))
        raw_chunk = max(step, int(min(600.0, raw / 10) // step) * step)
        rollup_chunk = max(step, int(min(86_400.0, kept / 10) // step) * step)
        return cls(interval, raw, step, kept, raw_chunk, rollup_chunk)


@dataclass
class _Open:
    row_id: int
    start: float
    chunk: Chunk


def sample_series(sample: Sample) -> dict[str, float]:
    """A sample's values by series key (``corral.metrics.chunks.series_key``)."""
    values = {series_key(m.value): v for m, v in sample.values.items()}
    for node_id, node_values in sample.nodes.items():
        values.update({series_key(m.value, node_id): v for m, v in node_values.items()})
    return values


def series_sample(at: float, values: dict[str, float]) -> Sample:
    cluster: dict[Metric, float] = {}
    nodes: dict[str, dict[NodeMetric, float]] = {}
    for key, value in values.items():
        name, node_id = split_key(key)
        try:
            if node_id:
                nodes.setdefault(node_id, {})[NodeMetric(name)] = value
            else:
                cluster[Metric(name)] = value
        except ValueError:
            continue  # a metric this version does not know (written by a newer one)
    return Sample(at, cluster, nodes)


class HistoryStore:
    """Appends, queries and ages out metric chunks. Thread-safe per cluster: the sampler
    appends from its pool (one job per cluster at a time), the API reads concurrently."""

    def __init__(self, store: Store, retention: Retention | None = None):
        self.store = store
        self.retention = retention or Retention()
        self._open: dict[str, _Open] = {}
        self._lock = threading.Lock()

    # -- writing -----------------------------------------------------------------------------
    def append(self, cluster_id: str, sample: Sample) -> None:
        values = sample_series(sample)
        span = self.retention.raw_chunk_seconds
        start = math.floor(sample.at / span) * span
        with self._lock:
            current = self._open.get(cluster_id)
        with self.store.session() as s:
            if current is None:
                current = self._load_open(s, cluster_id)
            if current is not None and current.start == start and (not current.chunk.times
                                                                   or sample.at >= current.chunk.times[-1]):
                current.chunk.append(sample.at, values)
                row = s.get(MetricChunk, current.row_id)
                if row is None:  # swept meanwhile (a clock jump): start a new chunk
                    current = None
                else:
                    row.end, row.points, row.data = sample.at, len(current.chunk.times), current.chunk.encode()
            else:
                current = None
            if current is None:
                chunk = Chunk()
                chunk.append(sample.at, values)
                existing = s.scalar(select(MetricChunk).where(
                    MetricChunk.cluster_id == cluster_id, MetricChunk.resolution == self._raw_resolution,
                    MetricChunk.start == start))
                if existing is not None:  # the clock went back into an older chunk: add to it
                    chunk = merge(Chunk.decode(existing.data), {sample.at: values})
                    existing.end, existing.points, existing.data = max(chunk.times), len(chunk.times), chunk.encode()
                    row = existing
                else:
                    row = MetricChunk(cluster_id=cluster_id, resolution=self._raw_resolution, start=start,
                                      end=sample.at, points=1, data=chunk.encode())
                    s.add(row)
                    s.flush()
                current = _Open(row.id, start, chunk)
        with self._lock:
            self._open[cluster_id] = current

    @property
    def _raw_resolution(self) -> int:
        return max(1, round(self.retention.interval))

    def _load_open(self, s: Session, cluster_id: str) -> _Open | None:
        row = s.scalar(select(MetricChunk).where(MetricChunk.cluster_id == cluster_id,
                                                 MetricChunk.resolution == self._raw_resolution)
                       .order_by(MetricChunk.start.desc()).limit(1))
        return _Open(row.id, row.start, Chunk.decode(row.data)) if row is not None else None

    def forget(self, cluster_id: str) -> None:
        """Drop the in-memory copy of the cluster's open chunk (its rows stay)."""
        with self._lock:
            self._open.pop(cluster_id, None)

    # -- ageing out ----------------------------------------------------------------------------
    def sweep(self, now: float) -> int:
        """Roll up raw chunks older than ``raw_seconds`` and delete them, delete rolled-up
        chunks older than ``rollup_seconds``; returns the rows deleted."""
        r = self.retention
        with self.store.session() as s:
            expired = s.execute(select(MetricChunk.id, MetricChunk.cluster_id).where(
                MetricChunk.resolution == self._raw_resolution, MetricChunk.end < now - r.raw_seconds)).all()
        deleted = 0
        by_cluster: dict[str, list[int]] = {}
        for row_id, cluster_id in expired:
            by_cluster.setdefault(cluster_id, []).append(row_id)
        for cluster_id, ids in by_cluster.items():
            with self.store.session() as s:
                rows = list(s.scalars(select(MetricChunk).where(MetricChunk.id.in_(ids))))
                self._roll_into(s, cluster_id, [Chunk.decode(row.data) for row in rows])
                deleted += s.execute(delete(MetricChunk).where(MetricChunk.id.in_(ids))).rowcount or 0
            with self._lock:
                if (o := self._open.get(cluster_id)) is not None and o.row_id in ids:
                    del self._open[cluster_id]
        with self.store.session() as s:
            deleted += s.execute(delete(MetricChunk).where(
                MetricChunk.resolution == r.rollup_step, MetricChunk.end < now - r.rollup_seconds)).rowcount or 0
        if deleted:
            self.store.reclaim_space()
        return deleted

    def _roll_into(self, s: Session, cluster_id: str, chunks: list[Chunk]) -> None:
        r = self.retention
        by_target: dict[float, dict[float, dict[str, float]]] = {}
        for bucket, values in rollup(chunks, r.rollup_step).items():
            target = math.floor(bucket / r.rollup_chunk_seconds) * r.rollup_chunk_seconds
            by_target.setdefault(float(target), {})[bucket] = values
        for target, buckets in by_target.items():
            row = s.scalar(select(MetricChunk).where(MetricChunk.cluster_id == cluster_id,
                                                     MetricChunk.resolution == r.rollup_step,
                                                     MetricChunk.start == target))
            chunk = merge(Chunk.decode(row.data) if row is not None else Chunk(), buckets)
            if row is None:
                s.add(MetricChunk(cluster_id=cluster_id, resolution=r.rollup_step, start=target,
                                  end=max(chunk.times), points=len(chunk.times), data=chunk.encode()))
            else:
                row.end, row.points, row.data = max(chunk.times), len(chunk.times), chunk.encode()

    # -- reading -------------------------------------------------------------------------------
    def query(self, cluster_id: str, start: float, end: float, keys: Iterable[str] | None = None,
              step: float | None = None) -> dict[str, list[tuple[float, float]]]:
        """series key -> [(time, value)] with ``start <= time <= end``, oldest first: full
        resolution where it is still kept, rolled-up points (at their bucket's start) where
        not. With ``step`` (seconds), points are averaged into buckets of that width
        (aligned to multiples of it). ``keys``: only these series (None: all). ValueError
        when a series would have more than MAX_POINTS points."""
        wanted = set(keys) if keys is not None else None
        if step is not None and (end - start) / step > MAX_POINTS:
            raise ValueError(f"step: {(end - start) / step:.0f} points per series asked for, at most {MAX_POINTS}")
        with self.store.session() as s:
            rows = list(s.scalars(select(MetricChunk).where(
                MetricChunk.cluster_id == cluster_id, MetricChunk.end >= start,
                MetricChunk.start <= end).order_by(MetricChunk.resolution.desc(), MetricChunk.start)))
        series: dict[str, dict[float, float]] = {}
        for row in rows:  # rolled up first, so full resolution points win where both exist
            chunk = Chunk.decode(row.data)
            for key in chunk.columns:
                if wanted is not None and key not in wanted:
                    continue
                into = series.setdefault(key, {})
                into.update((t, v) for t, v in chunk.points(key) if start <= t <= end)
        result = {key: sorted(points.items()) for key, points in series.items() if points}
        if step is not None:
            result = {key: _bucketed(points, step) for key, points in result.items()}
        elif any(len(points) > MAX_POINTS for points in result.values()):
            raise ValueError(f"more than {MAX_POINTS} points per series: give a step or a shorter range")
        return result

    def recent(self, cluster_id: str, since: float, until: float) -> list[Sample]:
        """The full-resolution samples after ``since``: what the in-memory history of a
        restarted control plane starts from."""
        with self.store.session() as s:
            rows = list(s.scalars(select(MetricChunk).where(
                MetricChunk.cluster_id == cluster_id, MetricChunk.resolution == self._raw_resolution,
                MetricChunk.end > since).order_by(MetricChunk.start)))
        samples: list[Sample] = []
        for row in rows:
            chunk = Chunk.decode(row.data)
            for i, at in enumerate(chunk.times):
                if since < at <= until:
                    samples.append(series_sample(at, {k: c[i] for k, c in chunk.columns.items() if not math.isnan(c[i])}))
        return samples

    def row_count(self, cluster_id: str | None = None) -> int:
        with self.store.session() as s:
            query = select(func.count(MetricChunk.id))
            if cluster_id is not None:
                query = query.where(MetricChunk.cluster_id == cluster_id)
            return int(s.scalar(query) or 0)


def _bucketed(points: list[tuple[float, float]], step: float) -> list[tuple[float, float]]:
    sums: dict[float, list[float]] = {}
    for at, value in points:
        acc = sums.setdefault(math.floor(at / step) * step, [0.0, 0.0])
        acc[0] += value
        acc[1] += 1
    return [(bucket, total / n) for bucket, (total, n) in sorted(sums.items())]
