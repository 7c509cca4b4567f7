"""/api/v1/monitoring: Prometheus' HTTP service discovery (``corral.control.monitoring``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from corral.api.deps import plane
from corral.control import monitoring
from corral.control.context import ControlPlane

router = APIRouter(tags=["monitoring"])


@router.get("/monitoring/targets")
def targets(cp: ControlPlane = Depends(plane)) -> list[dict[str, Any]]:
    """Prometheus ``http_sd_configs`` answer: ``[{"targets": ["host:port"], "labels": {...}}]``,
    one group per daemon endpoint of every running cluster."""
    return monitoring.targets(cp)
