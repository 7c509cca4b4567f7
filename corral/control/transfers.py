"""Data import and export: a typed request becomes a DATA_IMPORT / DATA_EXPORT step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from corral.control import steps
from corral.domain.spec import StepRequest
from corral.domain.states import StepType
from corral.domain.transfer_request import DataTransferRequest
from corral.errors import FieldError, ValidationFailed
from corral.jobs.transfer import PASSWORD_ENV, parse
from corral.store.models import Step

if TYPE_CHECKING:
    from corral.control.context import ControlPlane

STEP_TYPES = {"import": StepType.DATA_IMPORT, "export": StepType.DATA_EXPORT}


def add_transfer(cp: "ControlPlane", cluster_id: str, direction: str, req: DataTransferRequest) -> Step:
    args = req.to_args()
    try:
        transfer = parse(direction, args)
    except ValueError as exc:
        raise ValidationFailed([FieldError((req.field_for(str(exc)),), str(exc))]) from None
    secret_env = {PASSWORD_ENV: req.password.get_secret_value()} if req.password is not None else {}
    if req.password is not None and transfer.user is None:
        raise ValidationFailed([FieldError(("password",), "a password is for database transfers (with user)")])
    name = req.name or f"data {direction}: {transfer.source} -> {transfer.target}"[:256]
    request = StepRequest(type=STEP_TYPES[direction], name=name, args=args, action_on_failure=req.action_on_failure,
                          timeout=req.timeout)
    return steps.add_steps(cp, cluster_id, [request], secrets={0: secret_env} if secret_env else None)[0]
