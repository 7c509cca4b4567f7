"""A metric rule's transitions with times given by the test: ``for`` durations, flapping,
missing data, per-node series, nodes that leave."""

from __future__ import annotations

from corral.alerts.evaluate import Current, Transition, evaluate, step, values_of
from corral.alerts.rules import RuleSpec
from corral.domain.states import AlertState
from corral.metrics.samples import Metric, NodeMetric, Sample

MISSING = RuleSpec("MissingBlocks", metric="MissingBlocks", comparison=">", threshold=0.0)
DOWN = RuleSpec("DataNodesDown", metric="LiveDataNodes", comparison="<", threshold=100.0, for_seconds=120.0)
CPU = RuleSpec("Cpu", metric="CPUUtilization", comparison=">", threshold=90.0, for_seconds=60.0)


def run(rule: RuleSpec, series: list[tuple[float, float | None]]) -> list[tuple[float, str | None, bool]]:
    """Feed (time, value) samples of one cluster series; the (time, new state, notify) of each
    transition, keeping the state as the store would."""
    current: Current | None = None
    out = []
    for at, value in series:
        t = step(rule, None, value, current, at)
        if t is None:
            continue
        if t.to is None:
            assert current is not None
            current = Current(current.state, current.pending_since, t.value)
            continue
        out.append((at, t.to.value, t.notify))
        if t.to is AlertState.RESOLVED:
            current = None
        elif current is None:
            current = Current(t.to, at, t.value)
        else:
            current = Current(t.to, current.pending_since, t.value)
    return out


def test_for_zero_fires_at_once_and_resolves_with_a_notification() -> None:
    assert run(MISSING, [(0, 0), (10, 3), (20, 5), (30, 0), (40, 0)]) == [(10, "FIRING", True), (30, "RESOLVED", True)]


def test_for_holds_pending_until_the_duration_has_passed() -> None:
    samples = [(t, 50.0) for t in range(0, 140, 10)] + [(140, 100.0)]
    assert run(DOWN, samples) == [(0, "PENDING", False), (120, "FIRING", True), (140, "RESOLVED", True)]


def test_a_flapping_value_below_for_never_fires_and_its_clearing_is_not_notified() -> None:
    flapping = [(0, 50.0), (60, 100.0), (70, 50.0), (180, 100.0), (190, 50.0), (300, 100.0)]
    assert run(DOWN, flapping) == [(0, "PENDING", False), (60, "RESOLVED", False), (70, "PENDING", False),
                                   (180, "RESOLVED", False), (190, "PENDING", False), (300, "RESOLVED", False)]


def test_missing_data_keeps_the_state_and_does_not_restart_for() -> None:
    assert run(DOWN, [(0, 50.0), (10, None), (100, None), (130, 50.0), (200, None), (300, None), (310, 100.0)]) == [
        (0, "PENDING", False), (130, "FIRING", True), (310, "RESOLVED", True)]
    assert run(MISSING, [(0, None), (10, None)]) == []


def test_a_value_change_while_firing_only_refreshes_the_value() -> None:
    current = Current(AlertState.FIRING, 0.0, 3.0)
    assert step(MISSING, None, 5.0, current, 10.0) == Transition(None, None, 5.0)
    assert step(MISSING, None, 3.0, current, 10.0) is None


def test_node_metrics_give_one_series_per_node() -> None:
    sample = Sample(100.0, {Metric.MISSING_BLOCKS: 0.0},
                    {"n-a": {NodeMetric.CPU_UTILIZATION: 95.0}, "n-b": {NodeMetric.CPU_UTILIZATION: 10.0},
                     "n-c": {NodeMetric.MEMORY_UTILIZATION: 99.0}})
    assert values_of(CPU, sample) == {"n-a": 95.0, "n-b": 10.0}
    assert values_of(MISSING, sample) == {None: 0.0}
    assert values_of(MISSING, Sample(100.0)) == {}
    current = {"n-b": Current(AlertState.PENDING, 0.0, 95.0), "n-c": Current(AlertState.FIRING, 0.0, 99.0),
               "n-d": Current(AlertState.FIRING, 0.0, 99.0)}
    out = evaluate(CPU, values_of(CPU, sample), current, 100.0, gone=["n-d"])
    assert [(t.key, t.to, t.notify) for t in out] == [
        ("n-a", AlertState.PENDING, False),  # new breach
        ("n-b", AlertState.RESOLVED, False),  # a pending one cleared: nobody was told it began
        ("n-d", AlertState.RESOLVED, True),  # left the cluster; n-c has no value: unchanged
    ]
    assert out[-1].reason == "node n-d left the cluster"
