"""On a host: the release runtime from the control plane's repository, into the host's
runtime cache, once for every node of every cluster there.

An archive (``corral.runtime.archives``) is streamed from ``GET
/agent/v1/repository/{sha256}`` straight into ``tarfile``: its sha256 and size are
checked as the bytes arrive and it is unpacked into ``.<name>.unpacking`` beside its
final place, which it takes by one rename only once every byte has arrived and matched.
So a directory ``<cache>/<name>`` is always complete, and a killed download or unpack
leaves only a scratch directory that the next attempt removes. All of this runs under a
file lock per archive: the agents of several nodes of a host may deploy at once, the
first one fetches, the others wait and find it there. A mismatch is retried
(``ATTEMPTS``), then raised as ``DeployError``.

A single file that is not an archive (a class-data archive, ``.jsa``) is fetched the same
way into a directory (``ensure_file``): written under a temporary name, renamed once
verified.

Members are checked before anything is written (Debian 12's Python 3.11.2 predates
tarfile's extraction filters): regular files, directories and symlinks only, no absolute
names, no ``..``, no link that leads outside the archive.
"""

from __future__ import annotations

import logging
import posixpath
import tarfile
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from corral.runtime import DeployError, file_lock, remove_path
from corral.runtime.checksums import CHUNK, Received

log = logging.getLogger("corral.runtime.fetch")
ATTEMPTS = 3
SUFFIX = ".tar"


@dataclass(frozen=True)
class Remote:
    """An artifact as the repository lists it (``GET /repository/bundles/{kind}``)."""

    name: str
    sha256: str
    size: int  # bytes

    @property
    def directory(self) -> str:
        """Where an archive unpacks in the cache: its name without ``.tar``."""
        if not self.name.endswith(SUFFIX) or "/" in self.name or self.name.startswith("."):
            raise DeployError(f"the repository listed {self.name!r}, which is not a runtime archive")
        return self.name[: -len(SUFFIX)]

    @property
    def file_name(self) -> str:
        if "/" in self.name or self.name.startswith(".") or not self.name:
            raise DeployError(f"the repository listed {self.name!r}, which is not a plain file name")
        return self.name


@dataclass(frozen=True)
class Unpacked:
    path: Path
    fetched: int  # bytes downloaded for it now (0: it was in the cache)
    seconds: float


# sha256 -> a context manager yielding the content's bytes in pieces (raises on HTTP errors)
Download = Callable[[str], AbstractContextManager[Iterator[bytes]]]


class ChecksumMismatch(DeployError):
    pass


class _Verified:
    """A file object over ``chunks`` that checks what passes through against ``remote``
    (``checksums.Received``): more bytes than listed fail at once, the rest in ``verify``."""

    def __init__(self, chunks: Iterator[bytes], remote: Remote):
        self._chunks = chunks
        self._buffer = bytearray()
        self._pos = 0
        self.received = Received(remote.name, remote.sha256, remote.size)

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) - self._pos < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self.received.add(chunk)
            if self.received.too_long:
                raise ChecksumMismatch(f"{self.received.name}: more than the listed {self.received.expected_size} bytes arrived")
            if self._pos:  # keep the buffer small: tarfile reads 10 KiB at a time
                del self._buffer[:self._pos]
                self._pos = 0
            self._buffer += chunk
        end = len(self._buffer) if n < 0 else min(len(self._buffer), self._pos + n)
        out = bytes(self._buffer[self._pos:end])
        self._pos = end
        return out

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def verify(self) -> None:
        """Raises ChecksumMismatch unless exactly the listed bytes arrived."""
        problem = self.received.mismatch()
        if problem is not None:
            raise ChecksumMismatch(problem)


