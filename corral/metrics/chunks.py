"""A chunk of metric history: many series over one time span, packed (``MetricChunk.data``).

A chunk is a column store: the sample times, and for each series (``series_key``) one
float64 per time, NaN where the series had no value then. Encoded as a JSON header (the
times and the series keys) and the columns as raw little-endian doubles, zlib-compressed:
appending a sample and rewriting the open chunk costs microseconds per series, and a
chunk of 60 samples x 40 series is a few kilobytes.

Rolling up (``rollup``) averages each series over fixed buckets (``step`` seconds, aligned
to multiples of it), ignoring missing values: a bucket where a series had no value has
none.
"""

from __future__ import annotations

import json
import math
import sys
import zlib
from array import array
from dataclasses import dataclass, field
from typing import Iterable

NAN = float("nan")


def series_key(metric: str, node_id: str | None = None) -> str:
    """``AppsRunning`` for a cluster metric, ``CPUUtilization@n-abc`` for a node's."""
    return f"{metric}@{node_id}" if node_id else metric


def split_key(key: str) -> tuple[str, str | None]:
    metric, _, node = key.partition("@")
    return metric, node or None


@dataclass
class Chunk:
    times: list[float] = field(default_factory=list)
    columns: dict[str, array] = field(default_factory=dict)  # series key -> one double per time

    def append(self, at: float, values: dict[str, float]) -> None:
        """Add a point at ``at`` (not before the last one) with these series' values."""
        if self.times and at < self.times[-1]:
            raise ValueError(f"chunk points are appended in time order ({at} < {self.times[-1]})")
        for key, column in self.columns.items():
            column.append(values.get(key, NAN))
        for key, value in values.items():
            if key not in self.columns:
                column = array("d", [NAN] * len(self.times))
                column.append(value)
                self.columns[key] = column
        self.times.append(at)

    def points(self, key: str) -> list[tuple[float, float]]:
        column = self.columns.get(key)
        if column is None:
            return []
        return [(t, v) for t, v in zip(self.times, column) if not math.isnan(v)]

    def encode(self) -> bytes:
        keys = list(self.columns)
        header = json.dumps({"t": self.times, "k": keys}, separators=(",", ":")).encode()
        body = bytearray()
        for key in keys:
            column = self.columns[key]
            if sys.byteorder != "little":
                column = array("d", column)
                column.byteswap()
            body += column.tobytes()
        return zlib.compress(len(header).to_bytes(4, "little") + header + bytes(body), 1)

    @classmethod
    def decode(cls, data: bytes) -> "Chunk":
        raw = zlib.decompress(data)
        size = int.from_bytes(raw[:4], "little")
        header = json.loads(raw[4:4 + size])
        times, keys = [float(t) for t in header["t"]], header["k"]
        width = 8 * len(times)
        body = raw[4 + size:]
        columns: dict[str, array] = {}
        for i, key in enumerate(keys):
            column = array("d")
            column.frombytes(body[i * width:(i + 1) * width])
            if sys.byteorder != "little":
                column.byteswap()
            columns[key] = column
        return cls(times, columns)


def rollup(chunks: Iterable[Chunk], step: int) -> dict[float, dict[str, float]]:
    """bucket start (a multiple of ``step``) -> series key -> the mean of its values there."""
    sums: dict[float, dict[str, list[float]]] = {}
    for chunk in chunks:
        for i, at in enumerate(chunk.times):
            bucket = math.floor(at / step) * step
            into = sums.setdefault(float(bucket), {})
            for key, column in chunk.columns.items():
                value = column[i]
                if not math.isnan(value):
                    acc = into.setdefault(key, [0.0, 0.0])
                    acc[0] += value
                    acc[1] += 1
    return {bucket: {k: total / n for k, (total, n) in series.items()} for bucket, series in sorted(sums.items())}


def merge(into: Chunk, buckets: dict[float, dict[str, float]]) -> Chunk:
    """``into`` with ``buckets``' points added, in time order; a bucket already there is
    replaced (rolling the same raw chunk up twice gives the same result)."""
    points = {t: {k: into.columns[k][i] for k in into.columns if not math.isnan(into.columns[k][i])}
              for i, t in enumerate(into.times)}
    points.update(buckets)
    merged = Chunk()
    for at in sorted(points):
        merged.append(at, points[at])
    return merged
