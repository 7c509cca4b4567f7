"""The runtime repository's bookkeeping: hashes computed once and kept by size+mtime,
artifacts found by hash after a restart, bundles and their digests."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from corral.runtime import repository
from corral.runtime.repository import INDEX, Artifact, Bundle


def test_the_hash_is_computed_once_and_again_when_the_file_changes(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "a.whl"
    f.write_bytes(b"one")
    calls: list[Path] = []
    real = repository.file_sha256
    monkeypatch.setattr(repository, "file_sha256", lambda p: calls.append(p) or real(p))
    first = repository.artifact(f)
    assert first.sha256 == hashlib.sha256(b"one").hexdigest() and first.size == 3
    assert repository.artifact(f) == first and len(calls) == 1
    f.write_bytes(b"two!")
    os.utime(f, ns=(1, 1))
    assert repository.artifact(f).sha256 == hashlib.sha256(b"two!").hexdigest() and len(calls) == 2
    assert set(json.loads((tmp_path / INDEX).read_text())) == {"a.whl"}


def test_indexed_finds_unchanged_files_only(tmp_path: Path) -> None:
    f = tmp_path / "x.tar"
    f.write_bytes(b"payload")
    art = repository.artifact(f)
    assert repository.indexed(tmp_path, art.sha256) == art
    assert repository.indexed(tmp_path, "0" * 64) is None
    f.write_bytes(b"payload, changed")  # not re-indexed: the old hash must not serve it
    assert repository.indexed(tmp_path, art.sha256) is None


def test_an_index_entry_naming_another_directory_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"s")
    st = (tmp_path / "secret").stat()
    sub = tmp_path / "repo"
    sub.mkdir()
    (sub / INDEX).write_text(json.dumps({"../secret": [st.st_size, st.st_mtime_ns, "a" * 64]}))
    assert repository.indexed(sub, "a" * 64) is None


def test_bundle_digest_depends_on_names_and_hashes_not_order() -> None:
    a, b = Artifact("a", "1" * 64, 1, Path("/x/a")), Artifact("b", "2" * 64, 2, Path("/y/b"))
    assert Bundle((a, b)).digest == Bundle((b, a)).digest
    assert Bundle((a,)).digest != Bundle((a, b)).digest
    assert Bundle((a, b)).size == 3


def test_agent_bundle_names_corral_exactly(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from corral.runtime import wheels

    monkeypatch.setenv("CORRAL_WHEEL_CACHE", str(tmp_path))
    deps = wheels.deps_dir()
    deps.mkdir(parents=True)
    (deps / "httpx-0.28.1-py3-none-any.whl").write_bytes(b"not really a wheel")
    bundle = repository.agent_bundle()
    names = sorted(a.name for a in bundle.artifacts)
    assert names[0].startswith("corral-") and names[1] == "httpx-0.28.1-py3-none-any.whl"
    assert repository.agent_requirement(bundle) == "corral==" + names[0].split("-")[1]
    assert repository.agent_bundle().digest == bundle.digest
