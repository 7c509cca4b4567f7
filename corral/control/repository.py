"""The runtime repository as the control plane serves it (``corral.runtime.repository``):
bundles by kind, artifacts by sha256, for agents and the hosts they are installed on.

Kinds: ``agent`` (the agent's wheels) and ``runtime-<release>`` (the release runtime's
archives). Building a bundle may take a while when its inputs changed (tens of seconds to
tar and hash 640 MB, or minutes when the Hadoop runtime must first be fetched with Maven
on this machine), so it runs in a thread of its own: a caller waits up to
``WAIT_SECONDS``, then gets ``NotReady`` (HTTP 503 with Retry-After) and asks again.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable

from corral.domain.catalog import RELEASES
from corral.errors import CorralError, NotFound
from corral.runtime import DeployError
from corral.runtime.repository import SHA256, Artifact, Bundle, agent_bundle, indexed, repository_dirs, runtime_bundle
from corral.settings import Settings

WAIT_SECONDS = 3.0
RETRY_AFTER_SECONDS = 5
RUNTIME_PREFIX = "runtime-"


class NotReady(CorralError):
    """The bundle is being built; ask again after ``retry_after`` seconds."""

    status_code = 503

    def __init__(self, kind: str, retry_after: int = RETRY_AFTER_SECONDS):
        self.retry_after = retry_after
        super().__init__(f"bundle {kind} is being built; retry in {retry_after} s")


class Unavailable(CorralError):
    """The bundle cannot be built on this control plane (a source is missing)."""

    status_code = 503


def bundle_kinds() -> list[str]:
    return ["agent", *(RUNTIME_PREFIX + label for label in RELEASES)]


class Repository:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        # One build per kind at a time; a long runtime build does not hold up the agent's.
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="repository")
        self._builds: dict[str, Future[Bundle]] = {}
        self._known: dict[str, Artifact] = {}

    def _builder(self, kind: str) -> Callable[[], Bundle]:
        if kind == "agent":
            return lambda: agent_bundle(self.settings)
        release = kind.removeprefix(RUNTIME_PREFIX)
        if kind.startswith(RUNTIME_PREFIX) and release in RELEASES:
            return lambda: runtime_bundle(self.settings, release)
        raise NotFound("bundle", kind)

    def bundle(self, kind: str, wait: float | None = None) -> Bundle:
        """The bundle ``kind``, built or checked afresh (cheap when nothing changed).
        Raises NotFound for an unknown kind, NotReady while it builds longer than ``wait``
        seconds (default ``WAIT_SECONDS``), Unavailable when it cannot be built here."""
        build = self._builder(kind)
        with self._lock:
            future = self._builds.get(kind)
            if future is None or future.done():
                future = self._pool.submit(build)
                self._builds[kind] = future
        try:
            bundle = future.result(timeout=WAIT_SECONDS if wait is None else wait)
        except FutureTimeout:
            raise NotReady(kind) from None
        except DeployError as exc:
            raise Unavailable(f"bundle {kind} cannot be built: {exc}") from None
        with self._lock:
            self._known.update((a.sha256, a) for a in bundle.artifacts)
        return bundle

    def artifact(self, sha256: str) -> Artifact | None:
        """The file served as ``sha256``: one of a listed bundle's, or one the repository's
        indexes name and that is unchanged since (after a restart, before any listing).
        Paths only ever come from the bundles and indexes, never from the request."""
        if not SHA256.fullmatch(sha256):
            return None
        with self._lock:
            known = self._known.get(sha256)
        directories = repository_dirs()
        if known is not None:
            directories.insert(0, known.path.parent)
        for directory in directories:
            found = indexed(directory, sha256)
            if found is not None:
                return found
        return None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
