"""The host-side installer (``corral.hosts.agent_install``) against a local HTTP server
that serves small real wheels as the control plane's repository route would: fetched with
the bearer token, sha256-checked (a corrupted answer retried, a refused token not),
installed offline into a fresh environment once (with the bundle's own pip when it ships
one), safely when two creates run it at the same time from its copied files."""

from __future__ import annotations

import ast
import base64
import hashlib
import http.server
import io
import json
import subprocess
import sys
import threading
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from corral.hosts import agent_install

TOKEN = "s3cret-agent-token"
NAME = "tinypkg-0.1-py3-none-any.whl"


def _wheel() -> bytes:
    files = {
        "tinypkg/__init__.py": b"VALUE = 42\n",
        "tinypkg-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n",
        "tinypkg-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("tinypkg-0.1.dist-info/RECORD,,")
    files["tinypkg-0.1.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buffer.getvalue()


WHEEL = _wheel()
SHA = hashlib.sha256(WHEEL).hexdigest()


class Repository(http.server.ThreadingHTTPServer):
    """Serves ``blobs`` (sha256 -> bytes); ``corrupt``: how many answers get a flipped byte."""

    blobs: dict[str, bytes]
    requests: list[str]
    corrupt = 0


class Handler(http.server.BaseHTTPRequestHandler):
    server: Repository

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.requests.append(self.path)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b'{"detail": "bad agent token"}')
            return
        blob = self.server.blobs.get(self.path.removeprefix("/agent/v1/repository/"))
        if blob is None:
            self.send_response(404)
            self.end_headers()
            return
        body = bytearray(blob)
        if self.server.corrupt > 0:
            self.server.corrupt -= 1
            body[100] ^= 0xFF
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(bytes(body))

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def repo() -> Iterator[tuple[Repository, str]]:
    server = Repository(("127.0.0.1", 0), Handler)
    server.blobs, server.requests = {SHA: WHEEL}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_install.time, "sleep", lambda s: None)


def _manifest(tmp_path: Path, url: str, wheels: list[dict[str, object]] | None = None) -> dict[str, object]:
    base = tmp_path / ".corral-host"
    return json.loads(agent_install.manifest(
        url, str(base / "cache" / "wheels"), str(base / "agent" / "abc"), str(base / "locks" / "agent-install.lock"),
        wheels if wheels is not None else [{"name": NAME, "sha256": SHA, "size": len(WHEEL)}]))


