"""A whole cluster on hosts reached over SSH, through the real control plane: two loopback
sshds stand for two hosts (each its own address and home, ``tests/sshd.py``), registered
with ``POST /hosts`` and checked; a Spark cluster with ``provider: ssh`` reaches WAITING,
runs a step, survives a kill -9 of an agent (restarted over SSH) and a host that neither
answers SSH nor reports (LOST, then re-attached), and, terminated, leaves
both hosts READY and clean: no process of the cluster, no port, no node directory, no
crontab line. (The namespace host lab runs the same on hosts that share nothing with the
control plane.)"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from corral.hosts import layout
from corral.runtime import wheels
from tests.integration.conftest import ControlPlaneProcess, listening_on
from tests.sshd import Sshd

pytestmark = pytest.mark.integration


def _marked(cluster_id: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and proc.environ().get("CORRAL_CLUSTER_ID") == cluster_id:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[list[Sshd]]:
    saved = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    servers = [Sshd(tmp_path / f"h{i}", f"127.0.78.{10 + i}") for i in (1, 2)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()
    if saved.returncode == 0:
        subprocess.run(["crontab", "-"], input=saved.stdout, text=True, check=True)
    else:
        subprocess.run(["crontab", "-r"], capture_output=True)


@pytest.fixture
def plane(tmp_path: Path) -> Iterator[ControlPlaneProcess]:
    try:
        wheels.dependency_wheels()
    except wheels.WheelhouseMissing:
        wheels.fetch_dependencies()
    home = tmp_path / "cp"
    home.mkdir()
    cp = ControlPlaneProcess(home)
    cp.env["CORRAL_ADVERTISE_URL"] = cp.url
    cp.start()
    yield cp
    cp.cleanup()
    cp.stop()


def test_a_spark_cluster_on_two_hosts(plane: ControlPlaneProcess, hosts: list[Sshd]) -> None:
    for i, server in enumerate(hosts, 1):
        resp = plane.http.post("/hosts", json={"name": f"h{i}", "address": server.address, "port": server.port,
                                               "user": "root", "private_key": server.client_key})
        assert resp.status_code == 202, resp.text
    for i in (1, 2):
        host = plane.wait_for(lambda: (h := plane.http.get(f"/hosts/h{i}").json())["status"] != "CHECKING" and h,
                              timeout=120, what=f"the check of h{i}")
        assert host["status"] == "READY", host
    spec = {"name": "ssh", "provider": "ssh", "services": ["spark"],
            "node_groups": [{"role": "MASTER", "hosts": ["h1"]}, {"role": "CORE", "hosts": ["h2"]}]}
    resp = plane.http.post("/clusters", json=spec)
    assert resp.status_code in (200, 201), resp.text
    cid = resp.json()["id"]
    cluster = plane.wait_cluster(cid, ("WAITING", "TERMINATED_WITH_ERRORS"), timeout=900)
    assert cluster["status"] == "WAITING", (cluster["state_change_reason"], plane.events(cid)[-15:])
    nodes = {n["role"]: n for n in cluster["nodes"]}
    assert nodes["MASTER"]["address"] == hosts[0].address and nodes["CORE"]["address"] == hosts[1].address

    # Every daemon listens on its node's address only, never a wildcard.
    listeners = {(c.laddr.ip, c.laddr.port, p.name()) for p in _marked(cid) for c in p.net_connections("inet")
                 if c.status == psutil.CONN_LISTEN}
    assert listeners and all(ip in (hosts[0].address, hosts[1].address) for ip, _, _ in listeners), listeners

    step = plane.add_step(cid, "SHELL", ["bash", "-c", "echo hi from $(hostname)"])
    done = plane.wait_step(cid, step["id"], timeout=300)
    assert done["status"] == "COMPLETED", done

    # kill -9 of the CORE node's agent: the reconciler restarts it over SSH.
    core = nodes["CORE"]["id"]
    agent = next(p for p in _marked(cid) if p.environ().get("CORRAL_NODE_ID") == core
                 and "corral.agent" in " ".join(p.cmdline()))
    os.kill(agent.pid, signal.SIGKILL)
    plane.wait_for(lambda: any(e["code"] == "AGENT_RESTARTED" and e.get("node_id") == core for e in plane.events(cid)),
                   timeout=120, what="the agent's restart")
    assert plane.cluster(cid)["status"] in ("WAITING", "RUNNING")

    # The host off the network, as far as the control plane can tell: its agent silent
    # (stopped) and its SSH gone. The node is LOST, with its reason, the cluster stays up;
    # back, the agent reports and the node re-attaches.
    agent = next(p for p in _marked(cid) if p.environ().get("CORRAL_NODE_ID") == core
                 and "corral.agent" in " ".join(p.cmdline()))
    hosts[1].stop()
    agent.suspend()
    try:
        lost = plane.wait_for(lambda: next((n for n in plane.cluster(cid)["nodes"]
                                            if n["id"] == core and n["status"] == "LOST"), None),
                              timeout=120, what="the node LOST")
        assert lost["status_reason"].startswith(f"host h2 ({hosts[1].address}) unreachable over SSH since ")
        assert plane.cluster(cid)["status"] in ("WAITING", "RUNNING")
        assert any(e["code"] == "NODE_LOST" and e["level"] == "WARN" for e in plane.events(cid))
    finally:
        hosts[1].start()
        agent.resume()
    recovered = plane.wait_for(lambda: next((e for e in plane.events(cid) if e["code"] == "NODE_RECOVERED"), None),
                               timeout=60, what="the node's recovery")
    assert "re-attached after" in recovered["message"]
    plane.wait_for(lambda: all(n["status"] == "RUNNING" for n in plane.cluster(cid)["nodes"]), timeout=60,
                   what="every node RUNNING again")

    plane.terminate(cid)
    assert plane.cluster(cid)["status"] == "TERMINATED"
    deadline = time.monotonic() + 30
    while _marked(cid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _marked(cid) == []
    assert listening_on({h.address for h in hosts}) == sorted((h.address, h.port) for h in hosts)  # sshd only
    for i, server in enumerate(hosts, 1):
        host = plane.http.get(f"/hosts/h{i}").json()
        assert host["status"] == "READY" and host["node_id"] is None, host
        assert not Path(layout.nodes_root(str(server.home)), cid).exists()
    assert "corral-node" not in subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout
