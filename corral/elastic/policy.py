"""An autoscaling policy for one CORE or TASK group, as users write it (YAML or JSON).

The shape follows EMR's custom automatic scaling policy (``Constraints``, ``Rules`` with a
``CloudWatchAlarmDefinition`` trigger and a ``SimpleScalingPolicyConfiguration`` action),
in snake case, plus time rules and Dataproc's managed mode::

    min_count: 0
    max_count: 8
    timezone: Europe/Berlin          # for time rules; default UTC
    rules:                           # EMR's load rules
      - name: grow-on-low-memory
        metric: YARNMemoryAvailablePercentage
        comparison: LESS_THAN        # EMR's ComparisonOperator
        threshold: 15
        period_seconds: 60           # EMR's Period; an average over each period
        evaluation_periods: 2        # EMR's EvaluationPeriods: breached in each of the last 2
        adjustment: 2                # EMR's ScalingAdjustment ...
        adjustment_type: CHANGE_IN_CAPACITY   # ... and AdjustmentType
        cooldown_seconds: 300        # EMR's CoolDown
    time_rules:
      - name: office-hours
        cron: "0 8 * * 1-5"          # minute hour day month weekday, in ``timezone``
        count: 4                     # the group's count at that minute
        min_count: 2                 # bounds until the next time rule (default: the policy's)
        max_count: 8
    managed:                         # Dataproc's algorithm, instead of ``rules``
      scale_up_factor: 1.0
      scale_down_factor: 1.0
      min_change_fraction: 0.0
      cooldown_seconds: 120
      decommission_timeout: 600

A policy has load ``rules`` or ``managed``, not both: two algorithms deciding one count
would fight. Time rules combine with either; load rules and managed mode act within the
bounds of the time rule in force. ``load_policy`` reports each error with its field.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import cronsim
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from corral.domain.spec import DisplayName
from corral.errors import FieldError, ValidationFailed
from corral.metrics.samples import Metric

MAX_GROUP_COUNT = 64  # as a node group's count in the cluster spec
MAX_COOLDOWN_SECONDS = 86400
MAX_DECOMMISSION_TIMEOUT = 7 * 86400


class Comparison(str, enum.Enum):
    """EMR's ComparisonOperator."""

    GREATER_THAN_OR_EQUAL = "GREATER_THAN_OR_EQUAL"
    GREATER_THAN = "GREATER_THAN"
    LESS_THAN = "LESS_THAN"
    LESS_THAN_OR_EQUAL = "LESS_THAN_OR_EQUAL"

    def holds(self, value: float, threshold: float) -> bool:
        return {Comparison.GREATER_THAN_OR_EQUAL: value >= threshold, Comparison.GREATER_THAN: value > threshold,
                Comparison.LESS_THAN: value < threshold, Comparison.LESS_THAN_OR_EQUAL: value <= threshold}[self]


class AdjustmentType(str, enum.Enum):
    """EMR's AdjustmentType: ``adjustment`` is a change in nodes, a percentage of the
    current count, or the count itself."""

    CHANGE_IN_CAPACITY = "CHANGE_IN_CAPACITY"
    PERCENT_CHANGE_IN_CAPACITY = "PERCENT_CHANGE_IN_CAPACITY"
    EXACT_CAPACITY = "EXACT_CAPACITY"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoadRule(_Model):
    name: DisplayName = Field(min_length=1, max_length=64)
    metric: Metric
    comparison: Comparison
    threshold: float
    period_seconds: int = Field(default=60, ge=10, le=3600)
    evaluation_periods: int = Field(default=1, ge=1, le=60)
    adjustment: int = Field(ge=-100 * MAX_GROUP_COUNT, le=100 * MAX_GROUP_COUNT)
    adjustment_type: AdjustmentType = AdjustmentType.CHANGE_IN_CAPACITY
    cooldown_seconds: int = Field(default=300, ge=0, le=MAX_COOLDOWN_SECONDS)



def cron_check(expression: str) -> str:
    """A five-field cron expression (cronsim's dialect: Vixie cron's, with ``L`` and ``#``)."""
    if len(expression.split()) != 5:
        raise ValueError(f"{expression!r} is not a cron expression of 5 fields (minute hour day month weekday)")
    try:
        cronsim.CronSim(expression, datetime(2000, 1, 1, tzinfo=timezone.utc))
    except cronsim.CronSimError as exc:
        raise ValueError(f"{expression!r} is not a cron expression: {exc}") from None
    return expression


