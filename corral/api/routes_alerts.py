"""/api/v1/alerts: rules, alerts and webhooks, thin handlers over ``corral.control.alerts``.

Reads are a viewer's; rule changes an operator's; webhook changes an admin's, as they
send cluster data off the machine (``corral.api.access.required_role``). A webhook's URL
is never answered in full (``corral.alerts.urls.masked``): it may carry its credential.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from corral.alerts.records import spec_of
from corral.alerts.rules import MAX_MESSAGE
from corral.alerts.urls import masked
from corral.api.actions import set_target
from corral.api.deps import plane
from corral.api.paging import Page
from corral.api.schemas import ts
from corral.control import alerts
from corral.control.context import ControlPlane
from corral.store.monitoring import Alert, AlertDelivery, AlertRule, Webhook

router = APIRouter(tags=["alerts"])


class RuleBody(BaseModel):
    """A metric rule (``metric``, ``comparison``, ``threshold``, optional ``for``: seconds or
    ``30s``/``2m``/``1h``) or an event rule (``event_code``); global unless ``cluster_id``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str = Field(max_length=128)
    metric: str | None = Field(default=None, max_length=64)
    comparison: str | None = Field(default=None, max_length=40)
    threshold: float | None = None
    for_: str | float | None = Field(default=None, alias="for")
    severity: str | None = Field(default=None, max_length=16)
    message: str | None = Field(default=None, max_length=MAX_MESSAGE)
    event_code: str | None = Field(default=None, max_length=64)
    cluster_id: str | None = Field(default=None, max_length=16)
    enabled: bool = True


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class RuleOut(BaseModel):
    id: str
    name: str
    cluster_id: str | None  # None: global
    kind: str  # metric | event
    expression: str  # e.g. "MissingBlocks > 0", "LiveDataNodes < 100 for 2m", "event STEP_FAILED"
    metric: str | None
    comparison: str | None
    threshold: float | None
    for_seconds: float
    event_code: str | None
    severity: str
    message: str | None
    builtin: bool
    enabled: bool
    created_at: datetime

    @classmethod
    def of(cls, r: AlertRule) -> "RuleOut":
        return cls(id=r.id, name=r.name, cluster_id=r.cluster_id, kind=r.kind, expression=spec_of(r).expression(),
                   metric=r.metric, comparison=r.comparison, threshold=r.threshold, for_seconds=r.for_seconds or 0.0,
                   event_code=r.event_code, severity=r.severity, message=r.message, builtin=r.builtin,
                   enabled=r.enabled, created_at=ts(r.created_at))  # type: ignore[arg-type]


class AlertOut(BaseModel):
    id: str
    rule_id: str
    name: str  # the rule's (label alertname)
    cluster_id: str
    node_id: str | None
    state: str  # PENDING | FIRING | RESOLVED
    severity: str | None
    value: float | None  # the newest value compared (metric rules)
    summary: str
    labels: dict[str, Any]
    pending_since: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime
    event_id: int | None  # an event rule's alert: the event it fired on

    @classmethod
    def of(cls, a: Alert) -> "AlertOut":
        labels = a.labels or {}
        return cls(id=a.id, rule_id=a.rule_id, name=str(labels.get("alertname", "")), cluster_id=a.cluster_id,
                   node_id=a.node_id, state=a.state, severity=labels.get("severity"), value=a.value, summary=a.summary,
                   labels=labels, pending_since=ts(a.pending_since), fired_at=ts(a.fired_at),  # type: ignore[arg-type]
                   resolved_at=ts(a.resolved_at), updated_at=ts(a.updated_at), event_id=a.event_id)  # type: ignore[arg-type]


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000)
    name: str | None = Field(default=None, max_length=128)
    cluster_id: str | None = Field(default=None, max_length=16)


class WebhookOut(BaseModel):
    id: str
    name: str
    cluster_id: str | None
    url: str  # masked: scheme, host, port and first path segment; *** for the rest
    created_at: datetime

    @classmethod
    def of(cls, w: Webhook) -> "WebhookOut":
        return cls(id=w.id, name=w.name, cluster_id=w.cluster_id, url=masked(w.url),
                   created_at=ts(w.created_at))  # type: ignore[arg-type]


class DeliveryOut(BaseModel):
    id: int
    alert_id: str
    webhook_id: str
    status: str  # firing | resolved
    state: str  # PENDING | DELIVERED | FAILED
    attempts: int
    next_attempt_at: datetime | None  # while PENDING
    response_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, d: AlertDelivery) -> "DeliveryOut":
        return cls(id=d.id, alert_id=d.alert_id, webhook_id=d.webhook_id, status=d.status, state=d.state,
                   attempts=d.attempts, next_attempt_at=ts(d.next_attempt_at) if d.state == "PENDING" else None,
                   response_code=d.response_code, last_error=d.last_error, created_at=ts(d.created_at),  # type: ignore[arg-type]
                   delivered_at=ts(d.delivered_at))


