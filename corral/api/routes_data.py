"""/api/v1/clusters/{id}/data/imports|exports: each request queues a step."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends

from corral.api.deps import plane
from corral.api.schemas import StepOut
from corral.control import transfers
from corral.control.context import ControlPlane
from corral.domain.transfer_request import DataTransferRequest

router = APIRouter(tags=["data"])


@router.post("/clusters/{cluster_id}/data/{direction}", response_model=StepOut, status_code=201)
def add_transfer(cluster_id: str, direction: Literal["imports", "exports"], body: DataTransferRequest,
                 cp: ControlPlane = Depends(plane)) -> StepOut:
    """Import into (or export from) the cluster's HDFS or Hive tables, as a DATA_IMPORT
    (DATA_EXPORT) step: its logs, cancel and ActionOnFailure are a step's."""
    step = transfers.add_transfer(cp, cluster_id, direction.removesuffix("s"), body)
    return StepOut.of(step)