def _check_member(member: tarfile.TarInfo) -> None:
    name = member.name
    parts = name.split("/")
    if name.startswith("/") or ".." in parts or not name or "\0" in name:
        raise DeployError(f"the runtime archive has a member outside its directory: {name!r}")
    if member.issym():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
        if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise DeployError(f"the runtime archive has a link leading outside it: {name!r} -> {member.linkname!r}")
    elif not (member.isreg() or member.isdir()):
        raise DeployError(f"the runtime archive has a member that is not a file, directory or link: {name!r}")
    member.mode &= 0o755  # no set-uid bits, nothing writable by others
    member.uid = member.gid = 0
    member.uname = member.gname = ""


def _unpack_once(download: Download, remote: Remote, scratch: Path, received: list[int]) -> None:
    """Stream, check and unpack into the new directory ``scratch``; appends the bytes
    received (also on failure)."""
    scratch.mkdir()
    with download(remote.sha256) as chunks:
        stream = _Verified(chunks, remote)
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    _check_member(member)
                    tar.extract(member, scratch, set_attrs=not member.issym(), numeric_owner=True)
            stream.drain()  # the end-of-archive padding, which the hash covers too
        finally:
            received.append(stream.received.size)
    stream.verify()


def _write_once(download: Download, remote: Remote, scratch: Path, received: list[int]) -> None:
    """Stream and check into the file ``scratch``; appends the bytes received (also on failure)."""
    with download(remote.sha256) as chunks, open(scratch, "wb") as out:
        stream = _Verified(chunks, remote)
        try:
            while piece := stream.read(CHUNK):
                out.write(piece)
        finally:
            received.append(stream.received.size)
    stream.verify()


def _into_place(download: Download, remote: Remote, target: Path, scratch: Path,
                once: Callable[[Download, Remote, Path, list[int]], None]) -> Unpacked:
    """``target``, made by ``once`` at ``scratch`` beside it and renamed into place, under a
    file lock (concurrent callers wait for the first and find it there). A mismatch, an I/O
    or tar error is retried (``ATTEMPTS``, a pause after errors); an unsafe member is not.
    Raises DeployError when every attempt failed."""
    started = time.monotonic()
    if target.exists():
        return Unpacked(target, 0, 0.0)
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / f".{target.name}.lock"):
        if target.exists():  # another agent of this host fetched it meanwhile
            return Unpacked(target, 0, time.monotonic() - started)
        received: list[int] = []
        problem = ""
        for attempt in range(1, ATTEMPTS + 1):
            remove_path(scratch)  # also a killed attempt's
            try:
                once(download, remote, scratch, received)
                scratch.rename(target)
                return Unpacked(target, sum(received), time.monotonic() - started)
            except ChecksumMismatch as exc:
                problem = str(exc)
            except DeployError:
                remove_path(scratch)
                raise
            except (OSError, tarfile.TarError) as exc:
                problem = f"{remote.name}: {type(exc).__name__}: {exc}"
                time.sleep(min(5.0, attempt * 1.0))
            log.warning("attempt %d of %d: %s", attempt, ATTEMPTS, problem)
        remove_path(scratch)
        raise DeployError(f"could not fetch {remote.name} from the control plane's repository "
                          f"after {ATTEMPTS} attempts: {problem}")


def ensure_unpacked(download: Download, remote: Remote, cache: Path) -> Unpacked:
    """``<cache>/<archive name without .tar>``, fetched and unpacked on first use (concurrent
    callers wait for the first). Raises DeployError when every attempt failed (a checksum
    that never matches, an unsafe member, the control plane unreachable)."""
    return _into_place(download, remote, cache / remote.directory, cache / f".{remote.directory}.unpacking",
                       _unpack_once)


def ensure_file(download: Download, remote: Remote, directory: Path) -> Unpacked:
    """``<directory>/<name>``, fetched on first use and renamed into place once its sha256
    and size match (concurrent callers wait). Raises DeployError after ``ATTEMPTS``."""
    return _into_place(download, remote, directory / remote.file_name, directory / f".{remote.name}.partial",
                       _write_once)