@router.get("/alerts/rules", response_model=list[RuleOut])
def list_rules(cluster_id: str | None = None, cp: ControlPlane = Depends(plane)) -> list[RuleOut]:
    """Every rule, or the global ones and ``cluster_id``'s; global first, by name."""
    return [RuleOut.of(r) for r in alerts.list_rules(cp, cluster_id)]


@router.post("/alerts/rules", response_model=RuleOut, status_code=201)
def add_rule(body: RuleBody, request: Request, cp: ControlPlane = Depends(plane)) -> RuleOut:
    row = alerts.add_rule(cp, alerts.RuleInput(**body.model_dump(by_alias=False)))
    set_target(request, row.id)
    return RuleOut.of(row)


@router.get("/alerts/rules/{rule_id}", response_model=RuleOut)
def get_rule(rule_id: str, cp: ControlPlane = Depends(plane)) -> RuleOut:
    return RuleOut.of(alerts.get_rule(cp, rule_id))


@router.patch("/alerts/rules/{rule_id}", response_model=RuleOut)
def patch_rule(rule_id: str, body: RulePatch, cp: ControlPlane = Depends(plane)) -> RuleOut:
    """Enable or disable (disabling resolves the rule's alerts, telling receivers of fired ones)."""
    return RuleOut.of(alerts.set_rule_enabled(cp, rule_id, body.enabled))


@router.delete("/alerts/rules/{rule_id}", response_model=RuleOut)
def remove_rule(rule_id: str, cp: ControlPlane = Depends(plane)) -> RuleOut:
    """409 for a built-in rule (disable it instead)."""
    return RuleOut.of(alerts.remove_rule(cp, rule_id))


@router.get("/alerts/webhooks", response_model=list[WebhookOut])
def list_webhooks(cluster_id: str | None = None, cp: ControlPlane = Depends(plane)) -> list[WebhookOut]:
    return [WebhookOut.of(w) for w in alerts.list_webhooks(cp, cluster_id)]


@router.post("/alerts/webhooks", response_model=WebhookOut, status_code=201)
def add_webhook(body: WebhookBody, request: Request, cp: ControlPlane = Depends(plane)) -> WebhookOut:
    row = alerts.add_webhook(cp, body.url, body.name, body.cluster_id)
    set_target(request, row.id)
    return WebhookOut.of(row)


@router.delete("/alerts/webhooks/{webhook_id}", response_model=WebhookOut)
def remove_webhook(webhook_id: str, cp: ControlPlane = Depends(plane)) -> WebhookOut:
    return WebhookOut.of(alerts.remove_webhook(cp, webhook_id))


@router.get("/alerts/webhooks/{webhook_id}/deliveries", response_model=list[DeliveryOut])
def list_deliveries(webhook_id: str, response: Response, page: Page = Depends(),
                    cp: ControlPlane = Depends(plane)) -> list[DeliveryOut]:
    """The webhook's deliveries, oldest first, each with its attempts' outcome; paged."""
    after = page.after("deliveries", (int,))
    rows = alerts.list_deliveries(cp, webhook_id, int(after[0]) if after else None, page.limit + 1)
    return [DeliveryOut.of(d) for d in page.answer(response, "deliveries", rows, lambda d: (d.id,))]


@router.get("/alerts", response_model=list[AlertOut])
def list_alerts(response: Response, firing: bool = False,
                state: str | None = Query(default=None, description="PENDING, FIRING or RESOLVED"),
                cluster_id: str | None = None, page: Page = Depends(),
                cp: ControlPlane = Depends(plane)) -> list[AlertOut]:
    """Alerts oldest first (by when their condition began); ``firing=true`` only FIRING ones; paged."""
    after = page.after("alerts", (float, str))
    rows = alerts.list_alerts(cp, state="FIRING" if firing else state, cluster_id=cluster_id,
                              after=(float(after[0]), str(after[1])) if after else None, limit=page.limit + 1)
    return [AlertOut.of(a) for a in page.answer(response, "alerts", rows, lambda a: (a.pending_since, a.id))]


@router.get("/alerts/{alert_id}", response_model=AlertOut)
def get_alert(alert_id: str, cp: ControlPlane = Depends(plane)) -> AlertOut:
    """One alert (the ``generatorURL`` of its notifications)."""
    return AlertOut.of(alerts.get_alert(cp, alert_id))

