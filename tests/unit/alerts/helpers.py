"""Shared by the alert tests: an up cluster, its samples, and what the store holds."""

from __future__ import annotations

from sqlalchemy import select

from corral.control.clusters import load_cluster
from corral.control.context import ControlPlane
from corral.metrics.samples import Metric, NodeMetric, Sample
from corral.store.models import Cluster, Event
from corral.store.monitoring import Alert, AlertDelivery
from tests.unit.control.test_groups import _up_cluster

EXTERNAL = "http://corral.test:7420"


def up_cluster(cp: ControlPlane, **overrides: object) -> str:
    return _up_cluster(cp, **overrides)


def cluster_row(cp: ControlPlane, cluster_id: str) -> Cluster:
    with cp.store.session() as s:
        return load_cluster(s, cluster_id)


def sample(at: float, nodes: dict[str, dict[NodeMetric, float]] | None = None, **values: float) -> Sample:
    return Sample(at, {Metric(k): v for k, v in values.items()}, nodes or {})


def alerts(cp: ControlPlane, cluster_id: str | None = None) -> list[Alert]:
    with cp.store.session() as s:
        query = select(Alert).order_by(Alert.pending_since, Alert.id)
        if cluster_id:
            query = query.where(Alert.cluster_id == cluster_id)
        return list(s.scalars(query))


def alert_events(cp: ControlPlane, cluster_id: str) -> list[tuple[str, str]]:
    with cp.store.session() as s:
        return [(e.code, e.message) for e in s.scalars(select(Event).where(
            Event.cluster_id == cluster_id, Event.code.like("ALERT_%")).order_by(Event.id))]


def deliveries(cp: ControlPlane) -> list[AlertDelivery]:
    with cp.store.session() as s:
        return list(s.scalars(select(AlertDelivery).order_by(AlertDelivery.id)))


def count_audit(cp: ControlPlane, action: str) -> int:
    from corral.store.models import AuditRecord

    with cp.store.session() as s:
        return len(list(s.scalars(select(AuditRecord).where(AuditRecord.action == action))))
