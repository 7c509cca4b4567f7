"""/api/v1/audit (admin): the audit log, oldest first, paged (``corral.paging``)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from corral.api.deps import plane
from corral.api.paging import Page
from corral.api.schemas import ts
from corral.control import audit
from corral.control.context import ControlPlane
from corral.store.models import AuditRecord

router = APIRouter(tags=["auth"])


class AuditOut(BaseModel):
    id: int
    time: datetime
    actor: str  # a token's name, "anonymous" (no valid token) or "local" (auth off)
    role: str | None
    method: str
    path: str
    action: str  # e.g. cluster.create, step.add, token.revoke
    target: str | None
    status_code: int
    result: str  # ok, denied (401/403) or failed
    remote: str | None

    @classmethod
    def of(cls, r: AuditRecord) -> "AuditOut":
        return cls(id=r.id, time=ts(r.time), actor=r.actor, role=r.role, method=r.method, path=r.path,  # type: ignore[arg-type]
                   action=r.action, target=r.target, status_code=r.status_code, result=r.result, remote=r.remote)


@router.get("/audit", response_model=list[AuditOut])
def list_audit(response: Response,
               since: float | None = Query(default=None, ge=0, description="only records at or after this time (epoch seconds)"),
               page: Page = Depends(), cp: ControlPlane = Depends(plane)) -> list[AuditOut]:
    """Mutating API calls, oldest first; paged (``corral.paging``)."""
    after = page.after("audit", (int,))
    rows = audit.list_records(cp.store, since, int(after[0]) if after else None, page.limit + 1)
    return [AuditOut.of(r) for r in page.answer(response, "audit", rows, lambda r: (r.id,))]
