"""One evaluation of a group's autoscaling policy: the count the group should have now,
and why (or why nothing changes), from the cluster's recent samples and the clock.

Order of precedence in one evaluation, each documented with its source:

1. A **time rule** whose minute came since the last evaluation sets the count (clamped to
   its own bounds). The time rule in force (the one that fired last, computed from the
   clock, so a restart loses nothing) gives the bounds until the next one fires.
2. A count **outside the bounds** is brought inside them (EMR: a policy's Constraints).
3. In **cooldown** (``cooldown_until``, set by the last load or managed change) nothing
   else changes (EMR's CoolDown).
4. **Load rules** (EMR): a rule is breached when its metric's average over each of its last
   ``evaluation_periods`` periods of ``period_seconds`` meets the comparison; a period with
   no sample is no data, never a breach (CloudWatch's INSUFFICIENT_DATA). Of the breached
   rules, scale-out wins: the largest increase, else the smallest decrease.
   PERCENT_CHANGE_IN_CAPACITY moves at least one node and rounds larger changes toward
   zero (EC2 Auto Scaling's rounding rule).
5. **Managed** (Dataproc's basic algorithm, averaged over its cooldown window): with
   memory pending, Δ = ⌈scale_up_factor × pending / node memory⌉, else
   Δ = −⌊scale_down_factor × available / node memory⌋; a change smaller than
   ``min_change_fraction`` × the current count is not made.

The result is clamped to the bounds; a decision that the bounds cancel says so ("at max 4").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

import cronsim

from corral.elastic.policy import AdjustmentType, AutoscalingPolicy, LoadRule, TimeRule
from corral.metrics.samples import History, Metric, average


@dataclass(frozen=True)
class ScalingState:
    """What one evaluation hands the next (kept in the store with the policy)."""

    evaluated_at: float | None = None  # time rules fire for the minutes after this
    cooldown_until: float = 0.0  # no load or managed change before this (epoch seconds)


@dataclass(frozen=True)
class Evaluation:
    at: float
    current: int
    desired: int  # equal to current when nothing changes
    low: int
    high: int
    cause: str  # what decided (a rule and its values), or why nothing changed
    changed: bool
    rule: str | None = None  # the rule that decided, if one did
    decommission_timeout: int | None = None  # seconds, for a scale-in
    metrics: dict[str, float] = field(default_factory=dict)  # the values the decision read
    state: ScalingState = field(default_factory=ScalingState)


def _local(at: float, policy: AutoscalingPolicy) -> datetime:
    return datetime.fromtimestamp(at, timezone.utc).astimezone(policy.zone)


def _clock_text(at: float, policy: AutoscalingPolicy) -> str:
    return _local(at, policy).strftime("%H:%M:%S")


def last_firing(rule: TimeRule, policy: AutoscalingPolicy, now: float) -> float:
    """The latest minute at or before ``now`` that ``rule``'s cron expression matches, in the
    policy's time zone (cronsim handles DST: a skipped 02:30 fires at 03:00)."""
    after = _local(math.floor(now), policy) + timedelta(seconds=1)  # cronsim excludes its start
    return next(cronsim.CronSim(rule.cron, after, reverse=True)).timestamp()


def rule_in_force(policy: AutoscalingPolicy, now: float) -> tuple[TimeRule | None, float | None]:
    """The time rule that fired last (the first listed on a tie) and when."""
    best: tuple[TimeRule | None, float | None] = (None, None)
    for rule in policy.time_rules:
        fired = last_firing(rule, policy, now)
        if best[1] is None or fired > best[1]:
            best = (rule, fired)
    return best


def _period_averages(history: History, rule: LoadRule, now: float) -> list[float] | None:
    """The averages of the rule's last ``evaluation_periods`` periods, newest first; None
    when one of them has no sample."""
    out = []
    for k in range(rule.evaluation_periods):
        end = now - k * rule.period_seconds
        value = average(history.values(rule.metric, end - rule.period_seconds, end))
        if value is None:
            return None
        out.append(value)
    return out


def _adjusted(rule: LoadRule, current: int) -> int:
    if rule.adjustment_type is AdjustmentType.EXACT_CAPACITY:
        return rule.adjustment
    if rule.adjustment_type is AdjustmentType.CHANGE_IN_CAPACITY:
        return current + rule.adjustment
    change = abs(rule.adjustment) * current / 100
    nodes = max(1, math.floor(change))
    return current + (nodes if rule.adjustment > 0 else -nodes)


@dataclass(frozen=True)
class _Proposal:
    target: int
    cause: str
    rule: str | None
    cooldown: int
    decommission_timeout: int
    metrics: dict[str, float]


