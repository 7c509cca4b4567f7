"""What the reconcile loop drives (``corral.reconcile.loop.Reconciler``): the metric rules
on each sample (``on_sample``, a sampler listener), and on its ticks (``tick``, every
0.5 s, each part at its own interval and guarded on its own):

- the built-in rules, created once per start when absent (``ensure_builtins``);
- the event rules on new events (``EVENT_SECONDS``);
- the sweep (``SWEEP_SECONDS``): metric alerts of clusters that ended, or whose
  monitoring is off, resolve (their metrics will not come back); alerts RESOLVED, and
  event alerts fired, more than ``RETENTION_SECONDS`` ago are deleted with their deliveries;
- the due webhook deliveries (``notify.DeliverySender``, on its own pool).
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError

from corral.alerts import records
from corral.alerts.event_rules import EventWatcher, watermark_now
from corral.alerts.metric_rules import evaluate_sample
from corral.alerts.notify import DeliverySender
from corral.alerts.rules import BUILTINS
from corral.domain.states import AlertState, ClusterState
from corral.metrics.samples import Sample
from corral.store.db import Store
from corral.store.models import Cluster
from corral.store.monitoring import Alert, AlertDelivery, AlertRule

log = logging.getLogger("corral.alerts")
EVENT_SECONDS = 2.0
SWEEP_SECONDS = 30.0
RETENTION_SECONDS = 7 * 86_400.0
UP = (ClusterState.STARTING.value, ClusterState.BOOTSTRAPPING.value, ClusterState.RUNNING.value,
      ClusterState.WAITING.value)


def ensure_builtins(store: Store, now: float | None = None) -> int:
    """Create each built-in rule (``rules.BUILTINS``, global) that is absent; how many.
    A built-in rule is never deleted (it would only come back here): it is disabled."""
    created = 0
    for builtin in BUILTINS:
        spec = builtin.spec
        try:
            with store.session() as s:
                if s.get(AlertRule, builtin.id) is not None:
                    continue
                s.add(AlertRule(id=builtin.id, cluster_id=None, name=spec.name, kind=spec.kind, metric=spec.metric,
                                comparison=spec.comparison, threshold=spec.threshold, for_seconds=spec.for_seconds,
                                event_code=spec.event_code, severity=spec.severity.value, message=spec.message,
                                builtin=True, enabled=True, created_at=time.time() if now is None else now,
                                event_watermark=watermark_now(s) if spec.event_code else None))
            created += 1
        except IntegrityError:  # another control plane on this store made it first
            continue
    return created


def sweep(store: Store, now: float, retention: float = RETENTION_SECONDS) -> tuple[int, int]:
    """Resolve the metric alerts of clusters not up or not monitored, delete old alerts;
    (resolved, deleted)."""
    with store.session() as s:
        stale = list(s.scalars(select(Alert).join(Cluster, Cluster.id == Alert.cluster_id).where(
            Alert.state.in_(records.ACTIVE), Alert.event_id.is_(None),
            or_(Cluster.status.not_in(UP), Cluster.monitoring.is_(False)))))
        for alert in stale:
            records.resolve(s, alert, now, "the cluster ended or is no longer monitored")
    with store.session() as s:
        old = select(Alert.id).where(Alert.updated_at < now - retention, or_(
            Alert.state == AlertState.RESOLVED.value, Alert.event_id.is_not(None)))
        ids = list(s.scalars(old))
        if ids:
            s.execute(delete(AlertDelivery).where(AlertDelivery.alert_id.in_(ids)))
            s.execute(delete(Alert).where(Alert.id.in_(ids)))
    return len(stale), len(ids)


class AlertEngine:
    def __init__(self, store: Store, external_url: str, clock: Callable[[], float] = time.time):
        self.store, self.clock = store, clock
        self.events = EventWatcher(store, clock)
        self.sender = DeliverySender(store, external_url, clock)
        self._builtins = False
        self._last_events = self._last_sweep = float("-inf")

    def on_sample(self, cp: object, cluster: Cluster, sample: Sample) -> None:
        """The sampler's listener (``SampleListener``)."""
        if not self._builtins:  # a sample may come before the first tick
            self._ensure()
        evaluate_sample(self.store, cluster, sample)

    def tick(self) -> None:
        now = self.clock()
        for name, due, part in (("built-in rules", not self._builtins, self._ensure),
                                ("event rules", now - self._last_events >= EVENT_SECONDS, self._events),
                                ("alert sweep", now - self._last_sweep >= SWEEP_SECONDS, self._sweep),
                                ("webhook deliveries", True, self.sender.tick)):
            if not due:
                continue
            try:
                part()
            except Exception:  # noqa: BLE001 - one part's failure is its own; tried again next tick
                log.exception("%s failed", name)

    def _ensure(self) -> None:
        ensure_builtins(self.store, self.clock())
        self._builtins = True

    def _events(self) -> None:
        self._last_events = self.clock()
        self.events.tick()

    def _sweep(self) -> None:
        self._last_sweep = self.clock()
        sweep(self.store, self._last_sweep)

    def stop(self) -> None:
        self.sender.stop()
