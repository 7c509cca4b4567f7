"""The audit log: one row per mutating API call (and per token made on the store directly).

Rows say who (the token's name, ``anonymous`` without a valid token, ``local`` with auth
off), with which role, what (method, path, a stable action name such as
``cluster.create``), on which target (the path's id or name), when (epoch seconds), and
how it ended (the status code; ``ok``, ``denied`` for 401/403, ``failed`` for any other
error). Never a request body: bodies hold secrets (passwords, keys). Written by
``corral.api.access``; read by ``GET /api/v1/audit`` (``corral audit list``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select

from corral.store.db import Store
from corral.store.models import AuditRecord

OK, DENIED, FAILED = "ok", "denied", "failed"


def result_of(status_code: int) -> str:
    """``ok`` (< 400), ``denied`` (401, 403) or ``failed`` (any other 4xx/5xx)."""
    if status_code in (401, 403):
        return DENIED
    return OK if status_code < 400 else FAILED


@dataclass(frozen=True)
class Entry:
    actor: str
    role: str | None
    method: str
    path: str
    action: str
    target: str | None
    status_code: int
    remote: str | None
    time: float | None = None  # now when None


def record(store: Store, entry: Entry) -> None:
    """Append one row (its own transaction: it is kept whatever the call did)."""
    with store.session() as s:
        s.add(AuditRecord(time=entry.time if entry.time is not None else time.time(), actor=entry.actor[:128],
                          role=entry.role, method=entry.method[:8], path=entry.path, action=entry.action[:64],
                          target=entry.target[:255] if entry.target else None, status_code=entry.status_code,
                          result=result_of(entry.status_code), remote=entry.remote[:64] if entry.remote else None))


def list_records(store: Store, since: float | None, after_id: int | None, limit: int) -> list[AuditRecord]:
    """Rows at or after ``since`` (epoch seconds), oldest first (by id, which is the order
    they were written), after row ``after_id`` (the paging key), at most ``limit``."""
    query = select(AuditRecord).order_by(AuditRecord.id).limit(limit)
    if since is not None:
        query = query.where(AuditRecord.time >= since)
    if after_id is not None:
        query = query.where(AuditRecord.id > after_id)
    with store.session() as s:
        return list(s.scalars(query))
