"""``corral fs``: paths, WebHDFS error mapping, listing rows, and the commands end to end
against an in-memory WebHDFS (NameNode + DataNode) behind an httpx mock transport."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest

from corral.cli import fs_cmd
from corral.cli.client import ApiError
from corral.cli.fs_cmd import WebHdfs, hdfs_path, ls_rows, mode_string, namenode_url, put_targets, remote_error
from corral.cli.main import main

NN = "http://127.9.0.2:9870"
DN = "http://127.9.0.3:9864"
TRACE = "\n\tat org.apache.hadoop.hdfs.server.namenode.FSNamesystem.x(FSNamesystem.java:1)\n"


def remote(status: int, exception: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"RemoteException": {"exception": exception, "javaClassName": f"x.{exception}",
                                                            "message": message}})


class FakeWebHdfs:
    """Just enough of WebHDFS: a namespace of directories (None) and files (bytes)."""

    def __init__(self) -> None:
        self.tree: dict[str, bytes | None] = {"/": None}
        self.requests: list[httpx.Request] = []

    def status(self, path: str) -> dict[str, Any]:
        data = self.tree[path]
        return {"pathSuffix": "", "type": "FILE" if data is not None else "DIRECTORY", "length": len(data or b""),
                "owner": "hadoop", "group": "supergroup", "permission": "644" if data is not None else "755",
                "modificationTime": 1_700_000_000_000}

    def mkdirs(self, path: str) -> None:
        while path not in self.tree:
            self.tree[path] = None
            path = os.path.dirname(path)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = unquote(request.url.path.removeprefix("/webhdfs/v1")) or "/"
        op, params = request.url.params["op"], request.url.params
        if f"{request.url.scheme}://{request.url.netloc.decode()}" == DN:
            if op == "OPEN":
                return httpx.Response(200, content=self.tree[path])
            if path == "/broken":  # what a write with no live DataNode to hold a block gets
                return remote(403, "IOException", f"File /broken could only be written to 0 of the 1 minReplication nodes.{TRACE}")
            if path in self.tree and params["overwrite"] != "true":
                return remote(403, "FileAlreadyExistsException", f"{path} for client 127.9.0.3 already exists{TRACE}")
            self.mkdirs(os.path.dirname(path))
            self.tree[path] = request.content
            return httpx.Response(201)
        if op in ("CREATE", "OPEN"):
            if op == "OPEN" and self.tree.get(path, None) is None:
                return remote(404, "FileNotFoundException", f"File does not exist: {path}{TRACE}")
            return httpx.Response(307, headers={"Location": f"{DN}/webhdfs/v1{quote(path)}?{params}"})
        if op == "MKDIRS":
            self.mkdirs(path)
            return httpx.Response(200, json={"boolean": True})
        if path not in self.tree:
            return remote(404, "FileNotFoundException", f"File does not exist: {path}")
        if op == "GETFILESTATUS":
            return httpx.Response(200, json={"FileStatus": self.status(path)})
        if op == "LISTSTATUS":
            children = [p for p in self.tree if p != path and os.path.dirname(p) == path]
            entries = [{**self.status(p), "pathSuffix": os.path.basename(p)} for p in children] \
                if self.tree[path] is None else [self.status(path)]
            return httpx.Response(200, json={"FileStatuses": {"FileStatus": entries}})
        assert op == "DELETE"
        for p in [p for p in self.tree if p == path or p.startswith(path + "/")]:
            del self.tree[p]
        return httpx.Response(200, json={"boolean": True})


class FakeClient:
    cluster: dict[str, Any] = {"id": "c-test", "status": "WAITING", "services": ["hdfs", "spark"],
                               "web_uis": {"namenode": NN}}

    def get(self, path: str) -> dict[str, Any]:
        assert path == "/clusters/c-test"
        return self.cluster


@pytest.fixture
def hdfs(monkeypatch: pytest.MonkeyPatch) -> FakeWebHdfs:
    fake = FakeWebHdfs()
    monkeypatch.setattr(fs_cmd, "Client", FakeClient)
    monkeypatch.setattr(fs_cmd, "WebHdfs", lambda url: WebHdfs(url, transport=httpx.MockTransport(fake)))
    return fake


def corral(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["corral", "fs", "c-test", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


def test_paths_are_absolute_and_normalized() -> None:
    assert hdfs_path("data/x.csv") == "/user/hadoop/data/x.csv"
    assert hdfs_path("/a/../b//c/") == "/b/c"
    assert hdfs_path("//a") == "/a" and hdfs_path("/") == "/"
    assert hdfs_path("hdfs://127.9.0.2:8020/tera/in") == "/tera/in"


def test_put_targets_follow_hdfs_dfs_put() -> None:
    directory = {"type": "DIRECTORY"}
    assert put_targets(["a.txt"], "/d", directory) == ["/d/a.txt"]
    assert put_targets(["a.txt", "b.bin"], "/new/", None) == ["/new/a.txt", "/new/b.bin"]
    assert put_targets(["a.txt"], "/d/renamed.txt", None) == ["/d/renamed.txt"]
    assert put_targets(["a.txt"], "/d/f", {"type": "FILE"}) == ["/d/f"]
    with pytest.raises(ApiError, match="not a directory"):
        put_targets(["a", "b"], "/d/f", {"type": "FILE"})


def test_remote_exceptions_become_one_line_cli_errors() -> None:
    missing = remote_error(remote(404, "FileNotFoundException", f"File does not exist: /x{TRACE}"), "ls /x")
    assert isinstance(missing, ApiError) and missing.status == 404
    assert str(missing) == "ls /x: File does not exist: /x (FileNotFoundException)"
    # WebHDFS answers 403 for any IOException: a failed write is the cluster's fault (exit 1), not the user's.
    failed = remote_error(remote(403, "IOException", f"could only be written to 0 of the 1 minReplication nodes{TRACE}"), "put /y")
    assert isinstance(failed, RuntimeError) and "\n" not in str(failed) and "(IOException)" in str(failed)
    assert isinstance(remote_error(remote(403, "SafeModeException", "Name node is in safe mode."), "mkdir /z"), RuntimeError)
    assert isinstance(remote_error(remote(403, "AccessControlException", "Permission denied"), "rm /z"), ApiError)
    assert isinstance(remote_error(httpx.Response(502, text="Bad Gateway"), "ls /"), RuntimeError)
    assert str(remote_error(httpx.Response(400, text=""), "ls /")) == "ls /: HTTP 400"


def test_mode_strings_and_rows_like_hdfs_dfs_ls() -> None:
    assert mode_string({"type": "DIRECTORY", "permission": "755"}) == "drwxr-xr-x"
    assert mode_string({"type": "FILE", "permission": "640", "aclBit": True}) == "-rw-r-----+"
    assert mode_string({"type": "DIRECTORY", "permission": "1777"}) == "drwxrwxrwt"
    assert mode_string({"type": "DIRECTORY", "permission": "1770"}) == "drwxrwx--T"
    entry = {"type": "FILE", "permission": "644", "owner": "hadoop", "group": "supergroup", "length": 42,
             "modificationTime": 0}
    rows = ls_rows("/d", [{**entry, "pathSuffix": "b"}, {**entry, "pathSuffix": "a", "type": "DIRECTORY"}])
    assert [r[5] for r in rows] == ["a", "b"] and rows[1][:4] == ("-rw-r--r--", "hadoop", "supergroup", "42")
    assert ls_rows("/d/f.txt", [{**entry, "pathSuffix": ""}])[0][5] == "/d/f.txt"  # listing a file names it


def test_the_cluster_must_be_up_and_have_hdfs() -> None:
    up = {"id": "c-1", "status": "RUNNING", "services": ["hdfs"], "web_uis": {"namenode": NN}}
    assert namenode_url(up) == NN
    with pytest.raises(ApiError, match=r"^cluster c-1 has no HDFS \(services: spark\)$"):
        namenode_url({**up, "services": ["spark"], "web_uis": {"spark-master": "http://x:8080"}})
    with pytest.raises(ApiError, match="cluster c-1 is TERMINATED: its HDFS is usable only while it is WAITING or RUNNING"):
        namenode_url({**up, "status": "TERMINATED", "web_uis": {}})


def test_put_ls_cat_get_rm_mkdir(hdfs: FakeWebHdfs, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(3 * fs_cmd.CHUNK + 17))
    (tmp_path / "[b]x.txt").write_text("hello\nworld\n")
    assert corral(capsys, monkeypatch, "mkdir", "/in")[0] == 0
    code, out, _ = corral(capsys, monkeypatch, "put", str(blob), str(tmp_path / "[b]x.txt"), "/in")
    assert code == 0 and "-> /in/blob.bin" in out and "-> /in/[b]x.txt (12 bytes)" in out
    # CREATE in two steps: an empty PUT to the NameNode, then the data to the DataNode, sized, not chunked.
    creates = [r for r in hdfs.requests if r.url.params["op"] == "CREATE" and r.url.path.endswith("blob.bin")]
    assert [str(r.url).startswith(NN) for r in creates] == [True, False] and creates[0].content == b""
    assert creates[1].headers["content-length"] == str(blob.stat().st_size) and "transfer-encoding" not in creates[1].headers
    assert all(r.url.params["user.name"] == "hadoop" for r in hdfs.requests)

    code, out, _ = corral(capsys, monkeypatch, "ls", "/in", "-o", "json")
    listed = {e["pathSuffix"]: e for e in json.loads(out)}
    assert code == 0 and listed["blob.bin"]["length"] == blob.stat().st_size and listed["blob.bin"]["path"] == "/in/blob.bin"
    code, out, _ = corral(capsys, monkeypatch, "ls", "/in")
    assert code == 0 and "[b]x.txt" in out and "-rw-r--r--" in out  # a name in brackets is not Rich markup

    code, out, _ = corral(capsys, monkeypatch, "cat", "/in/[b]x.txt")
    assert (code, out) == (0, "hello\nworld\n")
    code, _, _ = corral(capsys, monkeypatch, "get", "/in/blob.bin", str(tmp_path / "back"))
    assert code == 0 and hashlib.sha256((tmp_path / "back").read_bytes()).digest() == hashlib.sha256(blob.read_bytes()).digest()
    (tmp_path / "dir").mkdir()
    assert corral(capsys, monkeypatch, "get", "/in/blob.bin", str(tmp_path / "dir"))[0] == 0
    assert (tmp_path / "dir" / "blob.bin").read_bytes() == blob.read_bytes()
    assert os.listdir(tmp_path / "dir") == ["blob.bin"]  # no partial file left beside it

    code, out, err = corral(capsys, monkeypatch, "put", str(blob), "/in")
    assert code == 2 and err == "corral: error: put: /in/blob.bin: file exists (use -f to overwrite it)\n"
    (tmp_path / "blob.bin").write_bytes(b"new")
    assert corral(capsys, monkeypatch, "put", "-f", str(blob), "/in/blob.bin")[0] == 0
    assert hdfs.tree["/in/blob.bin"] == b"new"

    code, _, err = corral(capsys, monkeypatch, "rm", "/in")
    assert code == 2 and "is a directory (use -r to remove it)" in err
    assert corral(capsys, monkeypatch, "rm", "/in/blob.bin")[0] == 0
    code, _, err = corral(capsys, monkeypatch, "ls", "/in/blob.bin")
    assert code == 2 and err == "corral: error: ls /in/blob.bin: File does not exist: /in/blob.bin (FileNotFoundException)\n"
    assert corral(capsys, monkeypatch, "rm", "/in/blob.bin")[:2] == (2, "")
    assert corral(capsys, monkeypatch, "rm", "-r", "/in")[0] == 0 and set(hdfs.tree) == {"/"}


def test_bad_input_and_server_failures_exit_codes(hdfs: FakeWebHdfs, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    local = tmp_path / "a.txt"
    local.write_text("a")
    code, _, err = corral(capsys, monkeypatch, "put", str(tmp_path / "missing"), "/x")
    assert code == 2 and err.endswith("missing: no such local file\n") and hdfs.requests == []
    code, _, err = corral(capsys, monkeypatch, "mkdir", "/no/such/parent")
    assert code == 2 and "mkdir: /no/such: no such directory (use -p to make it)" in err
    assert corral(capsys, monkeypatch, "mkdir", "-p", "/no/such/parent")[0] == 0 and "/no/such" in hdfs.tree
    code, _, err = corral(capsys, monkeypatch, "put", str(local), "/broken")
    assert code == 1 and err.count("\n") == 1 and "HDFS failed: put /broken:" in err and "(IOException)" in err
    code, _, err = corral(capsys, monkeypatch, "cat", "/nope")
    assert code == 2 and "cat /nope: File does not exist: /nope" in err

    monkeypatch.setattr(FakeClient, "cluster", {**FakeClient.cluster, "status": "TERMINATED", "web_uis": {}})
    code, _, err = corral(capsys, monkeypatch, "ls", "/")
    assert code == 2 and "c-test is TERMINATED" in err


def test_an_unreachable_namenode_is_not_blamed_on_the_corral_server(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    monkeypatch.setattr(fs_cmd, "Client", FakeClient)
    monkeypatch.setattr(fs_cmd, "WebHdfs", lambda url: WebHdfs(url, transport=httpx.MockTransport(refuse)))
    code, _, err = corral(capsys, monkeypatch, "ls", "/")
    assert code == 1 and err == f"corral: error: cannot reach HDFS at {NN}: [Errno 111] Connection refused\n"
