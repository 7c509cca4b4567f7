"""``corral host ...`` against the real API over an in-process control plane, its host
checks run by a HostReconciler on a scripted transport: exit 0 READY, 1 a failed check
(each failing line printed), 2 bad input; the same status with ``-o json``."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import update

from corral.control.context import ControlPlane
from corral.reconcile.hosts import HostReconciler
from corral.store.models import Cluster, Host
from tests.unit.cli.conftest import corral
from tests.unit.hosts.fakessh import RECORDED, FakeSsh, key_of, use_fake_ssh, without
from tests.unit.hosts.pool import hold, host_row


@pytest.fixture
def ssh(cp: ControlPlane) -> FakeSsh:
    fake = use_fake_ssh(cp)
    fake.host("198.18.0.5")
    fake.host("198.18.0.6", probe=without(RECORDED, "java_"))
    return fake


@pytest.fixture
def checks(cp: ControlPlane, ssh: FakeSsh) -> Iterator[None]:
    """The reconciler's host pass, ticking as the real loop does."""
    rec = HostReconciler(cp)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.05):
            rec.tick()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(5)
    rec.stop()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def test_add_waits_for_a_passing_check(api_url: str, checks: None, key_file: Path, monkeypatch: pytest.MonkeyPatch,
                                       capfd: pytest.CaptureFixture[str], cp: ControlPlane) -> None:
    code = corral(monkeypatch, "host", "add", "198.18.0.5", "--name", "h1", "--key", str(key_file), "--cores", "2",
                  "--memory", "4g", "--label", "rack=r1", "--label", "disk=ssd")
    out = capfd.readouterr().out
    assert code == 0, out
    assert "is READY" in out and "java: 17.0.15" in out and "2 cores, 4096 MiB" in out
    with cp.store.session() as s:
        host = s.get(Host, s.query(Host.id).filter(Host.name == "h1").scalar())
        assert host is not None and host.private_key == key_file.read_text()  # sent as text, read on the client
        assert host.labels == {"rack": "r1", "disk": "ssd"}


@pytest.mark.parametrize("output", ["table", "json"])
def test_a_failed_check_exits_1_with_its_lines(api_url: str, checks: None, monkeypatch: pytest.MonkeyPatch,
                                               capfd: pytest.CaptureFixture[str], output: str) -> None:
    code = corral(monkeypatch, "host", "add", "198.18.0.6", "-o", output)
    out = capfd.readouterr().out
    assert code == 1
    line = "java: not found, need 17: apt-get install -y openjdk-17-jdk-headless"
    if output == "json":
        body = json.loads(out)
        assert body["status"] == "FAILED_CHECK" and any(c["message"] == line for c in body["checks"])
    else:
        assert "FAILED_CHECK" in out and line in out


def test_no_wait_returns_at_once(api_url: str, ssh: FakeSsh, monkeypatch: pytest.MonkeyPatch,
                                 capfd: pytest.CaptureFixture[str]) -> None:
    assert corral(monkeypatch, "host", "add", "198.18.0.5", "--no-wait", "-o", "json") == 0
    body = json.loads(capfd.readouterr().out)
    assert body["status"] == "CHECKING" and body["host_key_fingerprint"] == key_of(1)[1]


@pytest.mark.parametrize(("argv", "says"), [
    (["--key", "/nonexistent/id_ed25519"], "--key"),
    (["--label", "novalue"], "--label"),
    (["--memory", "lots"], "memory:"),
    (["--port", "0"], "port:"),
    (["--host-key-fingerprint", key_of(2)[1]], "host_key_fingerprint:"),
])
def test_bad_input_exits_2_with_one_line(api_url: str, ssh: FakeSsh, monkeypatch: pytest.MonkeyPatch,
                                         capfd: pytest.CaptureFixture[str], argv: list[str], says: str) -> None:
    code = corral(monkeypatch, "host", "add", "198.18.0.5", *argv)
    err = capfd.readouterr().err.strip()
    assert code == 2 and err.startswith("corral: error:") and says in err and "\n" not in err
    assert corral(monkeypatch, "host", "list", "-o", "json") == 0
    assert json.loads(capfd.readouterr().out) == []


