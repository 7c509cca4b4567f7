"""The sha256 and size rule for what the runtime repository serves: how the control plane
hashes a file it lists (``corral.runtime.repository``) and how a download of it is checked
as it arrives, on a node (``corral.runtime.fetch``) and on a host before Corral is there
(``corral.hosts.agent_install``).

Standard library only, and importing nothing of Corral's: the agent imports it, and the
host installer runs it as a plain file copied beside itself (``agent_install.files()``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20  # bytes read or hashed at a time


def file_sha256(path: Path | str) -> str:
    """The hex sha256 of the file's content, read ``CHUNK`` bytes at a time. Raises OSError."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class Received:
    """A download of the artifact ``name`` as the repository listed it (``sha256``,
    ``size`` in bytes): ``add`` each piece as it arrives, then ``mismatch()``."""

    def __init__(self, name: str, sha256: str, size: int):
        self.name, self.expected_sha256, self.expected_size = name, sha256, size
        self.size = 0  # bytes received so far
        self._hash = hashlib.sha256()

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._hash.update(chunk)

    @property
    def too_long(self) -> bool:
        """More bytes arrived than listed: the download is wrong, whatever comes next."""
        return self.size > self.expected_size

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def mismatch(self) -> str | None:
        """None when exactly the listed bytes arrived; else a line saying what arrived and
        what was listed, e.g. ``x.tar: received 10 bytes with sha256 ab.., the repository
        listed 12 bytes, cd..``."""
        if self.size == self.expected_size and self.hexdigest() == self.expected_sha256:
            return None
        return (f"{self.name}: received {self.size} bytes with sha256 {self.hexdigest()}, the repository listed "
                f"{self.expected_size} bytes, {self.expected_sha256}")
