"""Every live cluster's plan version, read for all waiting long polls at once.

A node's long poll (``GET /agent/v1/nodes/{id}/plan?wait=``) is woken by its cluster's
bumps, and also re-checks every few seconds in case a write forgot to bump. Each re-check
used to be a query on a worker thread of its own: with 200 agents whose polls started
together, 200 queries in the same instant every 5 s, and every report and API read that
arrived then waited its turn behind them (the p99 of ``bench/monitoring.py --only load``).
Here those periodic re-checks share one query of every cluster's version, at most every
MAX_AGE_SECONDS; only a poll whose cluster's version moved goes on to its own checks
(authorization, the node's status, the plan).

Used from the server's event loop only (no lock: one thread). A version read here is one that was
committed: it only ever grows, so a stale one makes a poll wait at most one more re-check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from corral.domain.states import ClusterState
from corral.store.db import Store
from corral.store.models import Cluster

MAX_AGE_SECONDS = 2.0
_ENDED = [s.value for s in ClusterState if s.is_terminal()]


class PlanVersions:
    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self._store, self._clock = store, clock
        self._versions: dict[str, int] = {}
        self._read_at: float | None = None
        self._reading: asyncio.Future[None] | None = None

    def _read(self) -> dict[str, int]:
        with self._store.session() as s:
            rows = s.execute(select(Cluster.id, Cluster.plan_version).where(Cluster.status.not_in(_ENDED)))
            return {cluster_id: version for cluster_id, version in rows}

    async def _refresh(self) -> None:
        try:
            self._versions = await run_in_threadpool(self._read)
            self._read_at = self._clock()
        finally:
            self._reading = None

    async def version(self, cluster_id: str) -> int | None:
        """The cluster's plan version as read at most MAX_AGE_SECONDS ago; callers that find
        it older wait for one read together. None when the cluster was not live then (ended,
        or created since): the caller checks for itself. Raises what the read raised."""
        if self._read_at is None or self._clock() - self._read_at >= MAX_AGE_SECONDS:
            if self._reading is None:
                self._reading = asyncio.ensure_future(self._refresh())
            await asyncio.shield(self._reading)  # a caller that gives up leaves the read to the others
        return self._versions.get(cluster_id)
