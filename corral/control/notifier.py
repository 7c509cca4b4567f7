"""Wakes long-polling agents (and the reconciler) when a cluster's plan changes.

Writers call ``bump`` from any thread after their transaction commits; waiters are
asyncio futures on the server's event loop, or the reconciler's threading event.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict


class Notifier:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self.reconcile_now = threading.Event()
        # Which clusters were poked since the reconcile loop last took them (``take_pokes``):
        # those get a pass at once; a steady cluster otherwise waits its turn.
        self._poked: set[str] = set()
        self._poked_all = False

    def bump(self, cluster_id: str) -> None:
        with self._lock:
            waiters = self._waiters.pop(cluster_id, set())
            self._poked.add(cluster_id)
        for fut in waiters:
            loop = fut.get_loop()
            loop.call_soon_threadsafe(lambda f=fut: f.done() or f.set_result(None))
        self.reconcile_now.set()

    def poke_reconciler(self, cluster_id: str | None = None) -> None:
        """Have the reconcile loop pass over ``cluster_id`` now (None: every cluster)."""
        with self._lock:
            if cluster_id is None:
                self._poked_all = True
            else:
                self._poked.add(cluster_id)
        self.reconcile_now.set()

    def take_pokes(self) -> tuple[bool, set[str]]:
        """(every cluster poked, the clusters poked) since the last call."""
        with self._lock:
            poked, every = self._poked, self._poked_all
            self._poked, self._poked_all = set(), False
        return every, poked

    async def wait(self, cluster_id: str, timeout: float) -> bool:
        """True when woken by a bump of ``cluster_id``; False after ``timeout`` seconds."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiters[cluster_id].add(fut)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiters.get(cluster_id, set()).discard(fut)
