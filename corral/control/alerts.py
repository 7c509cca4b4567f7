"""Alert rules, alerts and webhooks: the service functions behind ``/api/v1/alerts``
(``corral.alerts`` evaluates and notifies).

Rules and webhooks are global (``cluster_id`` None) or one cluster's. Names are unique
per scope (409 otherwise: the unique index cannot say it for global rows, whose
``cluster_id`` is NULL). A cluster's rule replaces the global rule of the same name on
that cluster. Built-in rules (``corral.alerts.rules.BUILTINS``) are global, created when
absent, and cannot be removed, only disabled (a removed one would come back at the next
start). Disabling a rule resolves its unresolved metric alerts, with resolved
notifications for those that fired; removing a rule deletes it with its alerts and their
pending deliveries (nothing more is sent: disable it first to tell the receivers).
"""

from __future__ import annotations

from typing import TypeVar

import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from corral import ids
from corral.alerts import records
from corral.alerts.engine import ensure_builtins
from corral.alerts.event_rules import watermark_now
from corral.alerts.rules import validate
from corral.alerts.urls import check_url
from corral.control.context import ControlPlane
from corral.domain.states import AlertState
from corral.errors import Conflict, FieldError, NotFound, ValidationFailed
from corral.store.models import Cluster
from corral.store.monitoring import Alert, AlertDelivery, AlertRule, Webhook

_Scoped = TypeVar("_Scoped", AlertRule, Webhook)  # the rows that are global or a cluster's

MAX_RULES = 1000
MAX_WEBHOOKS = 100
WEBHOOK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")


@dataclass(frozen=True)
class RuleInput:
    """A rule as asked for: ``for_`` is a duration (``2m``) or seconds; the rest as in
    ``corral.alerts.rules.validate``; ``cluster_id`` None for a global rule."""

    name: str
    metric: str | None = None
    comparison: str | None = None
    threshold: float | str | None = None
    for_: str | float | None = None
    severity: str | None = None
    message: str | None = None
    event_code: str | None = None
    cluster_id: str | None = None
    enabled: bool = True


def _check_cluster(s: Session, cluster_id: str | None) -> None:
    if cluster_id is not None and s.get(Cluster, cluster_id) is None:
        raise NotFound("cluster", cluster_id)


def _in_scope(column: object, cluster_id: str | None) -> object:
    return column.is_(None) if cluster_id is None else column == cluster_id  # type: ignore[attr-defined]


def _scope_name(cluster_id: str | None) -> str:
    return "globally" if cluster_id is None else f"on cluster {cluster_id}"


def add_rule(cp: ControlPlane, given: RuleInput) -> AlertRule:
    """422 naming the field at fault, 404 for an unknown cluster, 409 for a name taken in the scope."""
    spec = validate(given.name, metric=given.metric, comparison=given.comparison, threshold=given.threshold,
                    for_=given.for_, severity=given.severity, message=given.message, event_code=given.event_code)
    ensure_builtins(cp.store)
    with cp.store.session() as s:
        _check_cluster(s, given.cluster_id)
        if s.scalar(select(AlertRule.id).where(AlertRule.name == spec.name,
                                               _in_scope(AlertRule.cluster_id, given.cluster_id))):
            raise Conflict(f"an alert rule named {spec.name!r} exists {_scope_name(given.cluster_id)}")
        if (s.scalar(select(func.count()).select_from(AlertRule)) or 0) >= MAX_RULES:
            raise Conflict(f"at most {MAX_RULES} alert rules: remove some first")
        row = AlertRule(id=ids.new_id("ar"), cluster_id=given.cluster_id, name=spec.name, kind=spec.kind,
                        metric=spec.metric, comparison=spec.comparison, threshold=spec.threshold,
                        for_seconds=spec.for_seconds, event_code=spec.event_code, severity=spec.severity.value,
                        message=spec.message, builtin=False, enabled=given.enabled, created_at=time.time(),
                        event_watermark=watermark_now(s) if spec.event_code else None)
        s.add(row)
    return row


def list_rules(cp: ControlPlane, cluster_id: str | None = None) -> list[AlertRule]:
    """Every rule, or with ``cluster_id`` the global ones and that cluster's; global first, by name."""
    ensure_builtins(cp.store)
    return _listed(cp, AlertRule, cluster_id)


def _listed(cp: ControlPlane, model: type[_Scoped], cluster_id: str | None) -> list[_Scoped]:
    """Every row of ``model`` (rules, webhooks), or the global ones and ``cluster_id``'s;
    global first, by name. NotFound for an unknown cluster."""
    with cp.store.session() as s:
        query = select(model)
        if cluster_id is not None:
            _check_cluster(s, cluster_id)
            query = query.where((model.cluster_id.is_(None)) | (model.cluster_id == cluster_id))
        rows = list(s.scalars(query))
    return sorted(rows, key=lambda r: (r.cluster_id is not None, r.cluster_id or "", r.name))


def _one(cp: ControlPlane, model: type[_Scoped], ident: str, kind: str) -> _Scoped:
    with cp.store.session() as s:
        row = s.get(model, ident)
        if row is None:
            raise NotFound(kind, ident)
        return row


def get_rule(cp: ControlPlane, rule_id: str) -> AlertRule:
    return _one(cp, AlertRule, rule_id, "alert rule")