def test_list_describe_check_drain_remove(api_url: str, checks: None, monkeypatch: pytest.MonkeyPatch,
                                          capfd: pytest.CaptureFixture[str], cp: ControlPlane) -> None:
    assert corral(monkeypatch, "host", "add", "198.18.0.5", "--name", "h1") == 0
    capfd.readouterr()
    assert corral(monkeypatch, "host", "list") == 0
    out = capfd.readouterr().out
    assert "h1" in out and "READY" in out and "198.18.0.5" in out
    assert corral(monkeypatch, "host", "describe", "h1") == 0
    out = capfd.readouterr().out
    assert "Debian GNU/Linux 12" in out and key_of(1)[1] in out and "python3.11: 3.11.2" in out
    assert corral(monkeypatch, "host", "check", "h1") == 0
    assert "is READY" in capfd.readouterr().out
    cluster_id, node_id = hold(cp, host_row(cp.store, "h1").id, "WAITING", "RUNNING")
    assert corral(monkeypatch, "host", "remove", "h1") == 2
    assert f"runs node {node_id} of cluster {cluster_id} (WAITING)" in capfd.readouterr().err
    assert corral(monkeypatch, "host", "drain", "h1", "-o", "json") == 0
    assert json.loads(capfd.readouterr().out)["status"] == "DRAINING"
    with cp.store.session() as s:
        s.execute(update(Host).where(Host.name == "h1").values(status="DRAINED", node_id=None, cluster_id=None))
    assert corral(monkeypatch, "host", "remove", "h1") == 0
    out = capfd.readouterr().out
    assert "removed" in out and "removed by" not in out
    assert corral(monkeypatch, "host", "list", "-o", "json") == 0
    assert json.loads(capfd.readouterr().out) == []
    assert corral(monkeypatch, "host", "list", "--all", "-o", "json") == 0
    assert [h["status"] for h in json.loads(capfd.readouterr().out)] == ["REMOVED"]
    assert corral(monkeypatch, "host", "describe", "h1") == 2
    assert "host h1 not found" in capfd.readouterr().err


def test_a_changed_key_on_check_exits_1(api_url: str, checks: None, ssh: FakeSsh, monkeypatch: pytest.MonkeyPatch,
                                        capfd: pytest.CaptureFixture[str]) -> None:
    assert corral(monkeypatch, "host", "add", "198.18.0.5", "--name", "h1") == 0
    ssh.hosts[("198.18.0.5", 22)].key = key_of(2)
    capfd.readouterr()
    assert corral(monkeypatch, "host", "check", "h1") == 1
    out = capfd.readouterr().out
    assert "HOST_KEY_CHANGED" in out and "host key changed: pinned" in out
    assert corral(monkeypatch, "host", "check", "h1") == 2  # refused: remove and add it again
    assert "remove and add it again" in capfd.readouterr().err


@pytest.mark.parametrize("output", ["table", "json"])
def test_remove_force_frees_a_host_left_by_an_ended_cluster_and_says_what_stays(
        api_url: str, checks: None, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
        cp: ControlPlane, output: str) -> None:
    assert corral(monkeypatch, "host", "add", "198.18.0.5", "--name", "h1") == 0
    capfd.readouterr()
    cluster_id, node_id = hold(cp, host_row(cp.store, "h1").id, "RUNNING", "LOST")
    assert corral(monkeypatch, "host", "remove", "h1", "--force", "-o", output) == 2  # its cluster runs
    err = capfd.readouterr().err.strip()
    assert err.startswith("corral: error:") and "\n" not in err and f"of cluster {cluster_id} (RUNNING)" in err
    with cp.store.session() as s:
        s.execute(update(Cluster).where(Cluster.id == cluster_id).values(status="TERMINATED_WITH_ERRORS"))
    assert corral(monkeypatch, "host", "remove", "h1", "-o", output) == 2
    assert "corral host remove --force h1" in capfd.readouterr().err
    assert corral(monkeypatch, "host", "remove", "h1", "--force", "-o", output) == 0
    out = capfd.readouterr().out
    if output == "json":
        body = json.loads(out)
        assert (body["status"], body["node_id"]) == ("REMOVED", None)
        out = body["status_reason"]
    else:
        assert "Host h1 removed" in out
    assert f"/.corral-host/nodes/{cluster_id}/{node_id}" in out and f"CORRAL_NODE_ID={node_id}" in out
    assert f"# corral-node {node_id}" in out
    assert corral(monkeypatch, "host", "remove", "nope", "--force") == 2
    assert "host nope not found" in capfd.readouterr().err