class TimeRule(_Model):
    name: DisplayName = Field(min_length=1, max_length=64)
    cron: str

    count: int = Field(ge=0, le=MAX_GROUP_COUNT)
    min_count: int | None = Field(default=None, ge=0, le=MAX_GROUP_COUNT)
    max_count: int | None = Field(default=None, ge=0, le=MAX_GROUP_COUNT)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return cron_check(value)


class ManagedScaling(_Model):
    """Dataproc's autoscaling algorithm (its ``basicAlgorithm``): factors in [0, 1]."""

    scale_up_factor: float = Field(default=1.0, ge=0.0, le=1.0)
    scale_down_factor: float = Field(default=1.0, ge=0.0, le=1.0)
    min_change_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    cooldown_seconds: int = Field(default=120, ge=10, le=MAX_COOLDOWN_SECONDS)
    decommission_timeout: int = Field(default=600, ge=0, le=MAX_DECOMMISSION_TIMEOUT)


class AutoscalingPolicy(_Model):
    min_count: int = Field(ge=0, le=MAX_GROUP_COUNT)
    max_count: int = Field(ge=0, le=MAX_GROUP_COUNT)
    timezone: str = "UTC"
    rules: list[LoadRule] = Field(default_factory=list, max_length=20)
    time_rules: list[TimeRule] = Field(default_factory=list, max_length=20)
    managed: ManagedScaling | None = None
    # Scale-in of load rules and time rules: how long YARN lets a leaving node finish its
    # containers (managed mode has its own); EMR's default is an hour, ours is shorter.
    decommission_timeout: int = Field(default=600, ge=0, le=MAX_DECOMMISSION_TIMEOUT)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as UTC or Europe/Berlin)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def bounds_of(self, rule: TimeRule | None) -> tuple[int, int]:
        """(min, max) while ``rule`` is in force (the policy's when None)."""
        if rule is None:
            return self.min_count, self.max_count
        low = rule.min_count if rule.min_count is not None else self.min_count
        high = rule.max_count if rule.max_count is not None else self.max_count
        return low, high


def _checks(policy: AutoscalingPolicy) -> list[FieldError]:
    """What needs more than one field: bounds, one algorithm, adjustments that change
    something, unique rule names, time rules' counts within their bounds."""
    errors = []
    if policy.min_count > policy.max_count:
        errors.append(FieldError(("min_count",), f"{policy.min_count} is greater than max_count {policy.max_count}"))
    if policy.rules and policy.managed is not None:
        errors.append(FieldError(("managed",), "a policy has load rules or managed mode, not both"))
    if not (policy.rules or policy.time_rules or policy.managed):
        errors.append(FieldError((), "a policy needs rules, time_rules or managed"))
    for i, rule in enumerate(policy.rules):
        exact = rule.adjustment_type is AdjustmentType.EXACT_CAPACITY
        if exact and not 0 <= rule.adjustment <= MAX_GROUP_COUNT:
            errors.append(FieldError(("rules", i, "adjustment"),
                                     f"an EXACT_CAPACITY count is 0 to {MAX_GROUP_COUNT}, not {rule.adjustment}"))
        elif not exact and rule.adjustment == 0:
            errors.append(FieldError(("rules", i, "adjustment"), "a change of 0 never changes anything"))
    seen: set[str] = set()
    for kind, rules in (("rules", policy.rules), ("time_rules", policy.time_rules)):
        for i, named in enumerate(rules):
            if named.name in seen:
                errors.append(FieldError((kind, i, "name"), f"{named.name!r} names another rule of this policy"))
            seen.add(named.name)
    for i, time_rule in enumerate(policy.time_rules):
        low, high = policy.bounds_of(time_rule)
        if low > high:
            errors.append(FieldError(("time_rules", i, "min_count"), f"{low} is greater than max_count {high}"))
        elif not low <= time_rule.count <= high:
            errors.append(FieldError(("time_rules", i, "count"), f"{time_rule.count} is outside its bounds {low}..{high}"))
    return errors


def load_policy(data: Any) -> AutoscalingPolicy:
    """The policy in ``data`` (a mapping, from YAML or JSON), the only way in: the model
    alone checks single fields. Raises ValidationFailed with each error and its field
    (``rules[0].metric: ...``): the fields' own, else those that need several fields."""
    try:
        policy = AutoscalingPolicy.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed([FieldError(tuple(e["loc"]), _message(e)) for e in exc.errors()]) from None
    errors = _checks(policy)
    if errors:
        raise ValidationFailed(errors)
    return policy


def _message(error: Any) -> str:
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message
