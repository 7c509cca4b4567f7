"""Environment deployment: make the release's runtime (Java, Spark, Hadoop) usable on this node.

Spark comes from the pyspark distribution on PyPI. When the agent's own interpreter has
the release's pyspark (the case for the local provider, whose agents share Corral's
virtual environment) it is used in place; otherwise it is pip-installed once into the
host's runtime cache, shared by every node of every cluster on that host. Hadoop comes
from Maven Central into the same cache (``corral.runtime.hadoop``).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from corral.agent.protocol import OPTION_PLACEHOLDERS, RUNTIME_PLACEHOLDER, RuntimeSpec
from corral.runtime import DeployError, cds, file_lock, java_version_output
from corral.runtime.hadoop import ensure_hadoop

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


def _cached_pyspark(cache: Path, version: str) -> str:
    target = cache / "python"
    home = target / "pyspark"
    with file_lock(cache / ".install.lock"):
        if not (home / "bin" / "spark-class").exists():
            # pip's build and unpack directories go beside the cache, not to the host's /tmp.
            with tempfile.TemporaryDirectory(prefix=".pip-", dir=cache) as scratch:
                subprocess.run(
                    [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                     f"pyspark=={version}", "py4j"],
                    check=True, timeout=1800, env={**os.environ, "TMPDIR": scratch},
                )
    return str(home)


def deploy(spec: RuntimeSpec, runtime_dir: Path) -> dict[str, str]:
    """Deploy the runtime; returns the placeholder values for this node."""
    java, java_home = check_java(spec.java_major)
    values = {"JAVA_HOME": java_home, "PYTHON": sys.executable}
    spark_home = _installed_pyspark(spec.spark_version)
    if spark_home is None:
        cache = runtime_dir / spec.release
        spark_home = _cached_pyspark(cache, spec.spark_version)
        values["PYTHONPATH"] = str(cache / "python")
    values["SPARK_HOME"] = spark_home
    # Class-data archives are built ahead of time (``make setup``); without them the JVMs
    # start the usual way.
    values["SPARK_CDS_OPTS"] = cds.java_options(cds.find_archive(runtime_dir, java_home, "spark", spark_home))
    values["HADOOP_CDS_OPTS"] = cds.java_options(None)
    if spec.hadoop_version:
        values["HADOOP_HOME"] = str(ensure_hadoop(runtime_dir, java_home, spec.hadoop_version, spark_home))
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
