"""Files the control plane keeps outside the database: step logs and artifacts.

Step logs are append-only files written at the offset the agent says, so a retried
upload never duplicates bytes. Artifacts (bootstrap scripts, step applications) are
stored by content hash and served to agents.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path

STREAMS = ("stdout", "stderr")


class LogStore:
    def __init__(self, root: Path):
        self.root = root
        self._lock = threading.Lock()

    def path(self, cluster_id: str, step_id: str, stream: str) -> Path:
        if stream not in STREAMS:
            raise ValueError(f"unknown stream {stream!r}")
        return self.root / cluster_id / "steps" / step_id / stream

    def size(self, cluster_id: str, step_id: str, stream: str) -> int:
        try:
            return self.path(cluster_id, step_id, stream).stat().st_size
        except FileNotFoundError:
            return 0

    def append(self, cluster_id: str, step_id: str, stream: str, offset: int, data: bytes) -> int:
        """Write ``data`` if it starts where the stored log ends; returns the stored size."""
        path = self.path(cluster_id, step_id, stream)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            size = path.stat().st_size if path.exists() else 0
            if offset == size and data:
                with open(path, "ab") as handle:
                    handle.write(data)
                size += len(data)
            return size

    def read(self, cluster_id: str, step_id: str, stream: str, offset: int, limit: int) -> bytes:
        try:
            with open(self.path(cluster_id, step_id, stream), "rb") as handle:
                handle.seek(offset)
                return handle.read(limit)
        except FileNotFoundError:
            return b""


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = root

    def put(self, source: Path) -> str:
        digest = hashlib.sha256()
        with open(source, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        sha = digest.hexdigest()
        dest = self.path(sha)
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{sha}.{os.getpid()}.{threading.get_ident()}")
            shutil.copyfile(source, tmp)
            tmp.replace(dest)
        return sha

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256")
        return self.root / sha256[:2] / sha256