def _by_rules(policy: AutoscalingPolicy, history: History, current: int, now: float) -> _Proposal | str:
    breached: list[_Proposal] = []
    quiet: list[str] = []
    for rule in policy.rules:
        averages = _period_averages(history, rule, now)
        if averages is None:
            quiet.append(f"{rule.name}: no {rule.metric.value} data in each of its last {rule.evaluation_periods} "
                         f"period(s) of {rule.period_seconds} s")
            continue
        shown = ", ".join(f"{v:g}" for v in averages)
        if all(rule.comparison.holds(v, rule.threshold) for v in averages):
            breached.append(_Proposal(
                _adjusted(rule, current),
                f"rule {rule.name}: {rule.metric.value} averaged {shown} over {rule.evaluation_periods} period(s) "
                f"of {rule.period_seconds} s, {rule.comparison.value} {rule.threshold:g}",
                rule.name, rule.cooldown_seconds, policy.decommission_timeout, {rule.metric.value: averages[0]}))
        else:
            quiet.append(f"{rule.name}: {rule.metric.value} averaged {shown}, not {rule.comparison.value} "
                         f"{rule.threshold:g} in every period")
    if not breached:
        return "no rule breached (" + "; ".join(quiet) + ")"
    ups = [p for p in breached if p.target > current]
    if ups:
        return max(ups, key=lambda p: p.target)  # scale-out wins
    return max(breached, key=lambda p: p.target)


def _managed(policy: AutoscalingPolicy, history: History, current: int, now: float,
             node_memory_mb: float) -> _Proposal | str:
    managed = policy.managed
    assert managed is not None
    start = now - managed.cooldown_seconds
    pending = average(history.values(Metric.MEMORY_PENDING_MB, start, now))
    available = average(history.values(Metric.MEMORY_AVAILABLE_MB, start, now))
    if pending is None or available is None:
        return f"no YARN memory samples in the last {managed.cooldown_seconds} s"
    if node_memory_mb <= 0:
        return "the group's nodes offer no YARN memory"
    metrics = {Metric.MEMORY_PENDING_MB.value: pending, Metric.MEMORY_AVAILABLE_MB.value: available}
    if pending > 0:
        delta = math.ceil(managed.scale_up_factor * pending / node_memory_mb)
        formula = f"⌈{managed.scale_up_factor:g} × {pending:g} MiB pending / {node_memory_mb:g} MiB per node⌉"
    else:
        delta = -math.floor(managed.scale_down_factor * available / node_memory_mb)
        formula = f"−⌊{managed.scale_down_factor:g} × {available:g} MiB available / {node_memory_mb:g} MiB per node⌋"
    if delta == 0:
        return f"managed: {formula} = 0"
    if abs(delta) < managed.min_change_fraction * current:
        return (f"managed: {formula} = {delta:+d}, less than min_change_fraction {managed.min_change_fraction:g} "
                f"of {current} nodes")
    return _Proposal(current + delta, f"managed: {formula} = {delta:+d}", None, managed.cooldown_seconds,
                     managed.decommission_timeout, metrics)


def evaluate(policy: AutoscalingPolicy, history: History, state: ScalingState, current: int, now: float,
             node_memory_mb: float = 0.0) -> Evaluation:
    """The evaluation at ``now`` (epoch seconds) of a group of ``current`` nodes (its target
    count), each offering ``node_memory_mb`` of YARN memory (managed mode). Its ``state``
    goes to the next evaluation whether or not the count changes."""
    in_force, fired_at = rule_in_force(policy, now)
    low, high = policy.bounds_of(in_force)
    next_state = replace(state, evaluated_at=now)

    def result(desired: int, cause: str, rule: str | None = None, timeout: int | None = None,
               metrics: dict[str, float] | None = None, cooldown: int | None = None) -> Evaluation:
        final = replace(next_state, cooldown_until=now + cooldown) if cooldown and desired != current else next_state
        return Evaluation(now, current, desired, low, high, cause, desired != current, rule,
                          timeout if desired < current else None, metrics or {}, final)

    if in_force is not None and fired_at is not None and state.evaluated_at is not None and fired_at > state.evaluated_at:
        target = min(max(in_force.count, low), high)
        return result(target, f"time rule {in_force.name} ({in_force.cron}) at "
                              f"{_local(fired_at, policy).strftime('%Y-%m-%d %H:%M %Z')}: count {target}",
                      in_force.name, policy.decommission_timeout)
    if current < low:
        return result(low, f"below min {low}", in_force.name if in_force else None)
    if current > high:
        return result(high, f"above max {high}", in_force.name if in_force else None, policy.decommission_timeout)
    if now < state.cooldown_until:
        return result(current, f"cooldown until {_clock_text(state.cooldown_until, policy)}")
    if policy.managed is not None:
        proposal = _managed(policy, history, current, now, node_memory_mb)
    elif policy.rules:
        proposal = _by_rules(policy, history, current, now)
    else:
        return result(current, "no load rules: time rules only")
    if isinstance(proposal, str):
        return result(current, proposal)
    target = min(max(proposal.target, low), high)
    if proposal.target == current:
        return result(current, f"{proposal.cause}: already {current}", proposal.rule, metrics=proposal.metrics)
    if target == current:
        edge = f"at max {high}" if proposal.target > current else f"at min {low}"
        return result(current, f"{edge}: {proposal.cause} (wanted {proposal.target})", proposal.rule,
                      metrics=proposal.metrics)
    return result(target, proposal.cause + (f" (clamped to {target})" if target != proposal.target else ""),
                  proposal.rule, proposal.decommission_timeout, proposal.metrics, proposal.cooldown)
