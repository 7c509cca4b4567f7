"""Event rules: an alert per matching event, FIRING once and never resolved; the
watermark is in the store, so a new watcher (a restarted control plane) neither repeats
nor misses an event; a rule starts at the newest event; cluster rules replace global ones."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from corral.alerts.engine import ensure_builtins
from corral.alerts.event_rules import SETTLE_SECONDS, EventWatcher
from corral.control import alerts as control
from corral.control import events
from corral.control.context import ControlPlane
from corral.store.monitoring import AlertRule
from tests.unit.alerts.helpers import alert_events, alerts, deliveries, up_cluster


def record(cp: ControlPlane, cluster_id: str, code: str, message: str, at: float, **where: str) -> None:
    with cp.store.session() as s:
        events.record(s, cluster_id, code, message, at=at, **where)


def watermarks(cp: ControlPlane) -> dict[str, int | None]:
    with cp.store.session() as s:
        return {r.name: r.event_watermark for r in s.scalars(select(AlertRule).where(AlertRule.kind == "event"))}


def test_each_matching_event_fires_once_across_restarts(cp: ControlPlane) -> None:
    cid = up_cluster(cp)
    ensure_builtins(cp.store)
    control.add_webhook(cp, "http://127.0.0.1:9/a")
    t0 = 10_000.0
    record(cp, cid, "STEP_FAILED", "step s-1 'etl' is FAILED: exit 1", t0, step_id="s-1")
    record(cp, cid, "STEP_COMPLETED", "step s-2 'ok' is COMPLETED", t0)
    record(cp, cid, "NODE_LOST", "CORE node n-1 is lost", t0 + 1, node_id="n-1")
    record(cp, cid, "CLUSTER_STATE_CHANGED", "WAITING -> TERMINATING: bye", t0 + 2)
    record(cp, cid, "CLUSTER_STATE_CHANGED", "TERMINATING -> TERMINATED_WITH_ERRORS: step failed", t0 + 3)
    now = [t0 + 5]
    assert EventWatcher(cp.store, lambda: now[0]).tick() == 3
    fired = {a.labels["alertname"]: a for a in alerts(cp, cid)}
    assert set(fired) == {"StepFailed", "NodeLost", "ClusterFailed"}
    assert all(a.state == "FIRING" and a.resolved_at is None for a in fired.values())
    assert fired["StepFailed"].labels["step_id"] == "s-1" and fired["NodeLost"].node_id == "n-1"
    assert fired["StepFailed"].summary == "step s-1 'etl' is FAILED: exit 1"
    assert fired["StepFailed"].fired_at == t0
    for later in (t0 + 6, t0 + SETTLE_SECONDS + 10, t0 + 2 * SETTLE_SECONDS):
        now[0] = later
        assert EventWatcher(cp.store, lambda: now[0]).tick() == 0  # a new watcher each time: a restart
    assert len(alerts(cp, cid)) == 3 and len(deliveries(cp)) == 3
    assert [c for c, _ in alert_events(cp, cid)] == ["ALERT_FIRING"] * 3
    assert set(watermarks(cp).values()) == {max(watermarks(cp).values())}  # settled past every event
    record(cp, cid, "STEP_FAILED", "step s-3 'again' is FAILED", now[0])
    assert EventWatcher(cp.store, lambda: now[0]).tick() == 1


def test_young_events_are_looked_at_again_until_settled_but_fire_once(cp: ControlPlane) -> None:
    cid = up_cluster(cp)
    ensure_builtins(cp.store)
    start = watermarks(cp)["StepFailed"]
    record(cp, cid, "STEP_FAILED", "step s-1 is FAILED", 50_000.0)
    watcher = EventWatcher(cp.store, lambda: 50_001.0)
    assert (watcher.tick(), watcher.tick()) == (1, 0)
    assert watermarks(cp)["StepFailed"] == start  # not settled: a lower id could still commit
    assert len(alerts(cp, cid)) == 1


def test_a_new_rule_starts_at_the_newest_event_and_a_cluster_rule_replaces_the_global(cp: ControlPlane) -> None:
    cid, other = up_cluster(cp), up_cluster(cp)
    ensure_builtins(cp.store)
    record(cp, cid, "NODE_UNHEALTHY", "node n-1 is unhealthy", 1.0)
    control.add_rule(cp, control.RuleInput("Unhealthy", event_code="NODE_UNHEALTHY", severity="info"))
    control.add_rule(cp, control.RuleInput("StepFailed", event_code="STEP_FAILED", cluster_id=cid, enabled=False))
    record(cp, cid, "NODE_UNHEALTHY", "node n-2 is unhealthy", 2.0)
    record(cp, cid, "STEP_FAILED", "step s-1 is FAILED", 2.0)
    record(cp, other, "STEP_FAILED", "step s-9 is FAILED", 2.0)
    assert EventWatcher(cp.store, lambda: 3.0).tick() == 2
    got = sorted((a.cluster_id, a.labels["alertname"], a.summary) for a in alerts(cp))
    assert got == sorted([(cid, "Unhealthy", "node n-2 is unhealthy"), (other, "StepFailed", "step s-9 is FAILED")])


def test_unmonitored_clusters_raise_no_event_alerts(cp: ControlPlane) -> None:
    cid = up_cluster(cp, monitoring=False)
    ensure_builtins(cp.store)
    record(cp, cid, "STEP_FAILED", "step s-1 is FAILED", 1.0)
    assert EventWatcher(cp.store, lambda: 2.0).tick() == 0


def test_many_events_are_read_in_batches_and_each_fires_once(cp: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    from corral.alerts import event_rules

    monkeypatch.setattr(event_rules, "BATCH", 2)
    monkeypatch.setattr(event_rules, "MAX_READ", 4)
    cid = up_cluster(cp)
    ensure_builtins(cp.store)
    for i in range(7):
        record(cp, cid, "STEP_FAILED", f"step s-{i} is FAILED", 100.0 + i)
    now = 100.0 + SETTLE_SECONDS + 10  # all settled
    counts = [EventWatcher(cp.store, lambda: now).tick() for _ in range(3)]
    assert counts == [4, 3, 0]
    assert sorted(a.summary for a in alerts(cp, cid)) == sorted(f"step s-{i} is FAILED" for i in range(7))
