"""Prometheus service discovery: every metrics URL of every running cluster, in
Prometheus' ``http_sd`` format (``GET /api/v1/monitoring/targets``).

One target group per endpoint (a group has one ``__metrics_path__``), labelled
``cluster_id``, ``cluster_name``, ``node_id``, ``role``, ``service``, ``component`` (and
``application_id`` for a Spark driver). Only clusters WAITING or RUNNING, only nodes in
service (the MASTER, and nodes RUNNING and not leaving): a terminated cluster's daemons
are gone from the list at once. The endpoints are the daemons' own (``Service.
metrics_endpoints``): Prometheus scrapes them directly, not through the control plane.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from corral.control.context import ControlPlane
from corral.control.views import in_service_view
from corral.domain.states import ClusterState
from corral.services.registry import get_service
from corral.store.models import Cluster

log = logging.getLogger("corral.monitoring")
UP = (ClusterState.WAITING.value, ClusterState.RUNNING.value)
DISCOVERY_TIMEOUT = 2.0  # per daemon asked (the RM, for running Spark drivers)


def _cluster_targets(cluster: Cluster) -> list[dict[str, Any]]:
    view = in_service_view(cluster)
    groups = []
    for name in cluster.services:
        try:
            endpoints = get_service(name).metrics_endpoints(view, timeout=DISCOVERY_TIMEOUT)
        except Exception:  # noqa: BLE001 - one service's failure leaves the others' targets
            log.exception("metrics endpoints of %s from %s failed", cluster.id, name)
            continue
        for e in endpoints:
            labels = {"__metrics_path__": e.path, "cluster_id": cluster.id, "cluster_name": cluster.name,
                      "node_id": e.node_id, "role": e.role.value, "service": name, "component": e.component,
                      **dict(e.labels)}
            groups.append({"targets": [e.address], "labels": labels})
    return groups


def targets(cp: ControlPlane) -> list[dict[str, Any]]:
    """Target groups of every up cluster, clusters asked in parallel."""
    with cp.store.session() as s:
        up = list(s.scalars(select(Cluster).where(Cluster.status.in_(UP)).order_by(Cluster.created_at)
                            .options(selectinload(Cluster.nodes), selectinload(Cluster.groups))))
    if not up:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(up)), thread_name_prefix="discovery") as pool:
        return [group for groups in pool.map(_cluster_targets, up) for group in groups]
