"""/api/v1/clusters: thin handlers over corral.control.clusters."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict

from corral.api.actions import set_target
from corral.api.deps import plane
from corral.api.paging import Page
from corral.api.schemas import ClusterDetail, ClusterSummary, EffectiveConfig, EventOut, OperationOut, effective_configs
from corral.control import clusters
from corral.control.context import ControlPlane
from corral.domain.catalog import INSTANCE_TYPES, RELEASES
from corral.domain.spec import AutoTermination, ClusterSpec

router = APIRouter(tags=["clusters"])


@router.post("/clusters", response_model=ClusterDetail, status_code=201)
def create_cluster(spec: ClusterSpec, request: Request, response: Response,
                   cp: ControlPlane = Depends(plane)) -> ClusterDetail:
    cluster, created = clusters.create_cluster(cp, spec)
    set_target(request, cluster.id)
    if not created:
        response.status_code = 200
    return ClusterDetail.of(clusters.get_cluster(cp, cluster.id))


@router.get("/clusters", response_model=list[ClusterSummary])
def list_clusters(response: Response, state: list[str] | None = Query(default=None), page: Page = Depends(),
                  cp: ControlPlane = Depends(plane)) -> list[ClusterSummary]:
    """Clusters newest first; paged (``corral.paging``)."""
    after = page.after("clusters", (float, str))
    rows = clusters.list_clusters(cp, state, after=(after[0], after[1]) if after else None, limit=page.limit + 1)
    return [ClusterSummary.of(c) for c in page.answer(response, "clusters", rows, lambda c: (c.created_at, c.id))]


@router.get("/clusters/{cluster_id}", response_model=ClusterDetail)
def describe_cluster(cluster_id: str, cp: ControlPlane = Depends(plane)) -> ClusterDetail:
    return ClusterDetail.of(clusters.get_cluster(cp, cluster_id))


@router.get("/clusters/{cluster_id}/configurations", response_model=list[EffectiveConfig])
def cluster_configurations(cluster_id: str, cp: ControlPlane = Depends(plane)) -> list[EffectiveConfig]:
    return effective_configs(clusters.get_cluster(cp, cluster_id))


class ClusterUpdate(BaseModel):
    """What changes on a running cluster: ``auto_termination`` (``{idle_timeout: seconds}``,
    60..604800, or null for off)."""

    model_config = ConfigDict(extra="forbid")
    auto_termination: AutoTermination | None


@router.patch("/clusters/{cluster_id}", response_model=ClusterDetail)
def update_cluster(cluster_id: str, body: ClusterUpdate, cp: ControlPlane = Depends(plane)) -> ClusterDetail:
    timeout = body.auto_termination.idle_timeout if body.auto_termination else None
    return ClusterDetail.of(clusters.update_cluster(cp, cluster_id, timeout))


@router.post("/clusters/{cluster_id}/terminate", response_model=ClusterDetail, status_code=202)
def terminate_cluster(cluster_id: str, cp: ControlPlane = Depends(plane)) -> ClusterDetail:
    return ClusterDetail.of(clusters.terminate_cluster(cp, cluster_id))


@router.delete("/clusters/{cluster_id}", response_model=ClusterDetail, status_code=202)
def delete_cluster(cluster_id: str, cp: ControlPlane = Depends(plane)) -> ClusterDetail:
    return ClusterDetail.of(clusters.terminate_cluster(cp, cluster_id))


@router.get("/clusters/{cluster_id}/events", response_model=list[EventOut])
def cluster_events(cluster_id: str, response: Response,
                   after: int = Query(default=0, ge=0, description="only events with a higher id (to follow new ones)"),
                   page: Page = Depends(), cp: ControlPlane = Depends(plane)) -> list[EventOut]:
    """The cluster's events, oldest first; paged (``corral.paging``)."""
    marker = page.after("events", (int,))
    start = max(after, int(marker[0])) if marker else after
    rows = clusters.list_events(cp, cluster_id, start, page.limit + 1)
    return [EventOut.of(e) for e in page.answer(response, "events", rows, lambda e: (e.id,))]


@router.get("/clusters/{cluster_id}/operations", response_model=list[OperationOut])
def cluster_operations(cluster_id: str, cp: ControlPlane = Depends(plane)) -> list[OperationOut]:
    return [OperationOut.of(o) for o in clusters.list_operations(cp, cluster_id)]


@router.get("/releases", tags=["catalog"])
def releases() -> list[dict[str, object]]:
    return [{"label": r.label, "spark_version": r.spark_version, "java": r.java_major, "services": list(r.services)}
            for r in RELEASES.values()]


@router.get("/instance-types", tags=["catalog"])
def instance_types() -> list[dict[str, object]]:
    return [{"name": t.name, "vcpus": t.vcpus, "memory_mib": t.memory_mib} for t in INSTANCE_TYPES.values()]
