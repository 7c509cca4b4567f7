"""Autoscaling evaluations with a given clock and samples: rules, periods, cooldowns, the
managed formula, time rules and their bounds, and what each says when nothing changes."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from corral.elastic.autoscale import ScalingState, evaluate, last_firing
from corral.elastic.policy import load_policy
from corral.metrics.samples import History, Metric, Sample

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc).timestamp()  # a Wednesday


def history(metric: Metric, values: list[float], start: float = T0, step: float = 10) -> History:
    h = History()
    for i, v in enumerate(values):
        h.add(Sample(start + i * step, {metric: v}))
    return h


def low_memory(**over: Any) -> dict[str, Any]:
    return {"name": "low-memory", "metric": "YARNMemoryAvailablePercentage", "comparison": "LESS_THAN",
            "threshold": 15, "period_seconds": 30, "evaluation_periods": 2, "adjustment": 2, "cooldown_seconds": 300,
            **over}


def idle_memory(**over: Any) -> dict[str, Any]:
    return {"name": "idle", "metric": "YARNMemoryAvailablePercentage", "comparison": "GREATER_THAN",
            "threshold": 75, "period_seconds": 30, "evaluation_periods": 1, "adjustment": -1, **over}


def test_a_rule_breached_in_each_of_its_periods_scales_out_and_starts_its_cooldown() -> None:
    policy = load_policy({"min_count": 1, "max_count": 8, "rules": [low_memory()]})
    samples = history(Metric.YARN_MEMORY_AVAILABLE_PERCENTAGE, [10, 12, 9, 14, 11, 8])  # T0 .. T0+50
    now = T0 + 55
    result = evaluate(policy, samples, ScalingState(), current=3, now=now)
    assert (result.desired, result.changed, result.rule) == (5, True, "low-memory")
    assert result.cause == ("rule low-memory: YARNMemoryAvailablePercentage averaged 11, 10.3333 over 2 period(s) "
                            "of 30 s, LESS_THAN 15")
    assert result.metrics == {"YARNMemoryAvailablePercentage": 11.0}
    assert result.state.cooldown_until == now + 300 and result.decommission_timeout is None
    again = evaluate(policy, samples, result.state, current=5, now=now + 10)
    assert (again.desired, again.cause) == (5, "cooldown until 12:05:55")
    after = evaluate(policy, samples, result.state, current=5, now=now + 300)
    assert after.cause.startswith("no rule breached (low-memory: no YARNMemoryAvailablePercentage data")


def test_one_period_not_breached_or_without_data_is_no_breach() -> None:
    policy = load_policy({"min_count": 1, "max_count": 8, "rules": [low_memory()]})
    mixed = history(Metric.YARN_MEMORY_AVAILABLE_PERCENTAGE, [40, 40, 40, 10, 10, 10])
    result = evaluate(policy, mixed, ScalingState(), current=3, now=T0 + 55)
    assert not result.changed
    assert result.cause == ("no rule breached (low-memory: YARNMemoryAvailablePercentage averaged 10, 40, "
                            "not LESS_THAN 15 in every period)")
    gap = history(Metric.YARN_MEMORY_AVAILABLE_PERCENTAGE, [10, 10], start=T0 + 40)  # the older period is empty
    assert "no YARNMemoryAvailablePercentage data" in evaluate(policy, gap, ScalingState(), 3, T0 + 55).cause
    other = history(Metric.APPS_PENDING, [5, 5, 5, 5, 5, 5])  # another metric's samples are not this one's
    assert not evaluate(policy, other, ScalingState(), 3, T0 + 55).changed


def test_scale_out_wins_over_scale_in_and_the_bounds_say_why_nothing_changed() -> None:
    pending = {"name": "pending", "metric": "ContainerPending", "comparison": "GREATER_THAN", "threshold": 0,
               "period_seconds": 30, "adjustment": 1}
    policy = load_policy({"min_count": 1, "max_count": 4, "rules": [idle_memory(), pending]})
    h = History()
    for i in range(6):
        h.add(Sample(T0 + i * 10, {Metric.YARN_MEMORY_AVAILABLE_PERCENTAGE: 90, Metric.CONTAINER_PENDING: 3}))
    result = evaluate(policy, h, ScalingState(), current=2, now=T0 + 55)
    assert (result.desired, result.rule) == (3, "pending")
    at_max = evaluate(policy, h, ScalingState(), current=4, now=T0 + 55)
    assert not at_max.changed and at_max.cause.startswith("at max 4: rule pending") and at_max.cause.endswith("(wanted 5)")
    assert at_max.state.cooldown_until == 0.0  # nothing happened: no cooldown


def test_scale_in_carries_the_decommission_timeout_and_stops_at_min() -> None:
    policy = load_policy({"min_count": 2, "max_count": 6, "decommission_timeout": 900, "rules": [idle_memory()]})
    h = history(Metric.YARN_MEMORY_AVAILABLE_PERCENTAGE, [95, 95, 95])
    result = evaluate(policy, h, ScalingState(), current=4, now=T0 + 25)
    assert (result.desired, result.decommission_timeout) == (3, 900)
    assert evaluate(policy, h, ScalingState(), current=2, now=T0 + 25).cause.startswith("at min 2: rule idle")


def test_percent_and_exact_adjustments() -> None:
    def desired(adjustment: int, kind: str, current: int) -> int:
        policy = load_policy({"min_count": 0, "max_count": 64,
                              "rules": [low_memory(adjustment=adjustment, adjustment_type=kind, evaluation_periods=1)]})
        h = history(Metric.YARN_MEMORY_AVAILABLE_PERCENTAGE, [5, 5, 5])
        return evaluate(policy, h, ScalingState(), current=current, now=T0 + 25).desired

    assert desired(50, "PERCENT_CHANGE_IN_CAPACITY", 10) == 15
    assert desired(25, "PERCENT_CHANGE_IN_CAPACITY", 10) == 12  # 2.5 rounds toward zero
    assert desired(5, "PERCENT_CHANGE_IN_CAPACITY", 10) == 11  # under one node: one node
    assert desired(-50, "PERCENT_CHANGE_IN_CAPACITY", 3) == 2
    assert desired(7, "EXACT_CAPACITY", 3) == 7
    assert desired(0, "EXACT_CAPACITY", 3) == 0


def test_managed_mode_follows_dataprocs_formula_over_its_cooldown_window() -> None:
    policy = load_policy({"min_count": 1, "max_count": 10, "managed": {
        "scale_up_factor": 0.5, "scale_down_factor": 1.0, "min_change_fraction": 0.25, "cooldown_seconds": 60}})
    h = History()
    for i, pending in enumerate([0, 0, 6144, 6144, 6144, 6144, 6144]):  # T0 .. T0+60; window (T0, T0+60]
        h.add(Sample(T0 + i * 10, {Metric.MEMORY_PENDING_MB: pending, Metric.MEMORY_AVAILABLE_MB: 0}))
    up = evaluate(policy, h, ScalingState(), current=2, now=T0 + 60, node_memory_mb=1024)
    # average pending (0 + 5 × 6144) / 6 = 5120 MiB; ⌈0.5 × 5120 / 1024⌉ = 3
    assert (up.desired, up.cause) == (5, "managed: ⌈0.5 × 5120 MiB pending / 1024 MiB per node⌉ = +3")
    assert up.state.cooldown_until == T0 + 120
    quiet = History()
    for i in range(7):
        quiet.add(Sample(T0 + i * 10, {Metric.MEMORY_PENDING_MB: 0, Metric.MEMORY_AVAILABLE_MB: 2500}))
    down = evaluate(policy, quiet, ScalingState(), current=6, now=T0 + 60, node_memory_mb=1024)
    assert (down.desired, down.decommission_timeout) == (4, 600)  # −⌊2500 / 1024⌋ = −2
    small = evaluate(policy, quiet, ScalingState(), current=10, now=T0 + 60, node_memory_mb=1024)
    assert not small.changed and "less than min_change_fraction 0.25 of 10 nodes" in small.cause
    none = evaluate(policy, History(), ScalingState(), current=3, now=T0 + 60, node_memory_mb=1024)
    assert none.cause == "no YARN memory samples in the last 60 s"


def test_a_time_rule_sets_the_count_at_its_minute_in_its_zone_and_bounds_until_the_next() -> None:
    policy = load_policy({"min_count": 0, "max_count": 8, "timezone": "Europe/Berlin", "rules": [idle_memory()],
                          "time_rules": [{"name": "morning", "cron": "0 8 * * 1-5", "count": 4, "min_count": 3},
                                         {"name": "night", "cron": "0 20 * * *", "count": 1, "max_count": 2}]})
    berlin = ZoneInfo("Europe/Berlin")
    eight = datetime(2026, 12, 2, 8, 0, tzinfo=berlin).timestamp()
    before = ScalingState(evaluated_at=eight - 7)
    fired = evaluate(policy, History(), before, current=1, now=eight + 3)
    assert (fired.desired, fired.rule, fired.low, fired.high) == (4, "morning", 3, 8)
    assert fired.cause == "time rule morning (0 8 * * 1-5) at 2026-12-02 08:00 CET: count 4"
    # Ten seconds later it has fired already: the load rule acts, within the morning's bounds.
    h = history(Metric.YARN_MEMORY_AVAILABLE_PERCENTAGE, [95, 95, 95], start=eight - 10)
    later = evaluate(policy, h, fired.state, current=4, now=eight + 13)
    assert (later.desired, later.low) == (3, 3)
    assert later.state.cooldown_until == eight + 13 + 300  # the load rule's default cooldown
    cooled = ScalingState(evaluated_at=eight + 13)
    assert evaluate(policy, h, cooled, current=3, now=eight + 14).cause.startswith("at min 3: rule idle")
    # At night the bounds are the night rule's: a count above them comes down.
    night = datetime(2026, 12, 2, 21, 0, tzinfo=berlin).timestamp()
    above = evaluate(policy, History(), ScalingState(evaluated_at=night - 10), current=4, now=night)
    assert (above.desired, above.cause, above.high) == (2, "above max 2", 2)
    # A policy put after the minute does not fire it late; no state yet means no firing.
    assert not evaluate(policy, History(), ScalingState(), current=3, now=eight + 3).changed


def test_time_rule_minutes_follow_the_zone_across_daylight_saving() -> None:
    policy = load_policy({"min_count": 0, "max_count": 4, "timezone": "Europe/Berlin",
                          "time_rules": [{"name": "early", "cron": "30 2 * * *", "count": 1}]})
    berlin = ZoneInfo("Europe/Berlin")
    after_spring = datetime(2027, 3, 28, 4, 0, tzinfo=berlin).timestamp()  # 02:30 did not exist that day
    fired = datetime.fromtimestamp(last_firing(policy.time_rules[0], policy, after_spring), berlin)
    assert fired.date().isoformat() == "2027-03-28" and (fired.hour, fired.utcoffset().total_seconds()) == (3, 7200)
    exact = datetime(2027, 1, 5, 2, 30, tzinfo=berlin).timestamp()
    assert last_firing(policy.time_rules[0], policy, exact) == exact  # the minute itself counts
