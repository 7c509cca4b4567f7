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

from dataclasses import dataclass
from pathlib import Path


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
        import hashlib  # noqa: PLC0415

        h = hashlib.sha256()
        for a in sorted(self.artifacts, key=lambda a: a.name):
            h.update(f"{a.name}\0{a.sha256}\n".encode())
        return h.hexdigest()

    @property
    def size(self) -> int:
        return sum(a.size for a in self.artifacts)
