"""Release runtimes fetched from package registries into a host-wide cache (Hadoop from
Maven Central; Spark comes from PyPI, see ``corral.agent.runtime``)."""

from __future__ import annotations

import fcntl
import functools
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


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