def test_builds_the_environment_once_from_the_served_wheels(tmp_path: Path, repo: tuple[Repository, str]) -> None:
    server, url = repo
    manifest = _manifest(tmp_path, url)
    first = agent_install.install(manifest, TOKEN)
    env = Path(str(manifest["env"]))
    assert (first["installed"], first["fetched_bytes"], first["python"]) == (True, len(WHEEL), str(env / "bin" / "python"))
    out = subprocess.run([str(env / "bin" / "python"), "-c", "import tinypkg; print(tinypkg.VALUE)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "42"
    assert (env / agent_install.COMPLETE).exists()
    cache = Path(str(manifest["wheel_cache"]))
    assert (cache / SHA / NAME).read_bytes() == WHEEL
    assert not list(cache.glob(".links-*")) and not list((cache / SHA).glob(".part-*"))  # scratch removed
    again = agent_install.install(manifest, TOKEN)
    assert (again["installed"], again["fetched_bytes"]) == (False, 0)
    assert server.requests == [f"/agent/v1/repository/{SHA}"]  # fetched once per host


def test_the_bundles_own_pip_installs_into_an_environment_without_ensurepip(
        tmp_path: Path, repo: tuple[Repository, str]) -> None:
    from corral.runtime import wheels

    try:
        pip = next(p for p in wheels.dependency_wheels() if p.name.startswith("pip-"))
    except (wheels.WheelhouseMissing, StopIteration):
        pytest.skip("the agent's wheelhouse (make setup) has no pip wheel here")
    server, url = repo
    data = pip.read_bytes()
    server.blobs[hashlib.sha256(data).hexdigest()] = data
    manifest = _manifest(tmp_path, url, [{"name": NAME, "sha256": SHA, "size": len(WHEEL)},
                                         {"name": pip.name, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}])
    assert agent_install.install(manifest, TOKEN)["installed"]
    python = Path(str(manifest["env"])) / "bin" / "python"
    version = pip.name.split("-")[1]
    probe = "import importlib.metadata as m, tinypkg; print(m.version('pip'), tinypkg.VALUE)"
    assert subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                          check=True).stdout.split() == [version, "42"]


def test_a_corrupted_answer_is_fetched_again(tmp_path: Path, repo: tuple[Repository, str], no_sleep: None) -> None:
    server, url = repo
    server.corrupt = 1
    result = agent_install.install(_manifest(tmp_path, url), TOKEN)
    assert result["installed"] and result["fetched_bytes"] == 2 * len(WHEEL)
    assert len(server.requests) == 2


def test_a_wheel_that_never_matches_is_an_error_and_leaves_nothing(tmp_path: Path, repo: tuple[Repository, str],
                                                                   no_sleep: None) -> None:
    server, url = repo
    server.corrupt = agent_install.ATTEMPTS
    manifest = _manifest(tmp_path, url)
    with pytest.raises(agent_install.InstallError, match=f"the repository listed {len(WHEEL)} bytes, {SHA}"):
        agent_install.install(manifest, TOKEN)
    assert len(server.requests) == agent_install.ATTEMPTS
    assert not any(p.is_file() for p in Path(str(manifest["wheel_cache"])).rglob("*"))
    assert not Path(str(manifest["env"])).exists()


def test_a_refused_token_names_the_status_and_builds_nothing(tmp_path: Path, repo: tuple[Repository, str]) -> None:
    server, url = repo
    manifest = _manifest(tmp_path, url)
    with pytest.raises(agent_install.InstallError, match=f"HTTP 401 for {NAME}"):
        agent_install.install(manifest, "wrong")
    assert not Path(str(manifest["env"])).exists()
    assert len(server.requests) == 1  # a 4xx is not retried


@pytest.mark.parametrize(("name", "sha256"), [("../evil.whl", SHA), (".hidden.whl", SHA), ("a/b.whl", SHA),
                                              ("setup.py", SHA), (NAME, "../" + SHA[3:]), (NAME, SHA.upper())])
def test_only_wheel_file_names_and_hashes_become_paths(tmp_path: Path, name: str, sha256: str) -> None:
    manifest = _manifest(tmp_path, "http://127.0.0.1:9", [{"name": name, "sha256": sha256, "size": 1}])
    with pytest.raises(agent_install.InstallError, match="the repository listed"):
        agent_install.install(manifest, TOKEN)
    assert not (tmp_path / ".corral-host" / "cache" / "wheels").exists() or \
        not any((tmp_path / ".corral-host" / "cache" / "wheels").iterdir())


def _copied(tmp_path: Path) -> Path:
    """The installer's files in a directory of their own, as the ssh provider puts them."""
    directory = tmp_path / "helper"
    directory.mkdir()
    for name, data in agent_install.files().items():
        (directory / name).write_bytes(data)
    return directory / "agent_install.py"


def test_concurrent_runs_of_the_copied_files_install_once(tmp_path: Path, repo: tuple[Repository, str]) -> None:
    """As the provider runs it: ``python3.11 agent_install.py MANIFEST`` with the token on
    stdin, from a directory of its own (``-E``: no PYTHONPATH, so no Corral to import)."""
    server, url = repo
    manifest_path = tmp_path / "m.json"
    manifest_path.write_text(json.dumps(_manifest(tmp_path, url)))
    script = _copied(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-E", str(script), str(manifest_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path) for _ in range(2)]
    results = [p.communicate(TOKEN.encode() + b"\n", timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert sorted(json.loads(out)["installed"] for out, _ in results) == [False, True]
    assert len(server.requests) == 1


def test_no_token_on_stdin_is_refused(tmp_path: Path) -> None:
    manifest_path = tmp_path / "m.json"
    manifest_path.write_text(json.dumps(_manifest(tmp_path, "http://127.0.0.1:9")))
    proc = subprocess.run([sys.executable, "-E", str(_copied(tmp_path)), str(manifest_path)], input=b"",
                          capture_output=True)
    assert proc.returncode == 2 and b"no agent token on stdin" in proc.stderr


def _imports(tree: ast.Module) -> set[str]:
    """Top-level modules imported, but for the ``if __package__:`` branch (taken only when
    imported as part of Corral, never on a host)."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "__package__":
            nodes: list[ast.stmt] = node.orelse
        else:
            nodes = [node]
        for n in (n for top in nodes for n in ast.walk(top)):
            if isinstance(n, ast.Import):
                found |= {a.name.split(".")[0] for a in n.names}
            elif isinstance(n, ast.ImportFrom) and n.module:
                found.add(n.module.split(".")[0])
    return found


def test_the_files_are_standard_library_only() -> None:
    """What runs on a host before Corral is there: the standard library and each other."""
    shipped = agent_install.files()
    assert sorted(shipped) == ["agent_install.py", "checksums.py"]
    local = {Path(name).stem for name in shipped}
    for name, data in shipped.items():
        assert _imports(ast.parse(data)) - {"__future__"} - local <= set(sys.stdlib_module_names), name
