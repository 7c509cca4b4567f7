"""The host's agent installer fetches wheels over real HTTP (a server in this process):
sha256-checked, a corrupted answer retried, a wheel already there not fetched again, the
token sent as a bearer header, names that are not wheel file names refused."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from corral.hosts import install_agent

WHEEL = b"PK wheel bytes " * 4000
SHA = hashlib.sha256(WHEEL).hexdigest()
ENTRY = {"name": "httpx-0.28.1-py3-none-any.whl", "sha256": SHA, "size": len(WHEEL)}


class Repo(ThreadingHTTPServer):
    corrupt = 0
    requests: list[tuple[str, str | None]]


class Handler(BaseHTTPRequestHandler):
    server: Repo

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.requests.append((self.path, self.headers.get("Authorization")))
        if self.path != f"/agent/v1/repository/{SHA}":
            self.send_error(404)
            return
        body = bytearray(WHEEL)
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
def repo() -> Iterator[tuple[Repo, str]]:
    server = Repo(("127.0.0.1", 0), Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_corrupted_wheel_is_refused_and_fetched_again(repo: tuple[Repo, str], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    server, url = repo
    server.corrupt = 1
    monkeypatch.setattr(install_agent.time, "sleep", lambda s: None)
    dest = tmp_path / ENTRY["name"]
    assert install_agent._fetch(url, "tok", ENTRY, dest) == 2 * len(WHEEL)
    assert dest.read_bytes() == WHEEL and [p.name for p in tmp_path.iterdir()] == [dest.name]
    assert server.requests[0] == (f"/agent/v1/repository/{SHA}", "Bearer tok")
    assert install_agent._fetch(url, "tok", ENTRY, dest) == 0 and len(server.requests) == 2  # there already


def test_a_wheel_that_never_matches_is_an_error_and_leaves_nothing(repo: tuple[Repo, str], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    server, url = repo
    server.corrupt = install_agent.ATTEMPTS
    monkeypatch.setattr(install_agent.time, "sleep", lambda s: None)
    with pytest.raises(install_agent.InstallError, match="does not match"):
        install_agent._fetch(url, "tok", ENTRY, tmp_path / ENTRY["name"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["../evil.whl", ".hidden.whl", "a/b.whl", "setup.py"])
def test_only_wheel_file_names_are_accepted(name: str) -> None:
    with pytest.raises(install_agent.InstallError, match="not a wheel file name"):
        install_agent._safe_name(name)


def test_the_script_is_standard_library_only() -> None:
    import ast

    tree = ast.parse(install_agent.script())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    import sys

    assert imported - {"__future__"} <= set(sys.stdlib_module_names)
