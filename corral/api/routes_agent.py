"""/agent/v1: what node agents call. Every call carries the cluster's bearer token."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from corral.agent.protocol import NodePlan, NodeReport, ReportAck
from corral.api.deps import plane
from corral.control import agents
from corral.control.context import ControlPlane
from corral.errors import NotFound

router = APIRouter(tags=["agent"])
# A waiting long poll re-checks this often without a bump, in case a write forgot to bump.
RECHECK_SECONDS = 5.0


async def bearer(authorization: str = Header(default="")) -> str:
    """The bearer token (async: no worker thread for a string check, as ``deps.plane``)."""
    if not authorization.startswith("Bearer "):
        raise agents.Unauthorized("missing bearer token")
    return authorization.removeprefix("Bearer ")


@router.get("/nodes/{node_id}/plan", response_model=NodePlan, responses={204: {"description": "no newer plan yet"}})
async def node_plan(node_id: str, after: int = 0, wait: float = Query(default=0, ge=0, le=60),
                    token: str = Depends(bearer), cp: ControlPlane = Depends(plane)) -> Response:
    """Long poll: answers as soon as the node's plan is newer than ``after``."""
    deadline = time.monotonic() + wait
    ask = True
    while True:
        if ask:
            # The version first: a plan is built only when it is newer.
            cluster_id, version = await run_in_threadpool(agents.plan_version, cp, node_id, token)
            if version > after:
                cluster_id, plan = await run_in_threadpool(agents.current_plan, cp, node_id, token)
                if plan is not None and plan.version > after:
                    return Response(content=plan.model_dump_json(), media_type="application/json")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Response(status_code=204)
        # Woken by a bump: the node's own checks again. Without one, the version every
        # waiting poll shares (one read for all, ``corral.control.plan_versions``) says
        # whether to.
        if await cp.notifier.wait(cluster_id, min(remaining, RECHECK_SECONDS)):
            ask = True
        else:
            shared = await cp.plan_versions.version(cluster_id)
            ask = shared is None or shared > after


@router.post("/nodes/{node_id}/report", response_model=ReportAck)
def node_report(node_id: str, report: NodeReport, token: str = Depends(bearer),
                cp: ControlPlane = Depends(plane)) -> ReportAck:
    return agents.apply_report(cp, node_id, token, report)


@router.post("/steps/{step_id}/logs/{stream}")
async def upload_log(step_id: str, stream: str, request: Request, offset: int = Query(ge=0),
                     token: str = Depends(bearer), cp: ControlPlane = Depends(plane)) -> dict[str, int]:
    if stream not in ("stdout", "stderr"):
        raise NotFound("log stream", stream)
    data = await request.body()
    size = await run_in_threadpool(agents.store_log, cp, step_id, token, stream, offset, data)
    return {"size": size}


@router.get("/clusters/{cluster_id}/artifacts/{sha256}")
def artifact(cluster_id: str, sha256: str, token: str = Depends(bearer), cp: ControlPlane = Depends(plane)) -> FileResponse:
    with cp.store.session() as s:
        agents.authorize_cluster(s, token, cluster_id)
    try:
        path = cp.artifacts.path(sha256)
    except ValueError:
        raise NotFound("artifact", sha256) from None
    if not path.exists():
        raise NotFound("artifact", sha256)
    return FileResponse(path, media_type="application/octet-stream")

