"""Issue 11 §3 end to end: a real ``corral server`` bound to 0.0.0.0 (all its traffic here
goes to 127.0.0.1), its start-up refusal, tokens made on the store, roles, the audit log,
and token secrets that appear nowhere but in the answer that made them. No cluster starts."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import psutil
import pytest

from tests.integration.conftest import free_port
from tests.processes import stop_child

pytestmark = pytest.mark.integration
START_TIMEOUT = 60


class Plane:
    """The environment of one control-plane home, bound to 0.0.0.0, and its CLI."""

    def __init__(self, root: Path):
        self.home = root / "home"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "server.log"
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("CORRAL_TOKEN", "CORRAL_AUTH", "CORRAL_SECRET_KEY", "CORRAL_DATABASE_URL")}
        self.env.update({"CORRAL_HOME": str(self.home), "CORRAL_PORT": str(self.port), "CORRAL_HOST": "0.0.0.0",
                         "CORRAL_LOCAL_SUBNET": "127.59.0.0/16", "CORRAL_URL": self.url,
                         "XDG_CONFIG_HOME": str(root / "xdg")})
        self.proc: subprocess.Popen[bytes] | None = None
        self.seen: list[str] = []  # every output and answer that must not hold a secret

    def cli(self, *argv: str, token: str | None = None, keep: bool = True) -> subprocess.CompletedProcess[str]:
        """``corral ARGV`` as a process; its output is kept for the secrets check unless not ``keep``."""
        env = {**self.env, **({"CORRAL_TOKEN": token} if token else {})}
        done = subprocess.run([sys.executable, "-m", "corral.cli.main", *argv], env=env, capture_output=True,
                              text=True, timeout=120)
        if keep:
            self.seen += [done.stdout, done.stderr]
        return done

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "corral.server"], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("the control plane did not start")

    def stop(self) -> None:
        if self.proc is not None:
            stop_child(self.proc, grace=20)
            self.proc = None

    def processes(self) -> list[psutil.Process]:
        """Live processes of this home (a server, a background server, agents)."""
        found = []
        for proc in psutil.process_iter(["status"]):
            try:
                if proc.info["status"] != psutil.STATUS_ZOMBIE and proc.environ().get("CORRAL_HOME") == str(self.home):
                    found.append(proc)
            except (psutil.Error, OSError):
                continue
        return found


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[Plane]:
    p = Plane(tmp_path)
    yield p
    p.stop()
    for proc in p.processes():  # never leave one behind, whatever failed
        proc.kill()


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_a_non_loopback_control_plane_needs_tokens_and_audits_calls(plane: Plane) -> None:
    # 1. No token yet: the server refuses, in one line, and leaves nothing running.
    refused = subprocess.run([sys.executable, "-m", "corral.server"], env=plane.env, capture_output=True, text=True,
                             timeout=START_TIMEOUT)
    assert refused.returncode != 0 and refused.stdout == ""
    line = one_line(refused.stderr)
    assert line.startswith("corral server: refusing to start: authentication is required")
    assert "`corral token create --name admin --role admin` on this host, then start again" in line
    started = plane.cli("server", "start")
    assert started.returncode != 0
    assert one_line(started.stderr).startswith("corral: error: refusing to start: authentication is required")
    assert plane.processes() == [] and not (plane.home / "server.pid").exists()

    # 2. The first admin token, on the store, with no server running.
    made = plane.cli("token", "create", "--name", "admin", "--role", "admin", "-o", "json", keep=False)
    assert made.returncode == 0, made.stderr
    admin = json.loads(made.stdout)["token"]
    viewer = json.loads(plane.cli("token", "create", "--name", "viewer", "--role", "viewer", "-o", "json",
                                  keep=False).stdout)["token"]

    # 3. Now it starts; its secret key file is private.
    plane.start()
    assert stat.S_IMODE((plane.home / "secret.key").stat().st_mode) == 0o600
    http = httpx.Client(base_url=plane.url + "/api/v1", timeout=30)

    def call(method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        resp = http.request(method, path, headers={"Authorization": f"Bearer {token}"} if token else {}, **kwargs)
        plane.seen.append(resp.text + json.dumps(dict(resp.headers)))
        return resp

    made = plane.cli("token", "create", "--name", "ops", "--role", "operator", "-o", "json", token=admin, keep=False)
    assert made.returncode == 0, made.stderr  # through the API now, as admin's call
    operator = json.loads(made.stdout)["token"]
    late = plane.cli("token", "create", "--name", "late", "--role", "viewer", "-o", "json", keep=False)
    assert late.returncode == 0, late.stderr  # on the store while the server runs: valid at once
    late_token = json.loads(late.stdout)["token"]
    assert call("GET", "/whoami", late_token).json() == {"name": "late", "role": "viewer", "auth": "required"}

    # 4. Roles.
    assert call("GET", "/clusters").status_code == 401
    assert call("POST", "/clusters", json={"name": "x"}).status_code == 401
    assert call("GET", "/clusters", viewer).status_code == 200
    denied = call("POST", "/clusters", viewer, json={"name": "x"})
    assert denied.status_code == 403 and "needs the operator role" in denied.json()["detail"]
    invalid = call("POST", "/clusters", operator, json={"name": "x", "node_groups": []})
    assert invalid.status_code == 422, invalid.text  # allowed; the spec itself is refused
    listed = call("GET", "/tokens", admin)
    assert listed.status_code == 200
    assert [t["name"] for t in listed.json()] == ["admin", "viewer", "ops", "late"]
    assert call("GET", "/tokens", operator).status_code == 403
    assert plane.cli("cluster", "list", token=viewer).returncode == 0
    no_token = plane.cli("cluster", "list")
    assert no_token.returncode == 2 and "CORRAL_TOKEN" in one_line(no_token.stderr)
    assert plane.cli("token", "revoke", "late", token=admin).returncode == 0
    assert call("GET", "/whoami", late_token).status_code == 401

    # 5. The audit log has each mutating call, with its actor and result.
    audit = plane.cli("audit", "list", "-o", "json", token=admin)
    assert audit.returncode == 0, audit.stderr
    records = [(r["actor"], r["method"], r["action"], r["target"], r["status_code"], r["result"])
               for r in json.loads(audit.stdout)]
    assert records == [
        ("local", "CLI", "token.create", "admin", 201, "ok"),
        ("local", "CLI", "token.create", "viewer", 201, "ok"),
        ("admin", "POST", "token.create", "ops", 201, "ok"),
        ("local", "CLI", "token.create", "late", 201, "ok"),
        ("anonymous", "POST", "cluster.create", None, 401, "denied"),
        ("viewer", "POST", "cluster.create", None, 403, "denied"),
        ("ops", "POST", "cluster.create", None, 422, "failed"),
        ("admin", "DELETE", "token.revoke", "late", 200, "ok"),
    ]
    assert {r["remote"] for r in json.loads(audit.stdout) if r["method"] != "CLI"} == {"127.0.0.1"}
    assert plane.cli("audit", "list", token=viewer).returncode == 2

    # 6. No secret anywhere but in the answers that made them.
    plane.stop()
    server_log = plane.log.read_text(errors="replace")
    for secret in (admin, viewer, operator, late_token):
        assert secret.startswith("crl_")
        assert secret not in server_log
        assert all(secret not in text for text in plane.seen)
    assert plane.processes() == []
