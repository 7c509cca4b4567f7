"""Step logs (append at an offset, idempotent on retries) and content-addressed artifacts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from corral.control.files import ArtifactStore, LogStore


@pytest.fixture
def logs(tmp_path: Path) -> LogStore:
    return LogStore(tmp_path / "logs")


def test_append_at_the_end_writes(logs: LogStore) -> None:
    assert logs.append("c-1", "s-1", "stdout", 0, b"hello ") == 6
    assert logs.append("c-1", "s-1", "stdout", 6, b"world\n") == 12
    assert logs.read("c-1", "s-1", "stdout", 0, 100) == b"hello world\n"


def test_retried_upload_at_a_stale_offset_is_not_duplicated(logs: LogStore) -> None:
    logs.append("c-1", "s-1", "stdout", 0, b"line 1\n")
    logs.append("c-1", "s-1", "stdout", 7, b"line 2\n")
    # the agent did not get the answer for the second chunk and sends it again
    assert logs.append("c-1", "s-1", "stdout", 7, b"line 2\n") == 14
    assert logs.append("c-1", "s-1", "stdout", 0, b"line 1\n") == 14
    assert logs.read("c-1", "s-1", "stdout", 0, 100) == b"line 1\nline 2\n"


def test_append_past_the_end_leaves_no_hole(logs: LogStore) -> None:
    logs.append("c-1", "s-1", "stderr", 0, b"abc")
    assert logs.append("c-1", "s-1", "stderr", 10, b"xyz") == 3  # the caller resends from 3
    assert logs.read("c-1", "s-1", "stderr", 0, 100) == b"abc"


def test_streams_and_steps_are_separate(logs: LogStore) -> None:
    logs.append("c-1", "s-1", "stdout", 0, b"out")
    logs.append("c-1", "s-1", "stderr", 0, b"err")
    logs.append("c-1", "s-2", "stdout", 0, b"other")
    assert logs.read("c-1", "s-1", "stdout", 0, 100) == b"out"
    assert logs.read("c-1", "s-1", "stderr", 0, 100) == b"err"
    assert logs.size("c-1", "s-2", "stdout") == 5
    with pytest.raises(ValueError):
        logs.append("c-1", "s-1", "../../etc", 0, b"x")


def test_read_honours_offset_and_limit(logs: LogStore) -> None:
    logs.append("c-1", "s-1", "stdout", 0, b"0123456789")
    assert logs.read("c-1", "s-1", "stdout", 3, 4) == b"3456"
    assert logs.read("c-1", "s-1", "stdout", 8, 100) == b"89"
    assert logs.read("c-1", "s-1", "stdout", 10, 100) == b""
    assert logs.read("c-1", "s-1", "stdout", 0, 0) == b""
    assert logs.read("c-1", "s-9", "stdout", 0, 10) == b""  # no log yet
    assert logs.size("c-1", "s-9", "stdout") == 0


def test_artifacts_are_stored_by_content(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_bytes(b"print(1)\n")
    b.write_bytes(b"print(1)\n")
    c.write_bytes(b"print(2)\n")
    sha_a, sha_b, sha_c = store.put(a), store.put(b), store.put(c)
    assert sha_a == hashlib.sha256(b"print(1)\n").hexdigest()
    assert sha_a == sha_b != sha_c
    assert store.path(sha_a).read_bytes() == b"print(1)\n"
    assert store.path(sha_c).read_bytes() == b"print(2)\n"
    stored = [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()]
    assert sorted(p.name for p in stored) == sorted([sha_a, sha_c])  # one copy per content, no temp files left
    a.write_bytes(b"changed")  # the stored copy does not follow the source
    assert store.path(sha_a).read_bytes() == b"print(1)\n"


@pytest.mark.parametrize("bad", ["", "../etc/passwd", "A" * 64, "0" * 63])
def test_artifact_path_rejects_non_hashes(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        ArtifactStore(tmp_path).path(bad)
