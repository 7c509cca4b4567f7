"""The reconciler's pools for work that waits on machines (SSH, HTTP): a bounded set of
threads with at most one job per key (a host, a node) in flight, so a silent machine holds
one worker, never its callers or the other machines, and is never asked twice at once.

Used by the host checks (``corral.reconcile.hosts``, whose jobs write their own results)
and by the agent checks of silent nodes (``corral.reconcile.health.probe_all``, whose
caller waits for each result up to its own deadline). A job's ``started`` says when a
worker took it up, by the pool's clock (``time.monotonic`` unless a test gives another).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


@dataclass
class Job(Generic[T]):
    key: str
    future: Future[T] = field(repr=False, default_factory=Future)
    started: float | None = None  # the pool's clock when a worker began it; None while queued


class KeyedPool:
    """``submit(key, fn)`` runs ``fn`` on one of ``workers`` threads unless ``key`` has a
    job in flight; ``stop()`` at shutdown (queued jobs are dropped, running ones finish)."""

    def __init__(self, workers: int, name: str, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._busy: dict[str, Job[object]] = {}

    def submit(self, key: str, fn: Callable[[], T]) -> Job[T] | None:
        """The job now running or queued for ``key``, or None when one already is."""
        job: Job[T] = Job(key)

        def run() -> T:
            job.started = self.clock()
            try:
                return fn()
            finally:
                self._release(job)

        with self._lock:  # held while submitting: a worker's _release waits for it
            if key in self._busy:
                return None
            job.future = self._pool.submit(run)  # RuntimeError once stopped
            self._busy[key] = job  # type: ignore[assignment]
        return job

    def cancel(self, job: Job[T]) -> bool:
        """Drop a job no worker has taken up yet (its key is free again); whether it was."""
        if job.future.cancel():
            self._release(job)
            return True
        return False

    def busy(self, key: str) -> bool:
        with self._lock:
            return key in self._busy

    def _release(self, job: Job[T]) -> None:
        with self._lock:
            if self._busy.get(job.key) is job:
                del self._busy[job.key]

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until no job is in flight, at most ``timeout`` seconds (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                futures = [j.future for j in self._busy.values()]
            if not futures:
                return
            for f in futures:
                try:
                    f.exception(timeout=max(0.0, deadline - time.monotonic()))
                except Exception:  # noqa: BLE001 - cancelled or timed out: look again
                    pass
            time.sleep(0.01)

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
