"""Alert transitions written to the store: the ``alerts`` row, the cluster event that
records it (ALERT_PENDING / ALERT_FIRING / ALERT_RESOLVED, with the value) and, for a
transition receivers hear of, one ``alert_deliveries`` row per webhook, all in the
caller's transaction. So a control plane killed at any point has either the transition
with its notifications to send, or neither: none is lost, and none is made twice.

Which rules apply to a cluster (``effective_rules``): the global ones and the cluster's
own, where a cluster rule replaces the global rule of the same name on that cluster (a
different threshold there, or, disabled, none). Labels follow Prometheus' conventions
(``alertname`` is the rule's name) so Alertmanager receivers route and group them as usual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from corral import ids
from corral.alerts import notify
from corral.alerts.evaluate import Current, Transition
from corral.alerts.rules import RuleSpec, Severity, duration, number, render
from corral.control import events
from corral.domain.states import AlertState
from corral.store.models import Event
from corral.store.monitoring import Alert, AlertRule

ACTIVE = (AlertState.PENDING.value, AlertState.FIRING.value)


@dataclass(frozen=True)
class Scope:
    """The cluster an alert is about."""

    cluster_id: str
    cluster_name: str


def spec_of(rule: AlertRule) -> RuleSpec:
    return RuleSpec(name=rule.name, severity=Severity(rule.severity), metric=rule.metric, comparison=rule.comparison,
                    threshold=rule.threshold, for_seconds=rule.for_seconds or 0.0, event_code=rule.event_code,
                    message=rule.message)


def pick(rows: Iterable[AlertRule]) -> list[AlertRule]:
    """The enabled rules in effect on one cluster out of its global and own ``rows``: per
    name the cluster's rule when there is one."""
    by_name: dict[str, AlertRule] = {}
    for row in sorted(rows, key=lambda r: (r.cluster_id is not None, r.created_at)):
        by_name[row.name] = row
    return [r for r in by_name.values() if r.enabled]


def effective_rules(session: Session, cluster_id: str, kind: str) -> list[AlertRule]:
    rows = session.scalars(select(AlertRule).where(
        AlertRule.kind == kind, or_(AlertRule.cluster_id.is_(None), AlertRule.cluster_id == cluster_id)))
    return pick(rows)


def active_alerts(session: Session, cluster_id: str) -> list[Alert]:
    """The cluster's metric alerts not yet RESOLVED (event alerts never resolve)."""
    return list(session.scalars(select(Alert).where(Alert.cluster_id == cluster_id, Alert.state.in_(ACTIVE),
                                                    Alert.event_id.is_(None))))


def current_of(alert: Alert) -> Current:
    return Current(AlertState(alert.state), alert.pending_since, alert.value)


def labels_for(rule: AlertRule, scope: Scope, node_id: str | None = None,
               extra: dict[str, str] | None = None) -> dict[str, str]:
    labels = {"alertname": rule.name, "cluster_id": scope.cluster_id, "cluster_name": scope.cluster_name,
              "severity": rule.severity}
    if rule.metric:
        labels["metric"] = rule.metric
    if rule.event_code:
        labels["event_code"] = rule.event_code
    if node_id:
        labels["node_id"] = node_id
    labels.update(extra or {})
    return labels


def _fields(spec: RuleSpec, scope: Scope, value: float | None, node_id: str | None,
            event: str | None = None) -> dict[str, Any]:
    return {"value": value, "threshold": spec.threshold, "metric": spec.metric, "comparison": spec.comparison,
            "for": duration(spec.for_seconds), "node_id": node_id, "cluster_id": scope.cluster_id,
            "cluster_name": scope.cluster_name, "rule": spec.name, "event": event}


def summary_of(spec: RuleSpec, scope: Scope, value: float | None, node_id: str | None) -> str:
    default = f"{spec.metric} is {number(value)}" + (f" on node {node_id}" if node_id else "")
    if value is None:  # a template's {value:g} cannot show "no data"
        return default
    return render(spec.message, _fields(spec, scope, value, node_id), default)


