"""Notifications: alert transitions POSTed to webhooks in Alertmanager's webhook format,
so receivers written for Alertmanager (``webhook_configs``) work unchanged.

The body (Alertmanager's ``notify/webhook`` ``Message``, version "4")::

    {"version": "4", "groupKey": "{}:{alertname=\\"MissingBlocks\\", cluster_id=\\"c-..\\"}",
     "truncatedAlerts": 0, "status": "firing" | "resolved", "receiver": <webhook name>,
     "groupLabels": {"alertname": .., "cluster_id": ..}, "commonLabels": {..},
     "commonAnnotations": {..}, "externalURL": <the control plane's URL>,
     "alerts": [{"status": .., "labels": {..}, "annotations": {"summary": .., "description": ..},
                 "startsAt": RFC 3339, "endsAt": RFC 3339 (the zero time while firing),
                 "generatorURL": <control plane>/api/v1/alerts/<id>, "fingerprint": 16 hex digits}]}

One delivery (``alert_deliveries`` row) is one transition of one alert to one webhook,
and its body carries that one alert. Rows are written with the transition
(``enqueue``, the caller's transaction); ``DeliverySender`` sends the due ones on a pool
of its own keyed by webhook (``corral.reconcile.workers.KeyedPool``), so a webhook that
hangs holds one worker and delays no other webhook, no alert and no reconcile pass.

Each attempt's outcome is recorded on the row (``attempts``, ``response_code``,
``last_error``, ``delivered_at``). As Alertmanager's notifier does, a 2xx answer delivers,
a 5xx, 408 or 429 answer or a connection failure is retried, with exponential backoff
(``BACKOFF_FIRST`` doubling to ``BACKOFF_MAX``) until ``GIVE_UP_SECONDS`` after the
transition (then FAILED), and any other answer (a 4xx: the receiver refuses this body and
would refuse it again) fails at once. A FAILED delivery records an ALERT_DELIVERY_FAILED
event. Per webhook and alert, a resolved notification is never sent before the firing one
still being retried. A control plane killed after a receiver's 2xx and before the row is
updated sends that notification again on restart: delivery is at least once (receivers
deduplicate by ``fingerprint``, as with Alertmanager's own retries).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any, Callable

import httpx
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from corral.alerts.urls import masked, scrub
from corral.control import events
from corral.reconcile.workers import KeyedPool
from corral.store.db import Store
from corral.store.monitoring import Alert, AlertDelivery, AlertRule, Webhook

log = logging.getLogger("corral.alerts")
FIRING, RESOLVED = "firing", "resolved"  # Alertmanager's statuses
PENDING, DELIVERED, FAILED = "PENDING", "DELIVERED", "FAILED"  # a delivery's state
TIMEOUT = 5.0  # seconds per POST (connect, read, write)
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 300.0
GIVE_UP_SECONDS = 86_400.0
WORKERS = 4
BATCH = 50  # deliveries of one webhook per job
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time: what Alertmanager sends as a firing alert's endsAt
RETRIED_CODES = frozenset({408, 429})


def backoff(attempts: int, first: float = BACKOFF_FIRST, cap: float = BACKOFF_MAX) -> float:
    """Seconds before attempt ``attempts + 1``: first, 2 first, 4 first, ... at most cap."""
    return min(cap, first * 2 ** max(0, attempts - 1))


def enqueue(session: Session, alert: Alert, status: str, now: float) -> int:
    """One PENDING delivery of ``alert``'s ``status`` to each webhook of its cluster and each
    global one, due now; how many."""
    hooks = session.scalars(select(Webhook.id).where(or_(Webhook.cluster_id.is_(None),
                                                         Webhook.cluster_id == alert.cluster_id)))
    count = 0
    for hook_id in hooks:
        session.add(AlertDelivery(alert_id=alert.id, webhook_id=hook_id, status=status, state=PENDING, attempts=0,
                                  next_attempt_at=now, created_at=now))
        count += 1
    return count


def rfc3339(epoch: float | None) -> str:
    if epoch is None:
        return ZERO_TIME
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's alert fingerprint: FNV-1a 64 over the sorted label names and values,
    each followed by the 0xff separator (prometheus/common ``model.LabelSet.Fingerprint``)."""
    h = 14695981039346656037
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode() + b"\xff":
                h = ((h ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def _label_string(labels: dict[str, str]) -> str:
    """Prometheus' ``LabelSet.String()``: ``{a="1", b="2"}``."""
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def payload(alert: Alert, status: str, receiver: str, external_url: str, description: str | None = None) -> dict[str, Any]:
    """Alertmanager's webhook message for one alert (the module's docstring has its shape)."""
    labels = {str(k): str(v) for k, v in (alert.labels or {}).items()}
    annotations = {"summary": alert.summary}
    if description:
        annotations["description"] = description
    group = {k: labels[k] for k in ("alertname", "cluster_id") if k in labels}
    item = {"status": status, "labels": labels, "annotations": annotations,
            "startsAt": rfc3339(alert.fired_at or alert.pending_since),
            "endsAt": rfc3339(alert.resolved_at) if status == RESOLVED else ZERO_TIME,
            "generatorURL": f"{external_url}/api/v1/alerts/{alert.id}", "fingerprint": fingerprint(labels)}
    return {"version": "4", "groupKey": "{}:" + _label_string(group), "truncatedAlerts": 0, "status": status,
            "receiver": receiver, "groupLabels": group, "commonLabels": labels, "commonAnnotations": annotations,
            "externalURL": external_url, "alerts": [item]}


def _describe(alert: Alert, rule: AlertRule | None) -> str:
    """``MissingBlocks > 0; value 3``: the rule's condition and the newest value compared."""
    from corral.alerts.records import spec_of  # records imports this module

    what = spec_of(rule).expression() if rule is not None else str(alert.labels.get("alertname", "?"))
    return what + ("" if alert.value is None else f"; value {alert.value:g}")


class DeliverySender:
    """Sends due deliveries; ``tick()`` from the reconcile loop, ``stop()`` at shutdown.
    ``clock`` (epoch seconds) decides what is due and stamps outcomes; tests pass theirs."""

    def __init__(self, store: Store, external_url: str, clock: Callable[[], float] = time.time,
                 workers: int = WORKERS, timeout: float = TIMEOUT, first: float = BACKOFF_FIRST,
                 cap: float = BACKOFF_MAX, give_up: float = GIVE_UP_SECONDS):
        self.store, self.external_url, self.clock = store, external_url.rstrip("/"), clock
        self.first, self.cap, self.give_up = first, cap, give_up
        self.pool = KeyedPool(workers, "alert-webhook")
        # No proxy from the environment (Alertmanager's default too) and no redirects: the
        # body goes to the URL the admin registered, nowhere else.
        self.http = httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False)

    def tick(self) -> int:
        """Start a job for each webhook with a due delivery and none in flight; how many."""
        now = self.clock()
        with self.store.session() as s:
            hooks = list(s.scalars(select(AlertDelivery.webhook_id).where(
                AlertDelivery.state == PENDING, AlertDelivery.next_attempt_at <= now).distinct()))
        started = 0
        for hook_id in hooks:
            if self.pool.submit(hook_id, lambda h=hook_id: self.send_due(h)) is not None:
                started += 1
        return started

    def send_due(self, webhook_id: str) -> int:
        """Send the webhook's due deliveries, oldest first, until one fails (the webhook is
        down: the rest wait for the next job); how many were delivered."""
        delivered = 0
        for delivery_id in self._due(webhook_id):
            ok = self._attempt(delivery_id)
            if ok is None:
                continue
            if not ok:
                break
            delivered += 1
        return delivered

    def _due(self, webhook_id: str) -> list[int]:
        now = self.clock()
        with self.store.session() as s:
            rows = s.execute(select(AlertDelivery.id, AlertDelivery.alert_id, AlertDelivery.next_attempt_at)
                             .where(AlertDelivery.webhook_id == webhook_id, AlertDelivery.state == PENDING)
                             .order_by(AlertDelivery.id).limit(BATCH * 4)).all()
        due, waiting = [], set()
        for delivery_id, alert_id, at in rows:
            if alert_id in waiting:
                continue  # an earlier notification of this alert waits for its retry: keep the order
            if at > now:
                waiting.add(alert_id)
                continue
            due.append(delivery_id)
        return due[:BATCH]

    def _attempt(self, delivery_id: int) -> bool | None:
        """One POST; True delivered, False failed (retried later or given up), None gone."""
        with self.store.session() as s:
            row = s.get(AlertDelivery, delivery_id)
            if row is None or row.state != PENDING:
                return None
            alert, hook = s.get(Alert, row.alert_id), s.get(Webhook, row.webhook_id)
            if alert is None or hook is None:
                return None
            body = payload(alert, row.status, hook.name, self.external_url,
                           _describe(alert, s.get(AlertRule, alert.rule_id)))
            url, shown = hook.url, masked(hook.url)
        code, error = None, None
        try:
            resp = self.http.post(url, json=body, headers={"User-Agent": "corral-alerts"})
            code = resp.status_code
            if not 200 <= code < 300:
                error = f"HTTP {code} {resp.reason_phrase}"
        except httpx.HTTPError as exc:
            error = scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, url)
        except Exception as exc:  # noqa: BLE001 - recorded like a failed attempt, never raised into the pool
            error = scrub(f"{type(exc).__name__}: {exc}", url)
        return self._outcome(delivery_id, code, error, shown)

    def _outcome(self, delivery_id: int, code: int | None, error: str | None, shown: str) -> bool | None:
        now = self.clock()
        with self.store.session() as s:
            row = s.get(AlertDelivery, delivery_id)
            if row is None:
                return None  # its webhook or alert was removed meanwhile
            row.attempts += 1
            row.response_code, row.last_error = code, error
            if error is None:
                row.state, row.delivered_at = DELIVERED, now
                return True
            retried = code is None or code >= 500 or code in RETRIED_CODES
            next_at = now + backoff(row.attempts, self.first, self.cap)
            if retried and next_at - row.created_at <= self.give_up:
                row.next_attempt_at = next_at
                log.info("alert delivery %d to %s failed (%s); retried in %.0f s", row.id, shown, error, next_at - now)
                return False
            row.state = FAILED
            alert = s.get(Alert, row.alert_id)
            why = "given up after " + (f"{row.attempts} attempts" if retried else "a refusal that is not retried")
            log.warning("alert delivery %d to %s failed: %s; %s", row.id, shown, error, why)
            if alert is not None:
                events.record(s, alert.cluster_id, "ALERT_DELIVERY_FAILED",
                              f"the {row.status} notification of alert {alert.id} to webhook {row.webhook_id} "
                              f"({shown}) failed: {error}; {why}", level="WARN", at=now)
            return False

    def wait_idle(self, timeout: float = 30.0) -> None:
        self.pool.wait_idle(timeout)

    def stop(self) -> None:
        self.pool.stop()
        self.http.close()
