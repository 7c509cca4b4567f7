"""/api/v1/tokens (admin) and /api/v1/whoami: thin handlers over corral.control.tokens.

A token's secret is in one answer only, the create's (``token``); lists and revokes show
its name, role and times, never the secret or its hash.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from corral.api.access import current_principal
from corral.api.actions import set_target
from corral.api.deps import plane
from corral.api.schemas import ts
from corral.control import tokens
from corral.control.context import ControlPlane
from corral.control.tokens import NAME_RULE, Principal, Role
from corral.store.models import ApiToken

router = APIRouter(tags=["auth"])


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, description=NAME_RULE)
    role: Role


class TokenOut(BaseModel):
    name: str
    role: Role
    created_by: str | None
    created_at: datetime
    last_used_at: datetime | None  # recorded at most once a minute
    revoked_at: datetime | None

    @classmethod
    def of(cls, t: ApiToken) -> "TokenOut":
        return cls(name=t.name, role=Role(t.role), created_by=t.created_by, created_at=ts(t.created_at),  # type: ignore[arg-type]
                   last_used_at=ts(t.last_used_at), revoked_at=ts(t.revoked_at))


class TokenCreated(TokenOut):
    token: str = Field(description="the secret: shown in this answer only; send it as 'Authorization: Bearer <token>'")


class WhoAmI(BaseModel):
    name: str
    role: Role
    auth: str  # "required", or "off" (a loopback-only server: every caller is 'local')


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(body: TokenCreate, request: Request, cp: ControlPlane = Depends(plane),
                 who: Principal = Depends(current_principal)) -> TokenCreated:
    row, secret = tokens.create_token(cp.store, body.name, body.role.value, created_by=who.name)
    set_target(request, row.name)
    return TokenCreated(**TokenOut.of(row).model_dump(), token=secret)


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(cp: ControlPlane = Depends(plane)) -> list[TokenOut]:
    """Every token, revoked ones too, oldest first (a short list: not paged)."""
    return [TokenOut.of(t) for t in tokens.list_tokens(cp.store)]


@router.delete("/tokens/{name}", response_model=TokenOut)
def revoke_token(name: str, cp: ControlPlane = Depends(plane)) -> TokenOut:
    """Revoke at once: the next request with the token gets 401. Idempotent."""
    return TokenOut.of(tokens.revoke_token(cp.store, name))


@router.get("/whoami", response_model=WhoAmI)
async def whoami(request: Request, cp: ControlPlane = Depends(plane)) -> WhoAmI:
    """The caller's token name and role (``corral login`` checks a token with it)."""
    who = current_principal(request)
    return WhoAmI(name=who.name, role=who.role, auth=cp.settings.auth_mode)