def _record(session: Session, alert: Alert, spec: RuleSpec, state: AlertState, text: str, now: float,
            node_id: str | None = None, step_id: str | None = None) -> None:
    level = "INFO"
    if state is AlertState.FIRING:
        level = "ERROR" if spec.severity is Severity.critical else "WARN"
    where = f" on node {alert.node_id}" if alert.node_id else ""
    events.record(session, alert.cluster_id, f"ALERT_{state.value}",
                  f"alert {spec.name} ({alert.id}) is {state.value}{where}: {text}", level=level,
                  node_id=node_id or alert.node_id, step_id=step_id, at=now)


def apply(session: Session, rule: AlertRule, scope: Scope, t: Transition, alert: Alert | None, now: float) -> Alert | None:
    """Write one metric rule's transition (``corral.alerts.evaluate``) for series ``t.key``;
    ``alert``: that series' unresolved alert, if any. Returns the alert row."""
    spec = spec_of(rule)
    if t.to is AlertState.RESOLVED:
        if alert is not None:
            resolve(session, alert, now, t.reason or f"{spec.metric} is {number(t.value)}", value=t.value)
        return alert
    summary = summary_of(spec, scope, t.value, t.key)
    if alert is None:
        alert = Alert(id=ids.new_id("al"), rule_id=rule.id, cluster_id=scope.cluster_id, node_id=t.key,
                      state=(t.to or AlertState.PENDING).value, value=t.value, summary=summary,
                      labels=labels_for(rule, scope, t.key), pending_since=now, updated_at=now)
        session.add(alert)
    else:
        AlertState(alert.state).check_transition(t.to or AlertState(alert.state))
    alert.value, alert.summary, alert.updated_at = t.value, summary, now
    if t.to is None:
        return alert
    alert.state = t.to.value
    detail = f"{summary} ({spec.expression()}; value {number(t.value)})"
    _record(session, alert, spec, t.to, detail, now)
    if t.to is AlertState.FIRING:
        alert.fired_at = now
        notify.enqueue(session, alert, notify.FIRING, now)
    return alert


def resolve(session: Session, alert: Alert, now: float, reason: str, value: float | None = None) -> None:
    """RESOLVED with an event; receivers are told only when it was FIRING (``evaluate``)."""
    was = AlertState(alert.state)
    if was is AlertState.RESOLVED:
        return
    was.check_transition(AlertState.RESOLVED)
    rule = session.get(AlertRule, alert.rule_id)
    alert.state, alert.resolved_at, alert.updated_at = AlertState.RESOLVED.value, now, now
    if value is not None:
        alert.value = value
    spec = spec_of(rule) if rule is not None else RuleSpec(name=alert.labels.get("alertname", "?"))
    quiet = "" if was is AlertState.FIRING else " (it was PENDING and never fired: nobody is notified)"
    _record(session, alert, spec, AlertState.RESOLVED, reason + quiet, now)
    if was is AlertState.FIRING:
        notify.enqueue(session, alert, notify.RESOLVED, now)


def fire_event(session: Session, rule: AlertRule, scope: Scope, event: Event, now: float) -> Alert:
    """An event rule's alert for ``event``: FIRING at once, from the event's time, never resolved."""
    spec = spec_of(rule)
    extra = {"event_id": str(event.id)}
    if event.step_id:
        extra["step_id"] = event.step_id
    summary = render(spec.message, _fields(spec, scope, None, event.node_id, event.message), event.message)
    alert = Alert(id=ids.new_id("al"), rule_id=rule.id, cluster_id=scope.cluster_id, node_id=event.node_id,
                  state=AlertState.FIRING.value, value=None, summary=summary,
                  labels=labels_for(rule, scope, event.node_id, extra), pending_since=event.time,
                  fired_at=event.time, updated_at=now, event_id=event.id)
    session.add(alert)
    _record(session, alert, spec, AlertState.FIRING, f"{summary} (event {event.code} #{event.id})", now,
            step_id=event.step_id)
    notify.enqueue(session, alert, notify.FIRING, now)
    return alert
