"""/api/v1/clusters/{id}/steps: thin handlers over corral.control.steps."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from corral.api.deps import plane
from corral.api.paging import Page
from corral.api.schemas import StepOut, StepsOut
from corral.control import steps
from corral.control.context import ControlPlane
from corral.domain.spec import StepRequest
from corral.paging import NEXT_OFFSET_HEADER, STEP_STATE_HEADER

router = APIRouter(tags=["steps"])


class AddSteps(BaseModel):
    steps: list[StepRequest] = Field(min_length=1, max_length=256)


@router.post("/clusters/{cluster_id}/steps", response_model=StepsOut, status_code=201)
def add_steps(cluster_id: str, body: AddSteps, cp: ControlPlane = Depends(plane)) -> StepsOut:
    added = steps.add_steps(cp, cluster_id, body.steps, loc_prefix=("steps",))
    return StepsOut(steps=[StepOut.of(s) for s in added])


@router.get("/clusters/{cluster_id}/steps", response_model=StepsOut)
def list_steps(cluster_id: str, response: Response, state: list[str] | None = Query(default=None),
               page: Page = Depends(), cp: ControlPlane = Depends(plane)) -> StepsOut:
    """The cluster's steps in queue order; paged (``corral.paging``)."""
    after = page.after("steps", (int,))
    rows = steps.list_steps(cp, cluster_id, state, after_seq=int(after[0]) if after else None, limit=page.limit + 1)
    return StepsOut(steps=[StepOut.of(s) for s in page.answer(response, "steps", rows, lambda s: (s.seq,))])


@router.get("/clusters/{cluster_id}/steps/{step_id}", response_model=StepOut)
def describe_step(cluster_id: str, step_id: str, cp: ControlPlane = Depends(plane)) -> StepOut:
    return StepOut.of(steps.get_step(cp, cluster_id, step_id))


@router.post("/clusters/{cluster_id}/steps/{step_id}/cancel", response_model=StepOut)
def cancel_step(cluster_id: str, step_id: str, cp: ControlPlane = Depends(plane)) -> StepOut:
    return StepOut.of(steps.cancel_step(cp, cluster_id, step_id))


@router.get("/clusters/{cluster_id}/steps/{step_id}/logs/{stream}", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
def step_log(cluster_id: str, step_id: str, stream: Literal["stdout", "stderr"], offset: int = Query(default=0, ge=0),
             limit: int = Query(default=1 << 20, ge=1, le=16 << 20), cp: ControlPlane = Depends(plane)) -> Response:
    """Up to ``limit`` bytes of the step's log from byte ``offset``. ``X-Corral-Next-Offset``
    is where to continue, an empty page the end of what there is so far (``corral.paging``);
    ``X-Corral-Step-State`` lets a follower stop once the step has ended and no bytes remain."""
    data, step = steps.read_log(cp, cluster_id, step_id, stream, offset, limit)
    return Response(content=data, media_type="text/plain; charset=utf-8",
                    headers={NEXT_OFFSET_HEADER: str(offset + len(data)), STEP_STATE_HEADER: step.status})
