"""Files the control plane keeps outside the database: step logs and artifacts.

Step logs are append-only files written at the offset the agent says, so a retried
upload never duplicates bytes. Artifacts (bootstrap scripts, step files) are uploaded by
clients, stored by content hash (checked while they arrive) and served to agents.
"""

from __future__ import annotations

import hashlib
import secrets
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


class ArtifactTooLarge(Exception):
    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"an artifact may have at most {limit} bytes")


class ArtifactMismatch(Exception):
    def __init__(self, expected: str, actual: str):
        self.expected, self.actual = expected, actual
        super().__init__(f"the content's sha256 is {actual}, not {expected}")


class ArtifactUpload:
    """One upload in progress: bytes go to a private temporary file beside the store and
    are hashed as they come; ``commit`` puts the file in place only if the hash matches."""

    def __init__(self, store: "ArtifactStore", sha256: str, limit: int):
        self.dest = store.path(sha256)  # raises ValueError for a non-hash
        self.sha256, self.limit, self.size = sha256, limit, 0
        self._digest = hashlib.sha256()
        store.root.mkdir(parents=True, exist_ok=True)
        self._tmp = store.root / f".upload-{secrets.token_hex(8)}"
        self._handle = open(self._tmp, "wb")

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise ArtifactTooLarge(self.limit)
        self._digest.update(data)
        self._handle.write(data)

    def commit(self) -> None:
        self._handle.close()
        actual = self._digest.hexdigest()
        if actual != self.sha256:
            raise ArtifactMismatch(self.sha256, actual)
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self._tmp.replace(self.dest)  # atomic: a reader sees the whole file or none

    def abort(self) -> None:
        self._handle.close()
        self._tmp.unlink(missing_ok=True)


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = root

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a sha256")
        return self.root / sha256[:2] / sha256

    def size(self, sha256: str) -> int | None:
        """The stored artifact's size in bytes, or None when it is not stored."""
        try:
            return self.path(sha256).stat().st_size
        except (ValueError, FileNotFoundError):
            return None

    def exists(self, sha256: str) -> bool:
        return self.size(sha256) is not None

    def upload(self, sha256: str, limit: int) -> ArtifactUpload:
        return ArtifactUpload(self, sha256, limit)

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; returns its sha256."""
        sha = hashlib.sha256(data).hexdigest()
        upload = self.upload(sha, len(data))
        try:
            upload.write(data)
            upload.commit()
        except BaseException:
            upload.abort()
            raise
        return sha
