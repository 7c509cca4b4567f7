"""Unpacking a runtime archive on a host: verified while streaming, complete or absent,
retried on a corrupted download, fetched once for concurrent agents, and never writing
outside its directory."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from corral.runtime import SUPERSEDED_GRACE_SECONDS, DeployError, archives, fetch, remove_superseded
from corral.runtime.fetch import Remote, ensure_unpacked


def make_tree(root: Path) -> Path:
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "a.jar").write_bytes(b"jar a" * 10_000)
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_text("#!/bin/sh\necho tool\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "a-link.jar").symlink_to("lib/a.jar")
    return root


class Server:
    """Serves byte strings by sha256, counting downloads; ``corrupt`` first answers are damaged."""

    def __init__(self, data: bytes, corrupt: int = 0, piece: int = 4096):
        self.data, self.corrupt, self.piece, self.downloads = data, corrupt, piece, 0
        self.lock = threading.Lock()

    @contextmanager
    def download(self, sha256: str) -> Iterator[Iterator[bytes]]:
        with self.lock:
            self.downloads += 1
            damaged = self.downloads <= self.corrupt
        body = bytearray(self.data)
        if damaged:
            body[len(body) // 2] ^= 0xFF
        yield (bytes(body[i:i + self.piece]) for i in range(0, len(body), self.piece))


def remote_for(path: Path) -> tuple[Remote, bytes]:
    data = path.read_bytes()
    return Remote(path.name, hashlib.sha256(data).hexdigest(), len(data)), data


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return archives.write_archive(tmp_path / "src" / "hadoop-3.5.0-abc.tar", [("", make_tree(tmp_path / "tree"))])


def test_an_archive_unpacks_once_with_times_modes_and_links(tmp_path: Path, archive: Path) -> None:
    remote, data = remote_for(archive)
    server = Server(data)
    done = ensure_unpacked(server.download, remote, tmp_path / "cache")
    home = tmp_path / "cache" / "hadoop-3.5.0-abc"
    assert done.path == home and done.fetched == len(data)
    assert (home / "lib" / "a.jar").read_bytes() == (tmp_path / "tree" / "lib" / "a.jar").read_bytes()
    assert (home / "lib" / "a.jar").stat().st_mtime_ns // 10**9 == (tmp_path / "tree" / "lib" / "a.jar").stat().st_mtime_ns // 10**9
    assert (home / "bin" / "tool").stat().st_mode & 0o777 == 0o755
    assert (home / "a-link.jar").is_symlink() and (home / "a-link.jar").read_bytes() == b"jar a" * 10_000
    again = ensure_unpacked(server.download, remote, tmp_path / "cache")
    assert again.fetched == 0 and server.downloads == 1
    assert sorted(p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")) == ["hadoop-3.5.0-abc"]


def test_a_corrupted_download_is_refused_and_retried(tmp_path: Path, archive: Path) -> None:
    remote, data = remote_for(archive)
    server = Server(data, corrupt=1)
    done = ensure_unpacked(server.download, remote, tmp_path / "cache")
    assert server.downloads == 2 and done.fetched == 2 * len(data)
    assert (done.path / "lib" / "a.jar").read_bytes() == b"jar a" * 10_000


def test_a_download_that_never_matches_leaves_nothing(tmp_path: Path, archive: Path) -> None:
    remote, data = remote_for(archive)
    server = Server(data, corrupt=fetch.ATTEMPTS)
    with pytest.raises(DeployError, match=f"after {fetch.ATTEMPTS} attempts: .*sha256"):
        ensure_unpacked(server.download, remote, tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []


def test_more_bytes_than_listed_are_refused(tmp_path: Path, archive: Path) -> None:
    remote, data = remote_for(archive)
    short = Remote(remote.name, remote.sha256, remote.size - 512)
    with pytest.raises(DeployError, match="more than the listed"):
        ensure_unpacked(Server(data).download, short, tmp_path / "cache")


def test_a_killed_unpack_leaves_nothing_that_looks_complete(tmp_path: Path, archive: Path) -> None:
    remote, data = remote_for(archive)

    class Killed(BaseException):
        pass

    @contextmanager
    def dies_halfway(sha256: str) -> Iterator[Iterator[bytes]]:
        def pieces() -> Iterator[bytes]:
            yield data[: len(data) // 2]
            raise Killed()
        yield pieces()

    with pytest.raises(Killed):
        ensure_unpacked(dies_halfway, remote, tmp_path / "cache")
    assert not (tmp_path / "cache" / "hadoop-3.5.0-abc").exists()
    done = ensure_unpacked(Server(data).download, remote, tmp_path / "cache")  # the next agent cleans up
    assert (done.path / "lib" / "a.jar").is_file()
    assert not list((tmp_path / "cache").glob(".*.unpacking"))


def test_concurrent_agents_fetch_once(tmp_path: Path, archive: Path) -> None:
    remote, data = remote_for(archive)
    server = Server(data, piece=512)
    results: list[fetch.Unpacked] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_unpacked(server.download, remote, tmp_path / "c")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.downloads == 1 and sorted(r.fetched for r in results) == [0, 0, 0, len(data)]


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for info, content in members:
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content) if content else None)
    return out.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize("bad", [
    _member("/etc/evil"), _member("../evil"), _member("lib/../../evil"),
    _member("lib/up", tarfile.SYMTYPE, "../../evil"), _member("abs", tarfile.SYMTYPE, "/etc/passwd"),
    _member("hard", tarfile.LNKTYPE, "lib/a.jar"), _member("dev", tarfile.CHRTYPE), _member("fifo", tarfile.FIFOTYPE),
])
def test_members_outside_the_archive_are_refused(tmp_path: Path, bad: tarfile.TarInfo) -> None:
    data = _tar([(_member("lib", tarfile.DIRTYPE), b""), (bad, b"x" if bad.isreg() else b"")])
    remote = Remote("spark-4.3.0-x.tar", hashlib.sha256(data).hexdigest(), len(data))
    cache = tmp_path / "deep" / "cache"
    with pytest.raises(DeployError, match="runtime archive has"):
        ensure_unpacked(Server(data).download, remote, cache)
    assert not (tmp_path / "deep" / "evil").exists() and not (tmp_path / "evil").exists()
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.parametrize("name", ["../x.tar", ".hidden.tar", "spark.zip", "a/b.tar"])
def test_only_plain_archive_names_are_accepted(name: str) -> None:
    with pytest.raises(DeployError, match="not a runtime archive"):
        Remote(name, "0" * 64, 1).directory


def test_a_superseded_build_stays_a_day_for_control_planes_still_serving_it(tmp_path: Path) -> None:
    """Two control planes of different builds on one machine share the runtime cache: a new
    build must not take away the archive the other is serving (a 404 mid-create)."""
    out = tmp_path / "out"
    older = archives.write_archive(out / "hadoop-3.5.0-aaa.tar", [("", make_tree(tmp_path / "t1"))])
    newer = archives.write_archive(out / "hadoop-3.5.0-bbb.tar", [("", make_tree(tmp_path / "t2"))])
    assert older.exists() and newer.exists()  # superseded a moment ago
    a_day_ago(out / ".hadoop-3.5.0-aaa.tar.superseded")
    assert archives.write_archive(newer, []) == newer  # the served build, asked for again
    assert not older.exists() and newer.exists()
    assert not list(out.glob(".*.superseded"))  # newer is current again: never marked for long


def a_day_ago(mark: Path) -> None:
    assert mark.is_file(), mark
    then = mark.stat().st_mtime - SUPERSEDED_GRACE_SECONDS
    os.utime(mark, (then, then))


def test_superseded_builds_are_marked_then_removed_a_day_later_and_the_current_one_never(tmp_path: Path) -> None:
    now = [1000.0]
    current, file_build, dir_build = tmp_path / "b-3", tmp_path / "b-1", tmp_path / "b-2"
    current.write_text("3")
    file_build.write_text("1")
    (dir_build / "sub").mkdir(parents=True)
    others = lambda: sorted(tmp_path.glob("b-*"))  # noqa: E731
    assert remove_superseded(current, others(), clock=lambda: now[0]) == []
    assert {p.name for p in tmp_path.glob(".*")} == {".b-1.superseded", ".b-2.superseded"}
    for mark in tmp_path.glob(".*.superseded"):
        os.utime(mark, (now[0], now[0]))
    now[0] += SUPERSEDED_GRACE_SECONDS - 1
    assert remove_superseded(current, others(), clock=lambda: now[0]) == []
    now[0] += 1
    assert remove_superseded(current, others(), clock=lambda: now[0]) == [file_build, dir_build]
    assert sorted(tmp_path.iterdir()) == [current]
    (tmp_path / ".b-3.superseded").touch()  # marked by a plane of another build...
    assert remove_superseded(current, others(), clock=lambda: now[0]) == []  # ...and current again here
    assert sorted(tmp_path.iterdir()) == [current]
