"""The control plane's runtime repository (Ambari's local repository): what a host with
no internet needs, served as content-addressed artifacts over HTTP.

Two bundles, each a list of ``Artifact``:

- ``agent_bundle()``: wheels of Corral itself and of every dependency the agent and the
  on-node job runners import, at the control plane's pinned versions. A host builds the
  agent's virtual environment from them offline (``pip install --no-index
  --find-links``) with its own Python 3.11. Its ``digest`` names the environment, so a
  new Corral version gets a new one and an unchanged one is reused.
- ``runtime_bundle(release)``: archives of the release runtime (pyspark, the Hadoop jars
  with S3A and the JDBC drivers, Corral's compiled Java classes), unpacked by the agent
  into the host's runtime cache once for every node of every cluster there.

Agents download ``GET /agent/v1/repository/{sha256}`` with their cluster's agent token,
verify the sha256 and keep each file in the host's cache (``corral.hosts.layout``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from corral.runtime import file_lock
from corral.runtime.checksums import file_sha256

if TYPE_CHECKING:
    from corral.settings import Settings

SHA256 = re.compile(r"[0-9a-f]{64}")
INDEX = ".sha256-index.json"


@dataclass(frozen=True)
class Artifact:
    """One file of a bundle: ``name`` is its file name on the host (a wheel's name must
    stay a valid wheel file name), ``size`` in bytes, ``path`` where the control plane
    keeps it (never sent to hosts)."""

    name: str
    sha256: str
    size: int
    path: Path


@dataclass(frozen=True)
class Bundle:
    artifacts: tuple[Artifact, ...]

    @property
    def digest(self) -> str:
        """sha256 over the artifacts' names and hashes: equal bundles, equal digest."""
        h = hashlib.sha256()
        for a in sorted(self.artifacts, key=lambda a: a.name):
            h.update(f"{a.name}\0{a.sha256}\n".encode())
        return h.hexdigest()

    @property
    def size(self) -> int:
        return sum(a.size for a in self.artifacts)


# -- content hashes, computed once per file (``checksums.file_sha256``) ----------------------

def _read_index(directory: Path) -> dict[str, list[object]]:
    try:
        data = json.loads((directory / INDEX).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def artifact(path: Path) -> Artifact:
    """``path`` as an Artifact. Its sha256 is kept in the directory's index
    (``.sha256-index.json``: name -> [size, mtime_ns, sha256]) and reused while the size and
    mtime are unchanged, so a 300 MB archive is hashed once, not on every listing."""
    st = path.stat()
    index = _read_index(path.parent)
    entry = index.get(path.name)
    if isinstance(entry, list) and entry[:2] == [st.st_size, st.st_mtime_ns] and SHA256.fullmatch(str(entry[2])):
        return Artifact(path.name, str(entry[2]), st.st_size, path)
    sha = file_sha256(path)
    with file_lock(path.parent / f"{INDEX}.lock"):
        index = _read_index(path.parent)
        index = {name: e for name, e in index.items() if (path.parent / name).exists()}
        index[path.name] = [st.st_size, st.st_mtime_ns, sha]
        tmp = path.parent / f"{INDEX}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(index, indent=0, sort_keys=True))
        tmp.replace(path.parent / INDEX)
    return Artifact(path.name, sha, st.st_size, path)


def indexed(directory: Path, sha256: str) -> Artifact | None:
    """The file of ``directory`` whose indexed hash is ``sha256`` and that is unchanged
    since it was indexed (else None): how an artifact is found after a restart, without
    hashing anything. Only names from the index, never from a request, become paths."""
    for name, entry in _read_index(directory).items():
        if not (isinstance(entry, list) and len(entry) == 3 and entry[2] == sha256) or "/" in name:
            continue
        path = directory / name
        try:
            st = path.stat()
        except OSError:
            continue
        if [st.st_size, st.st_mtime_ns] == entry[:2]:
            return Artifact(name, sha256, st.st_size, path)
    return None


# -- the bundles ---------------------------------------------------------------------------

def agent_bundle(settings: "Settings | None" = None) -> Bundle:
    """Corral's wheel (rebuilt when its sources changed) and the third-party wheels of the
    agent's closure (``corral.runtime.wheels``). Raises ``wheels.WheelhouseMissing`` when
    set-up never fetched the latter. ``settings`` is accepted for symmetry; the wheel cache
    is host-wide (``CORRAL_WHEEL_CACHE``)."""
    from corral.runtime import wheels  # noqa: PLC0415 - imports corral's package root

    files = [wheels.corral_wheel(), *wheels.dependency_wheels()]
    return Bundle(tuple(artifact(p) for p in files))


def corral_artifact(bundle: Bundle) -> Artifact:
    """The bundle's Corral wheel (what ``pip install`` names; the rest are its dependencies)."""
    return next(a for a in bundle.artifacts if a.name.startswith("corral-"))


def agent_requirement(bundle: Bundle) -> str:
    """``corral==<version>`` of the bundle's wheel, for ``pip install --no-index
    --find-links DIR``: exact, so older Corral wheels in a host's cache are never chosen."""
    return "corral==" + corral_artifact(bundle).name.split("-")[1]


def runtime_bundle(settings: "Settings", release: str) -> Bundle:
    """The archives of ``release``'s runtime (``corral.runtime.archives``): Spark from the
    control plane's pyspark, Hadoop from its runtime cache (fetched with Maven there on
    first use, never on a host), and the class-data archives trained for them here
    (``corral.runtime.cds``: named by JDK build and jars, so a host with the same JDK finds
    its own by name; never trained on demand). Built once per input, content-addressed; a
    few seconds when cold, milliseconds when warm. Raises KeyError for an unknown release
    and DeployError when a source is missing."""
    from corral.agent.runtime import check_java  # noqa: PLC0415
    from corral.domain.catalog import RELEASES  # noqa: PLC0415
    from corral.runtime import DeployError, archives, cds  # noqa: PLC0415
    from corral.runtime.hadoop import ensure_hadoop  # noqa: PLC0415

    spec = RELEASES[release]
    spark_home = dict(archives.spark_sources(spec.spark_version))["python/pyspark"]
    hadoop_home = ensure_hadoop(settings.runtime_dir, version=spec.hadoop_version)
    files = [archives.spark_archive(spec.spark_version), archives.hadoop_archive(hadoop_home)]
    try:
        _, java_home = check_java(spec.java_major)
    except DeployError:
        java_home = None
    for kind, home in (("spark", spark_home), ("hadoop", hadoop_home)):
        class_data = cds.archive_path(settings.runtime_dir, java_home, kind, str(home)) if java_home else None
        if class_data is not None and class_data.is_file():
            files.append(class_data)
    return Bundle(tuple(artifact(p) for p in files))


def repository_dirs() -> list[Path]:
    """Every directory whose index may hold a served artifact."""
    from corral.runtime import archives, wheels  # noqa: PLC0415

    from corral.runtime import cds  # noqa: PLC0415
    from corral.runtime.hadoop import default_cache  # noqa: PLC0415

    cache = wheels.wheel_cache()
    return [cache / "corral", *sorted(cache.glob("deps-*")), archives.archive_cache(), cds.archive_dir(default_cache())]