def set_rule_enabled(cp: ControlPlane, rule_id: str, enabled: bool) -> AlertRule:
    """Enable or disable; disabling resolves the rule's unresolved metric alerts now."""
    now = time.time()
    with cp.store.session() as s:
        row = s.get(AlertRule, rule_id)
        if row is None:
            raise NotFound("alert rule", rule_id)
        row.enabled = enabled
        if not enabled:
            for alert in s.scalars(select(Alert).where(Alert.rule_id == rule_id, Alert.state.in_(records.ACTIVE),
                                                       Alert.event_id.is_(None))):
                records.resolve(s, alert, now, "its rule was disabled")
        return row


def remove_rule(cp: ControlPlane, rule_id: str) -> AlertRule:
    """Delete a rule with its alerts and their deliveries; 409 for a built-in rule."""
    with cp.store.session() as s:
        row = s.get(AlertRule, rule_id)
        if row is None:
            raise NotFound("alert rule", rule_id)
        if row.builtin:
            raise Conflict(f"{row.name} is a built-in rule and cannot be removed (it would come back at the next "
                           f"start): disable it instead (`corral alert rule disable {row.id}`)")
        alert_ids = select(Alert.id).where(Alert.rule_id == rule_id)
        s.execute(delete(AlertDelivery).where(AlertDelivery.alert_id.in_(alert_ids)))
        s.execute(delete(Alert).where(Alert.rule_id == rule_id))
        s.delete(row)
    return row


def list_alerts(cp: ControlPlane, *, state: str | None = None, cluster_id: str | None = None,
                after: tuple[float, str] | None = None, limit: int = 1000) -> list[Alert]:
    """Alerts oldest first (by ``pending_since``, then id), after the keyset ``after``;
    ``state`` one of PENDING, FIRING, RESOLVED (422 otherwise)."""
    query = select(Alert)
    if state is not None:
        try:
            query = query.where(Alert.state == AlertState(state.upper()).value)
        except ValueError:
            raise ValidationFailed([FieldError(("state",), f"unknown state {state!r} (known: PENDING, FIRING, "
                                                           "RESOLVED)")], where="query") from None
    with cp.store.session() as s:
        if cluster_id is not None:
            _check_cluster(s, cluster_id)
            query = query.where(Alert.cluster_id == cluster_id)
        if after is not None:
            query = query.where(or_(Alert.pending_since > after[0],
                                    and_(Alert.pending_since == after[0], Alert.id > after[1])))
        return list(s.scalars(query.order_by(Alert.pending_since, Alert.id).limit(limit)))


def get_alert(cp: ControlPlane, alert_id: str) -> Alert:
    with cp.store.session() as s:
        row = s.get(Alert, alert_id)
        if row is None:
            raise NotFound("alert", alert_id)
        return row


def add_webhook(cp: ControlPlane, url: str, name: str | None = None, cluster_id: str | None = None) -> Webhook:
    """422 naming ``url`` or ``name``, 404 for an unknown cluster, 409 for a name taken in
    the scope. ``name`` defaults to the URL's host (and port)."""
    errors: list[FieldError] = []
    try:
        url = check_url(url)
    except ValueError as exc:
        errors.append(FieldError(("url",), str(exc)))
    if name is None and not errors:
        parts = urlsplit(url)
        name = (parts.hostname or "webhook") + (f":{parts.port}" if parts.port else "")
    if name is not None and not WEBHOOK_NAME.match(name):
        errors.append(FieldError(("name",), "at most 128 letters, digits or _ . : @ -, starting with a letter or digit"))
    if errors:
        raise ValidationFailed(errors)
    assert name is not None
    with cp.store.session() as s:
        _check_cluster(s, cluster_id)
        if s.scalar(select(Webhook.id).where(Webhook.name == name, _in_scope(Webhook.cluster_id, cluster_id))):
            raise Conflict(f"a webhook named {name!r} exists {_scope_name(cluster_id)}: give another --name")
        if (s.scalar(select(func.count()).select_from(Webhook)) or 0) >= MAX_WEBHOOKS:
            raise Conflict(f"at most {MAX_WEBHOOKS} webhooks: remove some first")
        row = Webhook(id=ids.new_id("wh"), cluster_id=cluster_id, name=name, url=url, created_at=time.time())
        s.add(row)
    return row


def list_webhooks(cp: ControlPlane, cluster_id: str | None = None) -> list[Webhook]:
    return _listed(cp, Webhook, cluster_id)


def get_webhook(cp: ControlPlane, webhook_id: str) -> Webhook:
    return _one(cp, Webhook, webhook_id, "webhook")


def remove_webhook(cp: ControlPlane, webhook_id: str) -> Webhook:
    """Delete a webhook and its deliveries (pending ones are not sent)."""
    with cp.store.session() as s:
        row = s.get(Webhook, webhook_id)
        if row is None:
            raise NotFound("webhook", webhook_id)
        s.execute(delete(AlertDelivery).where(AlertDelivery.webhook_id == webhook_id))
        s.delete(row)
    return row


def list_deliveries(cp: ControlPlane, webhook_id: str, after: int | None = None, limit: int = 1000) -> list[AlertDelivery]:
    """A webhook's deliveries, oldest first, after delivery id ``after``."""
    get_webhook(cp, webhook_id)
    with cp.store.session() as s:
        query = select(AlertDelivery).where(AlertDelivery.webhook_id == webhook_id)
        if after is not None:
            query = query.where(AlertDelivery.id > after)
        return list(s.scalars(query.order_by(AlertDelivery.id).limit(limit)))
