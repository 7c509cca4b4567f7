"""/api/v1/clusters/{id}/metrics: the stored metric history (``corral.control.metrics``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from corral.api.deps import plane
from corral.control import metrics
from corral.control.context import ControlPlane

router = APIRouter(tags=["monitoring"])


class SeriesOut(BaseModel):
    metric: str  # EMR's CloudWatch name (corral.metrics.samples)
    node_id: str | None  # a node metric's node; None for a cluster metric
    unit: str
    points: list[tuple[float, float]]  # [epoch seconds, value], oldest first


class MetricsOut(BaseModel):
    cluster_id: str
    start: float
    end: float
    step: float | None
    series: list[SeriesOut]


@router.get("/clusters/{cluster_id}/metrics", response_model=MetricsOut)
def get_metrics(cluster_id: str,
                names: str | None = Query(default=None, max_length=4000,
                                          description="comma-separated metric names (EMR's: AppsRunning, "
                                                      "MemoryAllocatedMB, CPUUtilization, ...); all when absent"),
                start: str | None = Query(default=None, max_length=40,
                                          description="epoch seconds, or a duration back from now (1h); default end - 1h"),
                end: str | None = Query(default=None, max_length=40, description="epoch seconds or a duration; default now"),
                step: str | None = Query(default=None, max_length=40,
                                         description="average into buckets of this width (60, 5m); raw points when absent"),
                node_id: str | None = Query(default=None, max_length=16, description="only this node's series"),
                cp: ControlPlane = Depends(plane)) -> MetricsOut:
    """Samples every 10 s kept for 24 h, 5-minute averages for 14 days (``corral.metrics.history``)."""
    wanted = [n for n in names.split(",") if n.strip()] if names else None
    answer = metrics.query(cp, cluster_id, wanted, start, end, step, node_id=node_id)
    return MetricsOut(cluster_id=answer.cluster_id, start=answer.start, end=answer.end, step=answer.step,
                      series=[SeriesOut(metric=s.metric, node_id=s.node_id, unit=s.unit, points=s.points)
                              for s in answer.series])
