"""Metric rules over the store: a sample's transitions are written with their events and
deliveries, all state is in the store (a new engine, as after a restart, goes on where
the old one stopped), per-node alerts, cluster rules that replace global ones, clusters
that end or are not monitored."""

from __future__ import annotations

from typing import Iterator

import pytest

from corral.alerts.engine import AlertEngine, ensure_builtins, sweep
from corral.control import alerts as control
from corral.control.context import ControlPlane
from corral.metrics.samples import NodeMetric
from corral.store.models import Cluster, Node
from tests.unit.alerts.helpers import EXTERNAL, alert_events, alerts, cluster_row, deliveries, sample, up_cluster


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(cp: ControlPlane) -> Iterator[AlertEngine]:
    made = AlertEngine(cp.store, EXTERNAL, clock=Clock())
    ensure_builtins(cp.store)
    yield made
    made.stop()


def test_a_breach_fires_once_and_resolves_once(cp: ControlPlane, engine: AlertEngine) -> None:
    cid = up_cluster(cp)
    control.add_webhook(cp, "http://127.0.0.1:9/a", name="a")
    control.add_webhook(cp, "http://127.0.0.1:9/b", name="b", cluster_id=cid)
    other = up_cluster(cp)
    control.add_webhook(cp, "http://127.0.0.1:9/c", name="c", cluster_id=other)  # another cluster's: not told
    cluster = cluster_row(cp, cid)
    for at, value in ((0, 0), (10, 2), (20, 3), (30, 3)):
        engine.on_sample(cp, cluster, sample(1000 + at, MissingBlocks=value))
    [alert] = alerts(cp, cid)
    assert (alert.state, alert.value, alert.fired_at, alert.labels["alertname"]) == ("FIRING", 3.0, 1010, "MissingBlocks")
    assert alert.labels["cluster_id"] == cid and alert.labels["severity"] == "critical"
    assert "3 missing blocks" in alert.summary
    engine.on_sample(cp, cluster, sample(1040, MissingBlocks=0))
    engine.on_sample(cp, cluster, sample(1050, MissingBlocks=0))
    [alert] = alerts(cp, cid)
    assert (alert.state, alert.resolved_at) == ("RESOLVED", 1040)
    assert [code for code, _ in alert_events(cp, cid)] == ["ALERT_FIRING", "ALERT_RESOLVED"]
    assert "value 2" in alert_events(cp, cid)[0][1]
    sent = sorted((d.webhook_id, d.status) for d in deliveries(cp))
    hooks = {w.name: w.id for w in control.list_webhooks(cp)}
    assert sent == sorted([(hooks["a"], "firing"), (hooks["a"], "resolved"), (hooks["b"], "firing"),
                           (hooks["b"], "resolved")])
    engine.on_sample(cp, cluster, sample(1060, MissingBlocks=1))  # a new breach is a new alert
    assert [a.state for a in alerts(cp, cid)] == ["RESOLVED", "FIRING"]


def test_for_is_counted_from_the_store_across_restarts(cp: ControlPlane) -> None:
    cid = up_cluster(cp)
    control.add_webhook(cp, "http://127.0.0.1:9/a")
    cluster = cluster_row(cp, cid)
    for at in (0, 60, 110, 125, 135):  # a new engine for each sample: nothing is kept in memory
        fresh = AlertEngine(cp.store, EXTERNAL, clock=Clock(5000 + at))
        fresh.on_sample(cp, cluster, sample(5000 + at, LiveDataNodes=50.0))
        fresh.stop()
        expected = "PENDING" if at < 120 else "FIRING"
        assert [a.state for a in alerts(cp, cid)] == [expected], at
    [alert] = alerts(cp, cid)
    assert (alert.pending_since, alert.fired_at) == (5000, 5125)
    assert [code for code, _ in alert_events(cp, cid)] == ["ALERT_PENDING", "ALERT_FIRING"]
    assert [d.status for d in deliveries(cp)] == ["firing"]


