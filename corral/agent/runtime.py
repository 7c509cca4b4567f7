"""Environment deployment: make the release's runtime (Java, Spark, Hadoop) usable on this node.

Where the node finds the runtime on its own, it uses it in place: the release's pyspark in
the agent's interpreter and the Hadoop runtime directory in the host's runtime cache (the
local provider's agents share the control plane's virtual environment and cache, so
nothing is fetched). Otherwise, as on a host reached over SSH, which has no internet,
the agent fetches the release's archives from the control plane's repository
(``RuntimeSpec.bundle``; ``corral.runtime.archives`` says what is in them) and unpacks
them into the host's runtime cache once for every node of every cluster there
(``corral.runtime.fetch``): no pip, no Maven on a node. Each fetch is reported as a
``RUNTIME_FETCHED`` event with its bytes and time.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Callable, Protocol

from corral.agent.protocol import OPTION_PLACEHOLDERS, RUNTIME_PLACEHOLDER, RuntimeSpec
from corral.runtime import DeployError, cds, java_version_output
from corral.runtime.fetch import Download, Remote, ensure_unpacked
from corral.runtime.hadoop import runtime_name

log = logging.getLogger("corral.agent.runtime")

__all__ = ["DeployError", "deploy", "substitute", "substitute_all", "check_java"]


def java_major(java: str) -> int:
    out = java_version_output(str(Path(java).resolve()))
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise DeployError(f"cannot read the Java version from {java}: {out.strip()[:200]}")
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def find_java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        return str(Path(home, "bin", "java"))
    found = shutil.which("java")
    return str(Path(found).resolve()) if found else None


def check_java(required: int) -> tuple[str, str]:
    """(java binary, JAVA_HOME) of a Java ``required`` installation, or a clear error."""
    java = find_java()
    hint = f"install it, e.g. `apt-get install openjdk-{required}-jdk-headless`, or set JAVA_HOME"
    if java is None:
        raise DeployError(f"Java {required} is required but no `java` was found: {hint}")
    major = java_major(java)
    if major != required:
        raise DeployError(f"Java {required} is required but {java} is Java {major}: {hint}")
    return java, str(Path(java).resolve().parent.parent)


def _installed_pyspark(version: str) -> str | None:
    try:
        if importlib.metadata.version("pyspark") != version:
            return None
    except importlib.metadata.PackageNotFoundError:
        return None
    import pyspark  # noqa: PLC0415 - only when the version matches

    return str(Path(pyspark.__file__).parent)


class Repository(Protocol):
    """The control plane's runtime repository as the agent reaches it (``ControlPlaneClient``)."""

    def repository_bundle(self, kind: str) -> list[Remote]: ...

    repository_file: Download


Emit = Callable[[str, str, str, "str | None"], None]  # (level, code, message, component): agent events


class _Fetcher:
    """The runtime bundle's archives, listed once and unpacked on demand into the cache."""

    def __init__(self, spec: RuntimeSpec, runtime_dir: Path, repository: Repository | None, emit: Emit | None):
        self.spec, self.runtime_dir, self.repository, self.emit = spec, runtime_dir, repository, emit
        self._listing: list[Remote] | None = None

    def unpacked(self, prefix: str, what: str) -> Path:
        if self.repository is None or self.spec.bundle is None:
            raise DeployError(f"{what} is not on this host and there is no repository to fetch it from")
        if self._listing is None:
            self._listing = self.repository.repository_bundle(self.spec.bundle)
        remote = next((r for r in self._listing if r.name.startswith(prefix)), None)
        if remote is None:
            raise DeployError(f"the control plane's bundle {self.spec.bundle} has no {prefix}* archive ({what})")
        done = ensure_unpacked(self.repository.repository_file, remote, self.runtime_dir)
        if done.fetched:
            rate = done.fetched / max(done.seconds, 1e-3) / 1e6
            message = (f"{what}: fetched {remote.name} ({done.fetched} bytes) from the control plane and unpacked it "
                       f"in {done.seconds:.1f} s ({rate:.0f} MB/s)")
            log.info(message)
            if self.emit is not None:
                self.emit("INFO", "RUNTIME_FETCHED", message, None)
        return done.path


def deploy(spec: RuntimeSpec, runtime_dir: Path, repository: Repository | None = None,
           emit: Emit | None = None) -> dict[str, str]:
    """Deploy the runtime; returns the placeholder values for this node. ``repository``:
    where what is not on the host comes from. Raises DeployError (Java missing, a fetch
    that failed)."""
    java, java_home = check_java(spec.java_major)
    values = {"JAVA_HOME": java_home, "PYTHON": sys.executable}
    fetcher = _Fetcher(spec, runtime_dir, repository, emit)
    spark_home = _installed_pyspark(spec.spark_version)
    if spark_home is None:
        python = fetcher.unpacked(f"spark-{spec.spark_version}-", f"Spark {spec.spark_version}") / "python"
        spark_home = str(python / "pyspark")
        values["PYTHONPATH"] = str(python)
    values["SPARK_HOME"] = spark_home
    # Class-data archives are built ahead of time (``make setup``); without them the JVMs
    # start the usual way.
    values["SPARK_CDS_OPTS"] = cds.java_options(cds.find_archive(runtime_dir, java_home, "spark", spark_home))
    values["HADOOP_CDS_OPTS"] = cds.java_options(None)
    if spec.hadoop_version:
        home = runtime_dir / runtime_name(spec.hadoop_version)
        if not home.is_dir():  # never Maven on a node: the control plane's machine fetched it once
            home = fetcher.unpacked(f"hadoop-{spec.hadoop_version}-", f"Hadoop {spec.hadoop_version}")
        values["HADOOP_HOME"] = str(home)
        values["HADOOP_CDS_OPTS"] = cds.java_options(cds.find_archive(runtime_dir, java_home, "hadoop",
                                                                      values["HADOOP_HOME"]))
    return values


def substitute(text: str, values: dict[str, str], escape: Callable[[str], str] = str) -> str:
    """Replace ``${SPARK_HOME}``-style placeholders with ``escape(value)`` (a file's
    escaping, ``corral.formats.LITERAL``), ``$${SPARK_HOME}`` with ``${SPARK_HOME}``; anything
    else (shell variables, a placeholder without a value here) stays."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if match.group(1) or name not in values:
            return "${" + name + "}"
        return escape(values[name])

    return RUNTIME_PLACEHOLDER.sub(replace, text)


def substitute_all(items: dict[str, str] | list[str], values: dict[str, str]):  # type: ignore[no-untyped-def]
    if isinstance(items, dict):
        return {k: substitute(v, values) for k, v in items.items()}
    out: list[str] = []
    for item in items:
        name = item[2:-1] if item.startswith("${") and item.endswith("}") else None
        if name in OPTION_PLACEHOLDERS and name in values:
            out += values[name].split()  # JVM options: one argv element each
        else:
            out.append(substitute(item, values))
    return out
