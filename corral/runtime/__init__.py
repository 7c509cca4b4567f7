"""Release runtimes fetched from package registries into a host-wide cache (Hadoop from
Maven Central; Spark comes from PyPI, see ``corral.agent.runtime``)."""

from __future__ import annotations

import fcntl
import functools
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator


SUPERSEDED_GRACE_SECONDS = 86400  # how long a superseded build stays servable (see remove_superseded)


class DeployError(Exception):
    """The runtime cannot be deployed (e.g. Java is missing); the message says what to do."""


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (agents of several nodes deploy concurrently)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@functools.lru_cache(maxsize=8)
def java_version_output(java: str) -> str:
    """What ``java -version`` prints: one JVM start per binary and process, shared by the
    agent's Java check and the class-data archives' names (both run as a node deploys)."""
    return subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr


def remove_path(path: Path) -> None:
    """Remove a file, a symlink or a whole directory; nothing when it is not there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _superseded_mark(path: Path) -> Path:
    return path.with_name(f".{path.name}.superseded")


def remove_superseded(current: Path, others: Iterable[Path], clock: Callable[[], float] = time.time,
                      grace: float = SUPERSEDED_GRACE_SECONDS) -> list[Path]:
    """Remove the builds (files or directories) in ``others`` that ``current`` replaced a
    day (``grace`` seconds) or more ago; returns those removed. A build is marked when first
    seen superseded and removed a day after that, not at once: another control plane of
    another build on the machine (an upgrade under way, a test beside a benchmark) may be
    serving it to hosts right now, and a host would get a 404 in the middle of a create.
    ``current`` loses any mark it had (a plane of that build is back at work)."""
    _superseded_mark(current).unlink(missing_ok=True)
    removed = []
    for old in others:
        if old == current or old.name.startswith("."):
            continue
        mark = _superseded_mark(old)
        try:
            marked = mark.stat().st_mtime
        except FileNotFoundError:
            mark.touch()
            continue
        if clock() - marked >= grace:
            remove_path(old)
            mark.unlink(missing_ok=True)
            removed.append(old)
    return removed
