"""Autoscaling policies: what is accepted, and every refusal names its field."""

from __future__ import annotations

from typing import Any

import pytest

from corral.elastic.policy import AdjustmentType, Comparison, load_policy
from corral.errors import ValidationFailed
from corral.metrics.samples import Metric


def rule(**over: Any) -> dict[str, Any]:
    return {"name": "grow", "metric": "YARNMemoryAvailablePercentage", "comparison": "LESS_THAN", "threshold": 15,
            "adjustment": 2, **over}


def test_an_emr_style_policy_with_time_rules_loads_with_emr_defaults() -> None:
    policy = load_policy({"min_count": 1, "max_count": 8, "timezone": "Europe/Berlin", "rules": [rule()],
                          "time_rules": [{"name": "office", "cron": "0 8 * * 1-5", "count": 4, "min_count": 2}]})
    first = policy.rules[0]
    assert (first.metric, first.comparison, first.adjustment_type) == (
        Metric.YARN_MEMORY_AVAILABLE_PERCENTAGE, Comparison.LESS_THAN, AdjustmentType.CHANGE_IN_CAPACITY)
    assert (first.period_seconds, first.evaluation_periods, first.cooldown_seconds) == (60, 1, 300)
    assert policy.bounds_of(policy.time_rules[0]) == (2, 8) and policy.bounds_of(None) == (1, 8)


@pytest.mark.parametrize(("data", "error"), [
    ({"min_count": 3, "max_count": 2, "rules": [rule()]}, "min_count: 3 is greater than max_count 2"),
    ({"min_count": 0, "max_count": 2, "rules": [rule(metric="CPUUtilization")]}, "rules[0].metric: Input should be"),
    ({"min_count": 0, "max_count": 2, "rules": [rule(comparison="ABOVE")]}, "rules[0].comparison: Input should be"),
    ({"min_count": 0, "max_count": 2, "rules": [rule(adjustment=0)]}, "rules[0].adjustment: a change of 0"),
    ({"min_count": 0, "max_count": 2, "rules": [rule(adjustment=99, adjustment_type="EXACT_CAPACITY")]},
     "rules[0].adjustment: an EXACT_CAPACITY count is 0 to 64, not 99"),
    ({"min_count": 0, "max_count": 2, "rules": [rule(period_seconds=5)]}, "rules[0].period_seconds: Input should be"),
    ({"min_count": -1, "max_count": 2, "rules": [rule()]}, "min_count: Input should be greater than or equal to 0"),
    ({"min_count": 0, "max_count": 65, "rules": [rule()]}, "max_count: Input should be less than or equal to 64"),
    ({"min_count": 0, "max_count": 2}, "a policy needs rules, time_rules or managed"),
    ({"min_count": 0, "max_count": 2, "rules": [rule()], "managed": {}}, "managed: a policy has load rules or managed"),
    ({"min_count": 0, "max_count": 2, "rules": [rule(), rule()]}, "rules[1].name: 'grow' names another rule"),
    ({"min_count": 0, "max_count": 2, "timezone": "Mars/Olympus", "managed": {}}, "timezone: unknown time zone"),
    ({"min_count": 0, "max_count": 2, "time_rules": [{"name": "t", "cron": "0 25 * * *", "count": 1}]},
     "time_rules[0].cron: '0 25 * * *' is not a cron expression: Bad hour"),
    ({"min_count": 0, "max_count": 2, "time_rules": [{"name": "t", "cron": "@daily", "count": 1}]},
     "time_rules[0].cron: '@daily' is not a cron expression of 5 fields"),
    ({"min_count": 0, "max_count": 2, "time_rules": [{"name": "t", "cron": "0 8 * * *", "count": 3}]},
     "time_rules[0].count: 3 is outside its bounds 0..2"),
    ({"min_count": 0, "max_count": 4, "time_rules": [{"name": "t", "cron": "0 8 * * *", "count": 3, "min_count": 5}]},
     "time_rules[0].min_count: 5 is greater than max_count 4"),
    ({"min_count": 0, "max_count": 2, "managed": {"scale_up_factor": 1.5}}, "managed.scale_up_factor: Input should be"),
    ({"min_count": 0, "max_count": 2, "managed": {}, "extra": 1}, "extra: Extra inputs are not permitted"),
])
def test_a_bad_policy_is_refused_naming_the_field(data: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        load_policy(data)
    assert error in str(caught.value), str(caught.value)
