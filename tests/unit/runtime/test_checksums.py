"""The one sha256-and-size rule for repository artifacts (``corral.runtime.checksums``):
a file's hash, and a download checked as its pieces arrive."""

from __future__ import annotations

import ast
import hashlib
import sys
from pathlib import Path

from corral.runtime import checksums

DATA = b"corral " * 300_000  # more than one CHUNK
SHA = hashlib.sha256(DATA).hexdigest()


def test_a_files_hash_is_read_in_chunks(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(DATA)
    assert len(DATA) > checksums.CHUNK and checksums.file_sha256(tmp_path / "f") == SHA


def test_exactly_the_listed_bytes_match() -> None:
    received = checksums.Received("a.tar", SHA, len(DATA))
    for i in range(0, len(DATA), 4096):
        received.add(DATA[i:i + 4096])
    assert (received.size, received.too_long, received.mismatch()) == (len(DATA), False, None)


def test_short_long_or_altered_downloads_say_what_arrived() -> None:
    short = checksums.Received("a.tar", SHA, len(DATA))
    short.add(DATA[:10])
    assert short.mismatch() == (f"a.tar: received 10 bytes with sha256 {hashlib.sha256(DATA[:10]).hexdigest()}, "
                                f"the repository listed {len(DATA)} bytes, {SHA}")
    long = checksums.Received("a.tar", SHA, len(DATA))
    long.add(DATA + b"x")
    assert long.too_long and long.mismatch() is not None
    altered = checksums.Received("a.tar", SHA, len(DATA))
    altered.add(DATA[:-1] + b"!")
    assert not altered.too_long and "the repository listed" in (altered.mismatch() or "")


def test_standard_library_only() -> None:
    """The host installer runs it as a plain file before Corral is there."""
    tree = ast.parse(Path(checksums.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported - {"__future__"} <= set(sys.stdlib_module_names)
