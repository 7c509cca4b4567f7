"""The agent's wheelhouse: wheels of Corral and of the third-party distributions the agent
and the on-node job runners import, for hosts with no internet.

What the agent needs is small: ``AGENT_DISTRIBUTIONS`` (httpx, psutil, pydantic) and what
they pull in, at the versions the control plane runs (its pins). Nothing of the server
(FastAPI, SQLAlchemy, Typer...) and no pyspark (the runtime bundle ships that).
``tests/unit/runtime/test_wheels.py`` proves the list complete by walking the imports of
``AGENT_MODULES``.

Two parts, both under the host-wide wheel cache (``wheel_cache()``,
``~/.cache/corral/wheels`` or ``CORRAL_WHEEL_CACHE``):

- ``deps-<key>/``: the third-party closure, fetched from PyPI by ``pip wheel`` at set-up
  (``python -m corral.runtime.wheels``; ``make setup`` runs it), the only time the control
  plane's machine has PyPI. ``<key>`` digests the requirements and the control plane's
  installed versions, so an upgrade gets a new directory and an unchanged one is kept.
- ``corral/corral-<version>+g<source>-py3-none-any.whl``: Corral itself, built in code
  from the installed package (every file of it but byte code, so a wheel-installed agent
  has the Java sources, the pom and the migrations it reads), byte-for-byte reproducible
  and named by a digest of the sources: rebuilt only when a file changed. Its metadata
  requires only the agent's distributions, so ``pip install --no-index --find-links DIR
  corral==<version>`` on a host installs exactly this closure.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.metadata
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import corral
from corral.runtime import DeployError, file_lock, remove_superseded

# Distributions the agent's modules import (directly; pip resolves what they need).
AGENT_DISTRIBUTIONS = ("httpx", "psutil", "pydantic")
# What runs on a node from Corral's own package: the agent and the on-node runners.
AGENT_MODULES = ("corral.agent.__main__", "corral.jobs.transfer_run", "corral.jobs.streaming_run",
                 "corral.jobs.transfer_spark", "corral.runtime.cds", "corral.runtime.cds_training",
                 "corral.runtime.hadoop")
# Shipped too, not required: a host runs pip from its wheel to install the others into an
# environment made with ``venv --without-pip`` (faster than ensurepip, and Debian's
# python3.11 needs no python3.11-venv package for it).
INSTALLER = "pip"
# Imported on nodes but shipped by the runtime bundle (SPARK_HOME and PYTHONPATH).
RUNTIME_DISTRIBUTIONS = ("pyspark", "py4j")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # reproducible archives: the same sources, the same sha256


class WheelhouseMissing(DeployError):
    """The third-party wheels were never fetched on this machine (``make setup`` does)."""


def wheel_cache() -> Path:
    configured = os.environ.get("CORRAL_WHEEL_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "corral" / "wheels"


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def agent_requirements() -> list[str]:
    """``name==version`` of each of ``AGENT_DISTRIBUTIONS`` as installed here (the pins)."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in AGENT_DISTRIBUTIONS]


def _installer() -> str:
    return f"{INSTALLER}=={importlib.metadata.version(INSTALLER)}"


def _constraints() -> list[str]:
    """Every installed distribution at its installed version: the closure pip resolves for
    hosts is the control plane's own (the same httpcore, anyio, pydantic-core...)."""
    pins = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and _canonical(name) != "corral":
            pins[_canonical(name)] = f"{_canonical(name)}=={dist.version}"
    return sorted(pins.values())


@functools.lru_cache(maxsize=1)  # reading every installed distribution's metadata takes ~0.1 s
def _deps_key() -> str:
    h = hashlib.sha256()
    for line in [sys.implementation.cache_tag, *agent_requirements(), _installer(), "--", *_constraints()]:
        h.update(line.encode() + b"\n")
    return h.hexdigest()[:16]


def deps_dir(cache: Path | None = None) -> Path:
    return (cache or wheel_cache()) / f"deps-{_deps_key()}"