def test_node_metrics_alert_per_node_and_a_node_that_leaves_resolves(cp: ControlPlane, engine: AlertEngine) -> None:
    cid = up_cluster(cp)
    control.add_rule(cp, control.RuleInput("HotCpu", metric="CPUUtilization", comparison=">", threshold=90,
                                           cluster_id=cid))
    cluster = cluster_row(cp, cid)
    a, b, c = sorted(n.id for n in cluster.nodes)[:3]
    cpu = NodeMetric.CPU_UTILIZATION
    engine.on_sample(cp, cluster, sample(100, {a: {cpu: 95.0}, b: {cpu: 99.0}, c: {cpu: 10.0}}))
    firing = {x.node_id: x for x in alerts(cp, cid)}
    assert set(firing) == {a, b} and all(x.state == "FIRING" for x in firing.values())
    assert firing[a].labels["node_id"] == a
    engine.on_sample(cp, cluster, sample(110, {a: {cpu: 97.0}}))  # b reports nothing: unchanged
    assert {x.node_id: x.state for x in alerts(cp, cid)} == {a: "FIRING", b: "FIRING"}
    with cp.store.session() as s:
        node = s.get(Node, b)
        assert node is not None
        node.status = "TERMINATED"
    engine.on_sample(cp, cluster_row(cp, cid), sample(120, {a: {cpu: 97.0}}))
    assert {x.node_id: x.state for x in alerts(cp, cid)} == {a: "FIRING", b: "RESOLVED"}
    assert any(f"node {b} left the cluster" in m for _, m in alert_events(cp, cid))


def test_a_cluster_rule_replaces_the_global_one_of_its_name(cp: ControlPlane, engine: AlertEngine) -> None:
    cid, other = up_cluster(cp), up_cluster(cp)
    for c in (cid, other):
        engine.on_sample(cp, cluster_row(cp, c), sample(100, MissingBlocks=5))
    assert [a.state for a in alerts(cp)] == ["FIRING", "FIRING"]
    control.add_rule(cp, control.RuleInput("MissingBlocks", metric="MissingBlocks", comparison=">", threshold=10,
                                           cluster_id=cid))
    for c in (cid, other):
        engine.on_sample(cp, cluster_row(cp, c), sample(110, MissingBlocks=5))
    assert {a.cluster_id: a.state for a in alerts(cp)} == {cid: "RESOLVED", other: "FIRING"}
    engine.on_sample(cp, cluster_row(cp, cid), sample(120, MissingBlocks=11))
    assert sorted((a.cluster_id, a.state) for a in alerts(cp)) == sorted(
        [(cid, "RESOLVED"), (cid, "FIRING"), (other, "FIRING")])


def test_disabling_a_rule_resolves_its_alerts_and_it_then_stays_quiet(cp: ControlPlane, engine: AlertEngine) -> None:
    cid = up_cluster(cp)
    control.add_webhook(cp, "http://127.0.0.1:9/a")
    engine.on_sample(cp, cluster_row(cp, cid), sample(100, MissingBlocks=5))
    control.set_rule_enabled(cp, "ar-missingblk", False)
    assert [a.state for a in alerts(cp)] == ["RESOLVED"]
    assert [d.status for d in deliveries(cp)] == ["firing", "resolved"]
    engine.on_sample(cp, cluster_row(cp, cid), sample(110, MissingBlocks=5))
    assert len(alerts(cp)) == 1


def test_no_alerts_without_monitoring_and_an_ended_cluster_s_alerts_resolve(cp: ControlPlane,
                                                                          engine: AlertEngine) -> None:
    quiet = up_cluster(cp, monitoring=False)
    engine.on_sample(cp, cluster_row(cp, quiet), sample(100, MissingBlocks=5))
    assert alerts(cp) == []
    cid = up_cluster(cp)
    engine.on_sample(cp, cluster_row(cp, cid), sample(100, MissingBlocks=5))
    assert sweep(cp.store, 200) == (0, 0)
    with cp.store.session() as s:
        row = s.get(Cluster, cid)
        assert row is not None
        row.status = "TERMINATED"
    assert sweep(cp.store, 300) == (1, 0)
    [alert] = alerts(cp)
    assert (alert.state, alert.resolved_at) == ("RESOLVED", 300)
    assert sweep(cp.store, 300 + 8 * 86400) == (0, 1)  # old resolved alerts go
    assert alerts(cp) == []
