"""``corral fs`` against a real cluster's HDFS (Hadoop 3.5.0 WebHDFS), the CLI run as a
subprocess so exit codes and error lines are what a user sees."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import ControlPlaneProcess

pytestmark = pytest.mark.integration
CORRAL = str(Path(sys.executable).with_name("corral"))  # the installed entry point, as users run it


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_error_line(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("corral: error: "), result.stderr
    assert all(f in lines[0] for f in fragments), lines[0]


def test_fs_put_ls_cat_get_rm_mkdir(shared_cp: ControlPlaneProcess, hadoop_cluster: dict[str, Any], tmp_path: Path) -> None:
    cluster_id = hadoop_cluster["id"]

    def fs(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CORRAL, "fs", cluster_id, *args], env=shared_cp.env, capture_output=True, text=True,
                              timeout=120)

    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(5 * 1024 * 1024 + 321))  # several DataNode packets, not a multiple of any
    notes = tmp_path / "notes.txt"
    notes.write_text("hello HDFS\nthrough WebHDFS, no Java on this side\n")
    base = "/it-fs"
    try:
        made = fs("mkdir", base)
        assert made.returncode == 0, made.stderr
        one_error_line(fs("mkdir", f"{base}/a/b"), 2, f"{base}/a: no such directory")
        assert fs("mkdir", "-p", f"{base}/a/b").returncode == 0

        put = fs("put", str(blob), str(notes), base)
        assert put.returncode == 0, put.stderr
        listed = json.loads(fs("ls", base, "-o", "json").stdout)
        assert {e["pathSuffix"]: (e["type"], e["length"]) for e in listed} == {
            "a": ("DIRECTORY", 0), "blob.bin": ("FILE", blob.stat().st_size), "notes.txt": ("FILE", notes.stat().st_size)}
        assert {e["owner"] for e in listed} == {"hadoop"}
        table = fs("ls", base)
        assert table.returncode == 0 and "blob.bin" in table.stdout and str(blob.stat().st_size) in table.stdout
        assert "-rw-r--r--" in table.stdout and "drwxr-xr-x" in table.stdout
        nested = json.loads(fs("ls", f"{base}/a", "-o", "json").stdout)
        assert [(e["pathSuffix"], e["type"]) for e in nested] == [("b", "DIRECTORY")]

        cat = fs("cat", f"{base}/notes.txt")
        assert cat.returncode == 0 and cat.stdout == notes.read_text()
        got = fs("get", f"{base}/blob.bin", str(tmp_path / "back.bin"))
        assert got.returncode == 0, got.stderr
        assert sha256(tmp_path / "back.bin") == sha256(blob)
        (tmp_path / "into").mkdir()
        assert fs("get", f"{base}/blob.bin", str(tmp_path / "into")).returncode == 0
        assert sha256(tmp_path / "into" / "blob.bin") == sha256(blob)

        # An existing target is refused without -f (exit 2, one line) and replaced with it.
        again = fs("put", str(blob), base)
        one_error_line(again, 2, f"{base}/blob.bin", "file exists")
        assert again.stdout == ""
        notes.write_text("second version\n")
        assert fs("put", "-f", str(notes), f"{base}/notes.txt").returncode == 0
        assert fs("cat", f"{base}/notes.txt").stdout == "second version\n"

        removed = fs("rm", f"{base}/blob.bin")
        assert removed.returncode == 0, removed.stderr
        one_error_line(fs("ls", f"{base}/blob.bin"), 2, "FileNotFoundException")
        one_error_line(fs("rm", f"{base}/blob.bin"), 2, "no such file or directory")
        one_error_line(fs("rm", base), 2, "is a directory")
        one_error_line(fs("cat", f"{base}/blob.bin"), 2, "FileNotFoundException")
    finally:
        fs("rm", "-r", base)
    one_error_line(fs("ls", base), 2, "does not exist")
