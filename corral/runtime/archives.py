"""The release runtime as archives for hosts with no internet (the runtime bundle).

Each archive is a plain, uncompressed tar that the agent unpacks into the host's runtime
cache as ``<runtime cache>/<archive name without .tar>/``:

- ``spark-<version>-<key>.tar``: ``python/pyspark`` and ``python/py4j`` from the control
  plane's own installation (SPARK_HOME is ``python/pyspark``, PYTHONPATH ``python``).
  ``<key>`` digests the files' names, sizes and times (a reinstalled pyspark, a new key).
- ``hadoop-<version>-<digest>.tar``: the Hadoop runtime directory of ``corral.runtime.hadoop``
  (``lib/``, ``s3/``, ``jdbc/``, ``classes/``, ``resources/``, the tool-jar links), named as
  that directory is, so ``ensure_hadoop`` on the host finds it and never runs Maven.

Why uncompressed (measured on the 2-core build machine, pyspark 4.3.0 + py4j, 500 MB of
mostly already-deflated jars): gzip -1 saves 8 % for 18 s of CPU to pack and 3.7 s to
unpack on every host; zstd -1 saves the same 8 % for 0.4 s to unpack but is neither in
Python 3.11's standard library nor on every host. On a local link, the 42 MB saved take
less time to send than gzip takes to inflate them.

Files keep their modification times (the class-data archives check them) and come in a
fixed order with neutral owners, so equal inputs give byte-equal archives. An archive is
written under a temporary name and renamed once complete.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

from corral.runtime import DeployError, file_lock, remove_superseded

SUFFIX = ".tar"


def archive_cache() -> Path:
    """Host-wide, beside the runtime and wheel caches (``CORRAL_ARCHIVE_CACHE``)."""
    configured = os.environ.get("CORRAL_ARCHIVE_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "corral" / "archives"


def _members(sources: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """(name in the archive, file on disk) of every file, directory and symlink under each
    source (prefix "" for the archive's top level), sorted; byte code is left out (each
    host compiles its own)."""
    out: list[tuple[str, Path]] = []
    for prefix, root in sources:
        if prefix:
            out.append((prefix, root))
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            base = Path(dirpath)
            for name in [*dirnames, *sorted(f for f in filenames if not f.endswith((".pyc", ".pyo")))]:
                path = base / name
                rel = str(path.relative_to(root))
                out.append((f"{prefix}/{rel}" if prefix else rel, path))
    return sorted(out)


def listing_key(sources: list[tuple[str, Path]]) -> str:
    """Digest of the members' names, sizes and modification times (stat only: ~10 ms)."""
    h = hashlib.sha256()
    for name, path in _members(sources):
        st = path.lstat()
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_mode:o}\n".encode())
    return h.hexdigest()[:12]


def _reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_archive(path: Path, sources: list[tuple[str, Path]]) -> Path:
    """Write the tar at ``path`` once (concurrent callers wait); returns ``path``. Builds
    it supersedes go a day later (``corral.runtime.remove_superseded``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.parent / f".{path.name}.lock"):
        if not path.is_file():
            partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
            try:
                with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
                    for name, source in _members(sources):
                        tar.add(source, arcname=name, recursive=False, filter=_reset)
                partial.rename(path)
            finally:
                partial.unlink(missing_ok=True)
        remove_superseded(path, path.parent.glob(f"{path.name.rsplit('-', 1)[0]}-*{SUFFIX}"))
    return path


def spark_sources(version: str) -> list[tuple[str, Path]]:
    """The control plane's pyspark ``version`` and py4j, as archive members' sources.
    Raises DeployError when pyspark is absent or another version."""
    import importlib.metadata  # noqa: PLC0415

    try:
        installed = importlib.metadata.version("pyspark")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed != version:
        raise DeployError(f"the control plane serves Spark {version} from its own pyspark, but it has "
                          f"{'pyspark ' + installed if installed else 'none'}: install Corral with its "
                          "`runtime` extra (`make setup` does)")
    import py4j  # noqa: PLC0415
    import pyspark  # noqa: PLC0415

    return [("python/py4j", Path(py4j.__file__).parent), ("python/pyspark", Path(pyspark.__file__).parent)]


def spark_archive(version: str, cache: Path | None = None) -> Path:
    sources = spark_sources(version)
    return write_archive((cache or archive_cache()) / f"spark-{version}-{listing_key(sources)}{SUFFIX}", sources)


def hadoop_archive(home: Path, cache: Path | None = None) -> Path:
    """``home``: a complete Hadoop runtime directory (``ensure_hadoop``), immutable once built."""
    return write_archive((cache or archive_cache()) / f"{home.name}{SUFFIX}", [("", home)])
