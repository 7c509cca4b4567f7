"""/api/v1/hosts: thin handlers over corral.control.hosts (the ssh provider's inventory).

``POST /hosts`` and ``POST /hosts/{name}/check`` answer 202: the check runs in the
reconciler; follow it with ``GET /hosts/{name}`` while ``check_pending``. A host's private
key is write-only: no response carries it (``has_private_key`` says whether one is set).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from corral.api.actions import set_target
from corral.api.deps import plane
from corral.api.paging import Page
from corral.api.schemas import ts
from corral.control import hosts
from corral.control.context import ControlPlane
from corral.hosts.check import effective_resources
from corral.hosts.spec import HostSpec
from corral.store.models import Host

router = APIRouter(tags=["hosts"])


class CheckItemOut(BaseModel):
    name: str
    ok: bool
    severity: str  # error or warning
    found: str
    need: str
    fix: str
    message: str  # the line people read, e.g. "java: found 11, need 17: apt-get install -y ..."


class HostOut(BaseModel):
    id: str
    name: str
    address: str
    port: int
    user: str
    labels: dict[str, str]
    host_key_fingerprint: str | None
    host_key: str | None  # known_hosts form: "<type> <base64>"
    has_private_key: bool
    status: str
    target: str
    status_reason: str | None
    check_pending: bool
    cores: int | None  # effective: the override, else what the check found
    memory_mb: int | None
    cores_override: int | None
    memory_mb_override: int | None
    checks: list[CheckItemOut]
    facts: dict[str, Any]
    node_id: str | None
    cluster_id: str | None
    created_at: datetime
    status_changed_at: datetime
    checked_at: datetime | None
    last_seen_at: datetime | None
    removed_at: datetime | None

    @classmethod
    def of(cls, h: Host) -> "HostOut":
        cores, memory = effective_resources(h.facts or {}, h.cores_override, h.memory_mb_override)
        return cls(id=h.id, name=hosts.display_name(h), address=h.address, port=h.port, user=h.user,
                   labels=dict(h.labels or {}), host_key_fingerprint=h.host_key_fingerprint, host_key=h.host_key,
                   has_private_key=h.private_key is not None, status=h.status, target=h.target,
                   status_reason=h.status_reason, check_pending=hosts.check_pending(h), cores=cores, memory_mb=memory,
                   cores_override=h.cores_override, memory_mb_override=h.memory_mb_override,
                   checks=[CheckItemOut(**c) for c in h.checks or []], facts=dict(h.facts or {}),
                   node_id=h.node_id, cluster_id=h.cluster_id, created_at=ts(h.created_at),  # type: ignore[arg-type]
                   status_changed_at=ts(h.status_changed_at), checked_at=ts(h.checked_at),  # type: ignore[arg-type]
                   last_seen_at=ts(h.last_seen_at), removed_at=ts(h.removed_at))


@router.post("/hosts", response_model=HostOut, status_code=202)
def add_host(spec: HostSpec, request: Request, cp: ControlPlane = Depends(plane)) -> HostOut:
    """Register a host; its key is pinned now, its check runs next (``check_pending``)."""
    host = hosts.add_host(cp, spec)
    set_target(request, host.name)
    return HostOut.of(host)


@router.get("/hosts", response_model=list[HostOut])
def list_hosts(response: Response, all_: bool = Query(default=False, alias="all", description="include removed hosts"),
               page: Page = Depends(), cp: ControlPlane = Depends(plane)) -> list[HostOut]:
    """Hosts by name; paged (``corral.paging``)."""
    after = page.after("hosts", (str, str))
    rows = hosts.list_hosts(cp, include_removed=all_, after=(after[0], after[1]) if after else None,
                            limit=page.limit + 1)
    return [HostOut.of(h) for h in page.answer(response, "hosts", rows, lambda h: (h.name, h.id))]


@router.get("/hosts/{name}", response_model=HostOut)
def describe_host(name: str, cp: ControlPlane = Depends(plane)) -> HostOut:
    """A host by name (or by id, removed ones too)."""
    return HostOut.of(hosts.get_host(cp, name))


@router.post("/hosts/{name}/check", response_model=HostOut, status_code=202)
def check_host(name: str, cp: ControlPlane = Depends(plane)) -> HostOut:
    return HostOut.of(hosts.check_host(cp, name))


@router.post("/hosts/{name}/drain", response_model=HostOut)
def drain_host(name: str, cp: ControlPlane = Depends(plane)) -> HostOut:
    return HostOut.of(hosts.drain_host(cp, name))


@router.delete("/hosts/{name}", response_model=HostOut)
def remove_host(name: str, force: bool = Query(default=False, description=(
                    "also remove a host still reserved by a node that is not live (its cluster has ended): "
                    "status_reason names what may be left on the machine")),
                cp: ControlPlane = Depends(plane)) -> HostOut:
    """409 while a node holds the host (with ``force``: while that node's cluster runs)."""
    return HostOut.of(hosts.remove_host(cp, name, force=force))
