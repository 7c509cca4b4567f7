"""A metric rule's transitions, from one sample's values, the rule's current alerts and the
time. Pure: the caller (``corral.alerts.metric_rules``) reads the store and the sample and
writes what this decides; tests pass their own times.

One series per alert: the cluster's value of a cluster metric (key None), or each node's
value of a node metric (key: the node id). For each series (Prometheus' alerting-rule
semantics, ``for`` included):

- no alert, the comparison holds: PENDING, or FIRING at once when ``for`` is 0;
- PENDING, it holds and has held since ``pending_since`` for at least ``for``: FIRING;
- PENDING or FIRING, it no longer holds: RESOLVED. Receivers hear of it only when it
  was FIRING: a PENDING alert was never announced, so its clearing is recorded (an event,
  the row kept as RESOLVED, its ``fired_at`` empty) but sent nowhere. Keeping the row
  rather than deleting it makes flapping below ``for`` visible in ``alert list``;
- no value for the series in this sample (the NameNode did not answer, a node's agent
  is late): nothing changes: missing data neither fires, resolves nor restarts ``for``;
- a node that left the cluster (``gone``): its alert is RESOLVED (it has no value and
  never will again).

Each sample is compared on its own: a PENDING alert fires on the first sample at or past
``pending_since + for`` whose value still breaches, as Prometheus evaluates at each rule
interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from corral.alerts.rules import RuleSpec
from corral.domain.states import AlertState
from corral.metrics.samples import Metric, NodeMetric, Sample, metric_named

Key = str | None  # a node id for a node metric's series, None for the cluster's


@dataclass(frozen=True)
class Current:
    """An alert not yet RESOLVED: its state and since when its condition has held (epoch s)."""

    state: AlertState
    pending_since: float
    value: float | None = None


@dataclass(frozen=True)
class Transition:
    """What to do with one series. ``to`` None: the state stays and only the value is
    refreshed. ``notify``: whether webhooks hear of it (FIRING; RESOLVED of a FIRING one).
    ``reason``: why it resolved when not by its value (``gone``), else None."""

    key: Key
    to: AlertState | None
    value: float | None
    notify: bool = False
    reason: str | None = None


def step(rule: RuleSpec, key: Key, value: float | None, current: Current | None, now: float) -> Transition | None:
    """The transition of one series (None: nothing to record)."""
    if value is None:
        return None
    breached = rule.breached(value)
    if current is None:
        if not breached:
            return None
        if rule.for_seconds <= 0:
            return Transition(key, AlertState.FIRING, value, notify=True)
        return Transition(key, AlertState.PENDING, value)
    if not breached:
        return Transition(key, AlertState.RESOLVED, value, notify=current.state is AlertState.FIRING)
    if current.state is AlertState.PENDING and now - current.pending_since >= rule.for_seconds:
        return Transition(key, AlertState.FIRING, value, notify=True)
    if value != current.value:
        return Transition(key, None, value)
    return None


def evaluate(rule: RuleSpec, values: Mapping[Key, float], current: Mapping[Key, Current], now: float,
             gone: Iterable[Key] = ()) -> list[Transition]:
    """Every series' transition, for the series with a value or a current alert. ``values``:
    the sample's value per series (``values_of``); ``current``: the rule's unresolved alerts
    by series; ``gone``: series whose node left the cluster (their alerts resolve)."""
    out: list[Transition] = []
    left = set(gone)
    for key in sorted(set(values) | set(current), key=lambda k: (k is not None, k or "")):
        alert = current.get(key)
        if key in left and alert is not None:
            out.append(Transition(key, AlertState.RESOLVED, None, notify=alert.state is AlertState.FIRING,
                                  reason=f"node {key} left the cluster"))
            continue
        transition = step(rule, key, values.get(key), alert, now)
        if transition is not None:
            out.append(transition)
    return out


def values_of(rule: RuleSpec, sample: Sample) -> dict[Key, float]:
    """The sample's value of the rule's metric: ``{None: v}`` for a cluster metric (empty
    when the sample has none), ``{node_id: v}`` for a node metric (each node that has one)."""
    assert rule.metric is not None
    metric = metric_named(rule.metric)
    if isinstance(metric, NodeMetric):
        return {node: vals[metric] for node, vals in sample.nodes.items() if metric in vals}
    assert isinstance(metric, Metric)
    return {None: sample.values[metric]} if metric in sample.values else {}
