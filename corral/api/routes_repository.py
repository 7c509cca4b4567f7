"""/agent/v1/repository: the runtime repository (``corral.control.repository``) for hosts
with no internet. Every call carries the agent token of a cluster not yet terminated.

- ``GET /repository/bundles/{kind}`` (``agent`` or ``runtime-<release>``): the bundle's
  files (name, sha256, size) and digest; 503 with Retry-After while it is being built.
- ``GET /repository/{sha256}``: the file, streamed; ``Range`` requests resume a download.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel

from corral.api.deps import plane
from corral.api.routes_agent import bearer
from corral.control import agents
from corral.control.context import ControlPlane
from corral.control.repository import NotReady
from corral.errors import NotFound

router = APIRouter(tags=["agent"])


class ArtifactOut(BaseModel):
    name: str  # the file's name on the host (a wheel's is a valid wheel file name)
    sha256: str
    size: int  # bytes


class BundleOut(BaseModel):
    kind: str
    digest: str  # sha256 over the artifacts' names and hashes
    size: int  # bytes, all artifacts
    artifacts: list[ArtifactOut]


def _authorized(cp: ControlPlane, token: str) -> None:
    with cp.store.session() as s:
        agents.authorize_any(s, token)


@router.get("/repository/bundles/{kind}", response_model=BundleOut,
            responses={503: {"description": "being built: retry after Retry-After seconds"}})
async def bundle(kind: str, token: str = Depends(bearer), cp: ControlPlane = Depends(plane)) -> BundleOut | JSONResponse:
    await run_in_threadpool(_authorized, cp, token)
    try:
        found = await run_in_threadpool(cp.repository.bundle, kind)
    except NotReady as exc:
        return JSONResponse(status_code=503, content={"detail": str(exc)},
                            headers={"Retry-After": str(exc.retry_after)})
    return BundleOut(kind=kind, digest=found.digest, size=found.size,
                     artifacts=[ArtifactOut(name=a.name, sha256=a.sha256, size=a.size)
                                for a in sorted(found.artifacts, key=lambda a: a.name)])


@router.get("/repository/{sha256}")
def artifact(sha256: str, token: str = Depends(bearer), cp: ControlPlane = Depends(plane)) -> FileResponse:
    _authorized(cp, token)
    found = cp.repository.artifact(sha256)
    if found is None:
        raise NotFound("repository artifact", sha256)
    return FileResponse(found.path, media_type="application/octet-stream", filename=found.name)
