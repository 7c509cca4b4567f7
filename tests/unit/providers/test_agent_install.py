"""The host-side installer (``corral.hosts.agent_install``) against a local HTTP server
that serves a small real wheel as the control plane's repository route would: fetched
with the bearer token, checked, installed offline into a fresh environment once, safely
when two creates run it at the same time."""

from __future__ import annotations

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


class Repository(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        Repository.requests.append(self.path)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b'{"detail": "bad agent token"}')
            return
        if self.path != f"/agent/v1/repository/{SHA}":
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(WHEEL)))
        self.end_headers()
        self.wfile.write(WHEEL)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def repository() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Repository)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Repository.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _manifest(tmp_path: Path, url: str, size: int = len(WHEEL)) -> dict[str, object]:
    base = tmp_path / ".corral-host"
    return {"control_url": url, "wheel_cache": str(base / "cache" / "wheels"), "env": str(base / "agent" / "abc"),
            "lock": str(base / "locks" / "agent-install.lock"),
            "wheels": [{"name": "tinypkg-0.1-py3-none-any.whl", "sha256": SHA, "size": size}]}


def test_builds_the_environment_once_from_the_served_wheels(tmp_path: Path, repository: str) -> None:
    manifest = _manifest(tmp_path, repository)
    assert agent_install.install(manifest, TOKEN) == "installed"
    env = Path(str(manifest["env"]))
    out = subprocess.run([str(env / "bin" / "python"), "-c", "import tinypkg; print(tinypkg.VALUE)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "42"
    assert (env / agent_install.COMPLETE).exists()
    cached = Path(str(manifest["wheel_cache"])) / SHA / "tinypkg-0.1-py3-none-any.whl"
    assert cached.read_bytes() == WHEEL
    assert not list(Path(str(manifest["wheel_cache"])).glob(".links-*"))  # scratch removed
    assert agent_install.install(manifest, TOKEN) == "present"
    assert len(Repository.requests) == 1  # fetched once per host


def test_a_refused_token_names_the_status_and_builds_nothing(tmp_path: Path, repository: str) -> None:
    manifest = _manifest(tmp_path, repository)
    with pytest.raises(agent_install.InstallError, match="HTTP 401 for tinypkg-0.1-py3-none-any.whl"):
        agent_install.install(manifest, "wrong")
    assert not Path(str(manifest["env"])).exists()
    assert len(Repository.requests) == 1  # a 4xx is not retried


def test_a_wheel_that_does_not_match_its_hash_is_refused(tmp_path: Path, repository: str) -> None:
    manifest = _manifest(tmp_path, repository, size=len(WHEEL) + 1)
    agent_install.ATTEMPTS, saved = 1, agent_install.ATTEMPTS
    try:
        with pytest.raises(agent_install.InstallError, match="expected"):
            agent_install.install(manifest, TOKEN)
    finally:
        agent_install.ATTEMPTS = saved
    assert not any(p.is_file() for p in Path(str(manifest["wheel_cache"])).rglob("*"))


def test_concurrent_runs_on_one_host_install_once(tmp_path: Path, repository: str) -> None:
    """As the provider runs it: ``python3.11 agent_install.py MANIFEST`` with the token on stdin."""
    manifest_path = tmp_path / "m.json"
    manifest_path.write_text(json.dumps(_manifest(tmp_path, repository)))
    script = Path(agent_install.__file__)
    procs = [subprocess.Popen([sys.executable, str(script), str(manifest_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    results = [p.communicate(TOKEN.encode() + b"\n", timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert sorted(out.decode().strip() for out, _ in results) == ["installed", "present"]
    assert len(Repository.requests) == 1


def test_no_token_on_stdin_is_refused(tmp_path: Path) -> None:
    manifest_path = tmp_path / "m.json"
    manifest_path.write_text(json.dumps(_manifest(tmp_path, "http://127.0.0.1:9")))
    proc = subprocess.run([sys.executable, agent_install.__file__, str(manifest_path)], input=b"",
                          capture_output=True)
    assert proc.returncode == 2 and b"no agent token on stdin" in proc.stderr