def fetch_dependencies(cache: Path | None = None) -> Path:
    """Fetch the agent's third-party wheels from PyPI (set-up time only) into
    ``deps-<key>/``, once; the directory appears only when complete. Raises DeployError
    when pip fails (no network, a missing wheel)."""
    cache = cache or wheel_cache()
    target = deps_dir(cache)
    with file_lock(cache / ".deps.lock"):
        if not target.is_dir():
            _fetch_into(cache, target)
        remove_superseded(target, cache.glob("deps-*"))  # closures of other builds, a day later
    return target


def _fetch_into(cache: Path, target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=".deps-", dir=cache) as scratch:
        constraints = Path(scratch) / "constraints.txt"
        constraints.write_text("\n".join(_constraints()) + "\n")
        wheels = Path(scratch) / "wheels"
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
             "--wheel-dir", str(wheels), "--constraint", str(constraints), *agent_requirements(), _installer()],
            capture_output=True, text=True, timeout=1800, env={**os.environ, "TMPDIR": scratch})
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-10:])
            raise DeployError(f"fetching the agent's wheels from PyPI failed (exit {result.returncode}):\n{tail}")
        wheels.rename(target)


def dependency_wheels(cache: Path | None = None) -> list[Path]:
    """The third-party wheels; raises WheelhouseMissing when set-up never fetched them."""
    target = deps_dir(cache)
    if not target.is_dir():
        raise WheelhouseMissing(f"the agent's wheels are not in {target.parent}: run `make setup` "
                                "(or `python -m corral.runtime.wheels`) while PyPI is reachable")
    remove_superseded(target, [])  # in use: another build's set-up must not take it away a day later
    return sorted(target.glob("*.whl"))


# -- Corral's own wheel ---------------------------------------------------------------------

def _package_root() -> Path:
    return Path(corral.__file__).parent


def package_files(root: Path | None = None) -> list[Path]:
    """Every file of the installed package but byte code, sorted (relative to its parent)."""
    root = root or _package_root()
    return sorted(p.relative_to(root.parent) for p in root.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"))


def source_digest(root: Path | None = None) -> str:
    """sha256 over the package files' names and contents (~1 MB: milliseconds)."""
    root = root or _package_root()
    h = hashlib.sha256()
    for rel in package_files(root):
        h.update(str(rel).encode() + b"\0" + (root.parent / rel).read_bytes() + b"\0")
    return h.hexdigest()


def corral_version(digest: str) -> str:
    """``0.1.0+g<digest>``: a local version label, so each source tree is its own version."""
    return f"{corral.__version__}+g{digest[:12]}"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _metadata(version: str) -> str:
    requires = "".join(f"Requires-Dist: {r}\n" for r in agent_requirements())
    return (f"Metadata-Version: 2.1\nName: corral\nVersion: {version}\n"
            "Summary: Corral's node agent and on-node job runners (the server's dependencies are not required)\n"
            f"Requires-Python: >=3.11,<3.12\n{requires}")


def _write_wheel(path: Path, root: Path, version: str) -> None:
    dist_info = f"corral-{version}.dist-info"
    entries: list[tuple[str, bytes]] = [(str(rel), (root.parent / rel).read_bytes()) for rel in package_files(root)]
    entries += [(f"{dist_info}/METADATA", _metadata(version).encode()),
                (f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: corral\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
                (f"{dist_info}/top_level.txt", b"corral\n")]
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    entries.append((f"{dist_info}/RECORD", (record + f"{dist_info}/RECORD,,\n").encode()))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)


def corral_wheel(cache: Path | None = None, root: Path | None = None) -> Path:
    """Corral's wheel for the installed sources, built when they changed (else the
    existing file); the ones it supersedes go a day later (``remove_superseded``)."""
    cache = cache or wheel_cache()
    root = root or _package_root()
    version = corral_version(source_digest(root))
    directory = cache / "corral"
    path = directory / f"corral-{version}-py3-none-any.whl"
    directory.mkdir(parents=True, exist_ok=True)
    with file_lock(cache / ".corral.lock"):
        if not path.is_file():
            partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
            try:
                _write_wheel(partial, root, version)
                partial.rename(path)
            finally:
                partial.unlink(missing_ok=True)
        remove_superseded(path, directory.glob("corral-*.whl"))
    return path


def main() -> int:
    """Set-up: fetch the third-party wheels (PyPI) and build Corral's wheel."""
    try:
        print(fetch_dependencies())
        print(corral_wheel())
    except DeployError as exc:
        print(f"corral: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
