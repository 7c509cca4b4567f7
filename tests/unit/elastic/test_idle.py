"""Idle time: what counts as busy, when it starts and restarts, and that a cluster ends only
on an observation that found it idle."""

from __future__ import annotations

from corral.elastic.idle import Activity, YarnApp, busy_reason, expired, idle_since


def test_steps_applications_and_queries_are_busy_but_corrals_own_application_is_not() -> None:
    sql_endpoint = YarnApp("application_1_0001", "RUNNING")
    assert busy_reason(Activity(yarn_apps=(sql_endpoint,)), frozenset({sql_endpoint.id})) is None
    assert busy_reason(Activity(yarn_apps=(sql_endpoint,))) == "YARN application application_1_0001 is RUNNING"
    assert busy_reason(Activity(yarn_apps=(YarnApp("application_1_0002", "ACCEPTED"),))) is not None
    assert busy_reason(Activity(yarn_apps=(YarnApp("application_1_0003", "FINISHED"),))) is None
    assert busy_reason(Activity(active_steps=("s-1",))) == "step s-1 is pending or running"
    assert busy_reason(Activity(sql_queries_running=2)) == "2 SQL queries are running"
    assert busy_reason(Activity()) is None


def test_idle_time_starts_restarts_and_survives_a_failed_observation() -> None:
    since = None
    timeline = [(0, None, True), (10, None, True), (20, "step s-1 is pending or running", True), (30, None, True),
                (40, None, False), (100, None, True)]
    seen = []
    for now, busy, observed in timeline:
        since = idle_since(since, busy, observed, now)
        seen.append(since)
    assert seen == [0, 0, None, 30, 30, 30]
    assert not expired(30, 60, True, 89) and expired(30, 60, True, 90)
    assert not expired(30, 60, False, 200)  # not on a guess
    assert not expired(None, 60, True, 200)
