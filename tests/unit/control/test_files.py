"""Step logs (append at an offset, idempotent on retries) and content-addressed artifacts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from corral.control.files import ArtifactMismatch, ArtifactStore, ArtifactTooLarge, LogStore


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
    sha_a, sha_b, sha_c = store.put_bytes(b"print(1)\n"), store.put_bytes(b"print(1)\n"), store.put_bytes(b"print(2)\n")
    assert sha_a == hashlib.sha256(b"print(1)\n").hexdigest()
    assert sha_a == sha_b != sha_c
    assert store.path(sha_a).read_bytes() == b"print(1)\n"
    assert (store.size(sha_c), store.exists(sha_c), store.exists("0" * 64), store.size("nonsense")) == (9, True, False, None)
    stored = [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()]
    assert sorted(p.name for p in stored) == sorted([sha_a, sha_c])  # one copy per content, no temp files left


def test_an_upload_is_checked_against_its_hash_and_limit(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    data = b"x" * 100
    sha = hashlib.sha256(data).hexdigest()
    upload = store.upload(sha, limit=100)
    upload.write(data[:60])
    upload.write(data[60:])
    upload.commit()
    assert store.path(sha).read_bytes() == data
    wrong = store.upload("0" * 64, limit=100)
    wrong.write(data)
    with pytest.raises(ArtifactMismatch, match=f"sha256 is {sha}"):
        wrong.commit()
    wrong.abort()
    big = store.upload(hashlib.sha256(data + b"!").hexdigest(), limit=100)
    with pytest.raises(ArtifactTooLarge):
        big.write(data + b"!")
    big.abort()
    assert not store.exists("0" * 64)
    assert [p.name for p in (tmp_path / "artifacts").rglob("*") if p.is_file()] == [sha]  # no partial file stays


@pytest.mark.parametrize("bad", ["", "../etc/passwd", "A" * 64, "0" * 63])
def test_artifact_path_rejects_non_hashes(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        ArtifactStore(tmp_path).path(bad)
