"""Tables of monitoring: metric history in chunks, alert rules, alerts, webhooks and
their deliveries (``corral.metrics``, ``corral.alerts``). Times are epoch seconds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from corral.secretbox import EncryptedText
from corral.store.models import Base


class MetricChunk(Base):
    """A run of one cluster's samples at one resolution (``corral.metrics.history``).

    Not one row per sample: a chunk holds every series of the cluster from ``start`` to
    ``end`` (at most ``metrics.history.Retention``'s chunk span), packed and compressed in
    ``data``; the open chunk is rewritten as samples arrive, and whole chunks are deleted
    when they age out, so the table's size follows the retention, not the uptime."""

    __tablename__ = "metric_chunks"
    __table_args__ = (Index("ix_metric_chunks_cluster_res_start", "cluster_id", "resolution", "start", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cluster_id: Mapped[str] = mapped_column(String(16))
    resolution: Mapped[int] = mapped_column(Integer)  # seconds between points: the sampling interval, or the rollup step
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float, index=True)  # the newest point's time
    points: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class AlertRule(Base):
    """``corral.alerts.rules``: a metric rule (``metric`` ``comparison`` ``threshold`` for
    ``for_seconds``) or an event rule (``event_code``); global when ``cluster_id`` is None."""

    __tablename__ = "alert_rules"
    __table_args__ = (Index("ix_alert_rules_scope_name", "cluster_id", "name", unique=True),)

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    cluster_id: Mapped[str | None] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(8))  # metric | event
    metric: Mapped[str | None] = mapped_column(String(64))
    comparison: Mapped[str | None] = mapped_column(String(4))
    threshold: Mapped[float | None] = mapped_column(Float)
    for_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    event_code: Mapped[str | None] = mapped_column(String(64))
    # An event rule's watermark: the newest ``events.id`` it has looked at for good
    # (``corral.alerts.event_rules``), so a restart neither repeats nor skips an event.
    event_watermark: Mapped[int | None] = mapped_column(Integer)
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float] = mapped_column(Float)


class Alert(Base):
    """One rule's alert on one cluster (and node, for per-node metrics): PENDING -> FIRING
    -> RESOLVED (``corral.domain.states.AlertState``); an event rule's alert is FIRING once."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_rule_cluster_state", "rule_id", "cluster_id", "state"),)

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    rule_id: Mapped[str] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    cluster_id: Mapped[str] = mapped_column(String(16), index=True)
    node_id: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    value: Mapped[float | None] = mapped_column(Float)
    summary: Mapped[str] = mapped_column(Text)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pending_since: Mapped[float] = mapped_column(Float)
    fired_at: Mapped[float | None] = mapped_column(Float)
    resolved_at: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    event_id: Mapped[int | None] = mapped_column(Integer)  # an event rule's: the event it fired on
    # Optimistic locking: the sampler's evaluation, a rule being disabled and the sweep of
    # ended clusters may change one alert at once; the later writer's transaction fails
    # (StaleDataError) and is evaluated again on fresh rows, instead of overwriting a
    # RESOLVED with a FIRING (and notifying so).
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}


class Webhook(Base):
    """A receiver of alert notifications in Alertmanager's webhook format; global when
    ``cluster_id`` is None."""

    __tablename__ = "alert_webhooks"
    __table_args__ = (Index("ix_alert_webhooks_scope_name", "cluster_id", "name", unique=True),)

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    cluster_id: Mapped[str | None] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(EncryptedText)  # may carry a token: encrypted at rest, shown masked
    created_at: Mapped[float] = mapped_column(Float)


class AlertDelivery(Base):
    """One notification of one alert transition (firing or resolved) to one webhook,
    retried with backoff until delivered or given up; each attempt's outcome is kept."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("alert_webhooks.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))  # firing | resolved (Alertmanager's)
    state: Mapped[str] = mapped_column(String(16))  # PENDING | DELIVERED | FAILED
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)
    response_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
    delivered_at: Mapped[float | None] = mapped_column(Float)
