"""The reconcile loop drives alerts: its sampler's listener evaluates the metric rules on
each sample, its tick creates the built-ins once, watches events and sends deliveries."""

from __future__ import annotations

import pytest

from corral.alerts.engine import ensure_builtins
from corral.alerts.rules import BUILTINS
from corral.control import alerts as control
from corral.control import events
from corral.control.context import ControlPlane
from corral.metrics.samples import Metric
from corral.reconcile import sampler
from corral.reconcile import loop
from corral.reconcile.loop import Reconciler
from tests.unit.alerts.helpers import alerts, up_cluster
from tests.webhook_receiver import receiving


class _HdfsLosingBlocks:
    missing = 2.0

    def metric_values(self, cluster: object, now: float, timeout: float) -> dict[Metric, float]:
        return {Metric.MISSING_BLOCKS: self.missing}


class _NoPass:
    """The clusters' own passes are not under test (and would act on the fake nodes)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def run(self) -> None:
        pass


def test_builtins_are_created_once(cp: ControlPlane) -> None:
    assert ensure_builtins(cp.store) == len(BUILTINS)
    assert ensure_builtins(cp.store) == 0
    control.set_rule_enabled(cp, "ar-hdfsfull", False)
    assert ensure_builtins(cp.store) == 0
    assert not control.get_rule(cp, "ar-hdfsfull").enabled  # a disabled built-in stays disabled


def test_the_reconciler_samples_alerts_and_notifies(cp: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    hdfs = _HdfsLosingBlocks()
    monkeypatch.setattr(sampler, "get_service", lambda name: hdfs)
    monkeypatch.setattr(loop, "ClusterReconciler", _NoPass)
    cid = up_cluster(cp)
    rec = Reconciler(cp)
    try:
        assert rec.alerts.on_sample in rec.sampler.listeners
        with receiving() as receiver:
            control.add_webhook(cp, receiver.url)
            rec.tick()  # built-ins, events, deliveries: nothing to send yet
            assert rec.sampler.sample_now(cid) is not None
            assert [(a.labels["alertname"], a.state) for a in alerts(cp, cid)] == [("MissingBlocks", "FIRING")]
            rec.tick()
            assert [b["status"] for b in receiver.wait_for(1)] == ["firing"]
            hdfs.missing = 0.0
            rec.sampler.sample_now(cid)
            rec.tick()
            assert [b["status"] for b in receiver.wait_for(2)] == ["firing", "resolved"]
            with cp.store.session() as s:
                events.record(s, cid, "STEP_FAILED", "step s-1 'x' is FAILED", step_id="s-1")
            rec.alerts._last_events = float("-inf")  # the event rules' interval has passed
            rec.tick()
            assert [b["alerts"][0]["labels"]["alertname"] for b in receiver.wait_for(3)][-1] == "StepFailed"
    finally:  # never started: its pools only
        rec.alerts.stop()
        rec.sampler.stop()
