"""Event rules: an alert for each new cluster event an enabled event rule matches
(``rules.event_codes``: its code, and ``CLUSTER_<STATE>`` for a state change), FIRING at
once and never resolved.

Nothing is kept in memory: each event rule's ``event_watermark`` (``alert_rules``) is the
newest ``events.id`` it is done with, moved in the same transaction as the alerts made
from the events before it, so a control plane restarted at any point neither misses nor
repeats an event. A rule starts at the newest event when it is created (``watermark_now``):
it alerts on what happens from then on, not on the history.

Events are read past the watermark, but the watermark only moves up to events recorded
``SETTLE_SECONDS`` ago: on PostgreSQL an id is taken at insert and a transaction that took
a lower id may commit after one that took a higher id, so a young event may still get a
neighbour below it. Events above the watermark are looked at again on later passes and
an alert already made from an event (``alerts.event_id``) is not made again.
"""

from __future__ import annotations

import time
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from corral.alerts import records
from corral.alerts.rules import event_codes, source_code
from corral.store.db import Store
from corral.store.models import Cluster, Event
from corral.store.monitoring import Alert, AlertRule

SETTLE_SECONDS = 300.0
BATCH = 500  # events per query
MAX_READ = 5000  # per pass: more matching events than this in SETTLE_SECONDS wait for the older ones to settle


def watermark_now(session: Session) -> int:
    """The newest event's id (0 for none): where a new event rule starts."""
    return int(session.scalar(select(func.max(Event.id))) or 0)


class EventWatcher:
    """``tick()`` evaluates the event rules on the events recorded since their watermarks."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time):
        self.store, self.clock = store, clock

    def tick(self) -> int:
        """One pass; how many alerts fired."""
        now = self.clock()
        fired = 0
        with self.store.session() as s:
            rules = list(s.scalars(select(AlertRule).where(AlertRule.kind == "event")))
            if not rules:
                return 0
            low = min(r.event_watermark or 0 for r in rules)
            codes = {source_code(r.event_code) for r in rules if r.event_code and r.enabled}
            found: list[Event] = []
            while codes and len(found) < MAX_READ:
                batch = list(s.scalars(select(Event).where(Event.id > (found[-1].id if found else low),
                                                           Event.code.in_(codes)).order_by(Event.id).limit(BATCH)))
                found += batch
                if len(batch) < BATCH:
                    break
            settled = int(s.scalar(select(func.max(Event.id)).where(Event.id > low,
                                                                     Event.time <= now - SETTLE_SECONDS)) or low)
            if len(found) >= MAX_READ:  # more to read next pass: move no further than what was read
                settled = min(settled, found[-1].id)
            done: set[tuple[str, int | None]] = set()
            for start in range(0, len(found), BATCH):
                chunk = [event.id for event in found[start:start + BATCH]]
                done.update((rule_id, event_id) for rule_id, event_id in s.execute(
                    select(Alert.rule_id, Alert.event_id).where(Alert.event_id.in_(chunk))))
            clusters = {c.id: c for c in s.scalars(select(Cluster).where(
                Cluster.id.in_({e.cluster_id for e in found})))} if found else {}
            by_cluster: dict[str, list[AlertRule]] = {}
            for event in found:
                cluster = clusters.get(event.cluster_id)
                if cluster is None or cluster.monitoring is False:
                    continue
                if event.cluster_id not in by_cluster:
                    by_cluster[event.cluster_id] = records.pick(
                        r for r in rules if r.cluster_id in (None, event.cluster_id))
                matches = event_codes(event.code, event.message)
                for rule in by_cluster[event.cluster_id]:
                    if (event.id <= (rule.event_watermark or 0) or rule.event_code not in matches
                            or (rule.id, event.id) in done):
                        continue
                    records.fire_event(s, rule, records.Scope(cluster.id, cluster.name), event, now)
                    done.add((rule.id, event.id))
                    fired += 1
            for rule in rules:
                if settled > (rule.event_watermark or 0):
                    rule.event_watermark = settled
        return fired
