"""Reading a cluster's metric history (``corral.metrics.history``) for the API and CLI."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from corral.control import clusters
from corral.control.context import ControlPlane
from corral.errors import FieldError, ValidationFailed
from corral.metrics.chunks import series_key, split_key
from corral.metrics.history import MAX_POINTS, parse_duration
from corral.metrics.samples import Metric, NodeMetric, metric_named, unit

DEFAULT_RANGE_SECONDS = 3600.0


@dataclass(frozen=True)
class Series:
    metric: str
    node_id: str | None
    unit: str
    points: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class MetricsAnswer:
    cluster_id: str
    start: float
    end: float
    step: float | None
    series: list[Series]


def _time(text: str | None, name: str, default: float, now: float) -> float:
    """Epoch seconds, or a duration back from now (``1h``: an hour ago)."""
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise ValidationFailed([FieldError((name,), f"not a time: {text!r}")], where="query")
        return value
    try:
        return now - parse_duration(text)
    except ValueError:
        raise ValidationFailed([FieldError((name,), f"not epoch seconds or a duration back from now (30m, 1h, 2d): {text!r}")],
                               where="query") from None


_RANK = {m.value: i for i, m in enumerate([*Metric, *NodeMetric])}


def _order(key: str) -> tuple[int, str, int]:
    """Cluster metrics first, in the table order of ``corral.metrics.samples``, then each
    node's."""
    name, node = split_key(key)
    return (1 if node else 0, node or "", _RANK.get(name, len(_RANK)))


def query(cp: ControlPlane, cluster_id: str, names: list[str] | None, start: str | None, end: str | None,
          step: str | None, node_id: str | None = None, now: float | None = None) -> MetricsAnswer:
    """The cluster's series of ``names`` (EMR's metric names; None: all) between ``start``
    and ``end`` (epoch seconds, or durations back from now; default the last hour), each
    point averaged into ``step`` (seconds or a duration) when given. A node metric gives
    one series per node (``node_id``: only that node's). 404 for an unknown cluster, 422
    naming the query parameter at fault."""
    clusters.get_cluster(cp, cluster_id)
    now = time.time() if now is None else now
    problems: list[FieldError] = []
    wanted: list[Metric | NodeMetric] = []
    for name in names or []:
        try:
            wanted.append(metric_named(name.strip()))
        except ValueError as exc:
            problems.append(FieldError(("names",), str(exc)))
    until = _time(end, "end", now, now)
    since = _time(start, "start", until - DEFAULT_RANGE_SECONDS, now)
    width: float | None = None
    if step not in (None, ""):
        try:
            width = parse_duration(step)  # type: ignore[arg-type]
        except ValueError as exc:
            problems.append(FieldError(("step",), str(exc)))
        else:
            if width <= 0:
                problems.append(FieldError(("step",), "must be positive"))
            elif (until - since) / width > MAX_POINTS:
                problems.append(FieldError(("step",), f"{(until - since) / width:.0f} points per series; at most "
                                                      f"{MAX_POINTS}: give a longer step or a shorter range"))
    if since > until:
        problems.append(FieldError(("start",), "is after end"))
    if problems:
        raise ValidationFailed(problems, where="query")
    keys = None
    if wanted:
        cluster_keys = {series_key(m.value) for m in wanted if isinstance(m, Metric)}
        node_names = {m.value for m in wanted if isinstance(m, NodeMetric)}
        keys = None if node_names else cluster_keys
    try:
        found = cp.history.query(cluster_id, since, until, keys=keys, step=width)
    except ValueError as exc:  # more points than a series may have, without a step
        raise ValidationFailed([FieldError(("step",), str(exc))], where="query") from None
    series = []
    for key in sorted(found, key=_order):
        name, node = split_key(key)
        if wanted and not (key in cluster_keys or (node and name in node_names)):
            continue
        if node_id and node != node_id:
            continue
        try:
            metric = metric_named(name)
        except ValueError:
            continue
        series.append(Series(name, node, unit(metric), found[key]))
    return MetricsAnswer(cluster_id, since, until, width, series)
