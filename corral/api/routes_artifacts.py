"""/api/v1/artifacts/{sha256}: clients upload the local files of their steps and
bootstrap actions here, content-addressed, before naming them in a request.

``HEAD`` says whether the content is stored (so an unchanged file is not sent again) and
carries the size limit; ``PUT`` streams the body into the store, checking its sha256 and
size as it arrives. Nothing here reads a path of the control plane's own disk.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from corral.api.deps import plane
from corral.control.context import ControlPlane
from corral.control.files import ArtifactMismatch, ArtifactTooLarge

router = APIRouter(tags=["artifacts"])
LIMIT_HEADER = "X-Corral-Artifact-Limit"  # bytes
Sha256Param = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="sha256 of the content, lowercase hex")]
_BUFFER = 1 << 20  # the body is written to disk in pieces of about this size, off the event loop


class ArtifactOut(BaseModel):
    sha256: str
    size: int  # bytes


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, detail=f"an uploaded file may have at most {limit / (1 << 20):.0f} MiB on this server "
                                     "(its CORRAL_MAX_ARTIFACT_MB)")


@router.head("/artifacts/{sha256}", responses={200: {"description": "stored"}, 404: {"description": "not stored"}})
def artifact_status(sha256: Sha256Param, cp: ControlPlane = Depends(plane)) -> Response:
    size = cp.artifacts.size(sha256)
    headers = {LIMIT_HEADER: str(cp.settings.max_artifact_bytes)}
    if size is None:
        return Response(status_code=404, headers=headers)
    return Response(status_code=200, headers={**headers, "Content-Length": str(size)})


@router.put("/artifacts/{sha256}", response_model=ArtifactOut, status_code=201,
            responses={200: {"description": "already stored"}, 413: {"description": "over the size limit"},
                       422: {"description": "the body's sha256 differs"}})
async def upload_artifact(sha256: Sha256Param, request: Request, response: Response,
                          cp: ControlPlane = Depends(plane)) -> ArtifactOut:
    """Store the request body (``application/octet-stream``) as artifact ``sha256``."""
    limit = cp.settings.max_artifact_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    stored = cp.artifacts.size(sha256)
    if stored is not None:
        async for _ in request.stream():  # read, not kept: a client mid-send must not see a reset
            pass
        response.status_code = 200
        return ArtifactOut(sha256=sha256, size=stored)
    upload = await run_in_threadpool(cp.artifacts.upload, sha256, limit)
    try:
        buffer = bytearray()
        async for chunk in request.stream():
            buffer += chunk
            if len(buffer) >= _BUFFER:
                await run_in_threadpool(upload.write, bytes(buffer))
                buffer.clear()
        await run_in_threadpool(upload.write, bytes(buffer))
        await run_in_threadpool(upload.commit)
    except ArtifactTooLarge:
        upload.abort()
        raise _too_large(limit) from None
    except ArtifactMismatch as exc:
        upload.abort()
        raise HTTPException(422, detail=[{"loc": ["path", "sha256"], "type": "value_error",
                                          "msg": f"the uploaded content's sha256 is {exc.actual}, not {sha256}"}]) from None
    except BaseException:
        upload.abort()
        raise
    return ArtifactOut(sha256=sha256, size=upload.size)
