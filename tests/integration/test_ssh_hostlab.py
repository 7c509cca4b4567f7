"""A cluster on namespace hosts (``tests/hostlab.py``): real sshd per host, nothing shared
with the control plane but the network. kill -9 of an agent is repaired over SSH; a host's
link down and up makes its node LOST then re-attached, with events; a rebooted host's agent
comes back by itself; terminate leaves every host with only sshd and cron, no port but
sshd's and no node directory."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.control.tokens import create_token
from corral.store.db import Store

pytestmark = [pytest.mark.integration, pytest.mark.host_lab(2)]


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


class LabPlane:
    """The control plane under test, in PID and mount namespaces of its own (``spawn_isolated``),
    listening on the lab's bridge address."""

    def __init__(self, lab: Any, home: Path):
        self.lab, self.home = lab, home
        port = _free_port(str(lab.control_address))
        self.url = f"http://{lab.control_address}:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
        env.update({"CORRAL_HOME": str(home), "CORRAL_HOST": str(lab.control_address), "CORRAL_PORT": str(port),
                    "CORRAL_ADVERTISE_URL": self.url, "PYTHONPATH": str(Path(__file__).parents[2])})
        for name in ("CORRAL_WHEEL_CACHE", "CORRAL_RUNTIME_CACHE"):
            if name in os.environ:
                env[name] = os.environ[name]
        # Off loopback, the server requires API tokens: the first admin's is made on the store.
        store = Store(f"sqlite:///{home / 'corral.db'}")
        store.migrate()
        _, secret = create_token(store, "admin", "admin", None)
        store.dispose()
        self.log = open(home / "server.log", "ab")
        self.proc = lab.spawn_isolated([sys.executable, "-m", "corral.server"], env=env, stdout=self.log,
                                       stderr=self.log)
        self.http = httpx.Client(base_url=self.url + "/api/v1", timeout=30,
                                 headers={"Authorization": f"Bearer {secret}"})
        self.wait(lambda: self._healthy(), 60, "the control plane")

    def _healthy(self) -> bool:
        try:
            return self.http.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    def wait(self, check: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; server log: "
                                     f"{(self.home / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)

    def cluster(self, cid: str) -> dict[str, Any]:
        return self.http.get(f"/clusters/{cid}").json()  # type: ignore[no-any-return]

    def events(self, cid: str) -> list[dict[str, Any]]:
        return self.http.get(f"/clusters/{cid}/events").json()  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.proc.stop(grace=20)
        self.log.close()
        self.http.close()


def test_a_cluster_on_lab_hosts_survives_kills_link_loss_and_reboots_and_leaves_them_clean(
        host_lab: Any, tmp_path: Path) -> None:
    lab = host_lab
    home = tmp_path / "cp"
    home.mkdir()
    plane = LabPlane(lab, home)
    try:
        key = Path(lab.client_key_path).read_text()
        for host in lab.hosts:
            resp = plane.http.post("/hosts", json={"name": host.name, "address": host.address, "user": host.user,
                                                   "private_key": key, "host_key_fingerprint": host.fingerprint()})
            assert resp.status_code == 202, resp.text
        for host in lab.hosts:
            got = plane.wait(lambda: (h := plane.http.get(f"/hosts/{host.name}").json())["status"] != "CHECKING" and h,
                             180, f"the check of {host.name}")
            assert got["status"] == "READY", got
        spec = {"name": "lab", "provider": "ssh", "services": ["spark"],
                "node_groups": [{"role": "MASTER", "hosts": [lab.hosts[0].name]},
                                {"role": "CORE", "hosts": [lab.hosts[1].name]}]}
        resp = plane.http.post("/clusters", json=spec)
        assert resp.status_code in (200, 201), resp.text
        cid = resp.json()["id"]
        up = plane.wait(lambda: (c := plane.cluster(cid))["status"] in ("WAITING", "TERMINATED_WITH_ERRORS") and c,
                        1200, "the cluster")
        assert up["status"] == "WAITING", (up["state_change_reason"], plane.events(cid)[-15:])
        core = next(n for n in up["nodes"] if n["role"] == "CORE")
        worker = lab.hosts[1]

        def codes() -> list[tuple[str, str | None]]:
            return [(e["code"], e.get("node_id")) for e in plane.events(cid)]

        # kill -9 of the agent: restarted over SSH.
        worker.run("pkill -KILL -f 'corral.agent --config'")
        plane.wait(lambda: ("AGENT_RESTARTED", core["id"]) in codes(), 120, "the agent's restart")

        # The host's link down: its node is LOST with the reason; up: re-attached.
        worker.link_down()
        lost = plane.wait(lambda: next((n for n in plane.cluster(cid)["nodes"]
                                        if n["id"] == core["id"] and n["status"] == "LOST"), None), 180, "LOST")
        assert f"host {worker.name} ({worker.address}) unreachable over SSH since" in lost["status_reason"]
        assert ("NODE_LOST", core["id"]) in codes()
        assert plane.cluster(cid)["status"] == "WAITING"
        worker.link_up()
        plane.wait(lambda: ("NODE_RECOVERED", core["id"]) in codes(), 180, "the node's recovery")
        plane.wait(lambda: plane.cluster(cid)["status"] == "WAITING"
                   and all(n["status"] == "RUNNING" for n in plane.cluster(cid)["nodes"]), 180, "all RUNNING")

        # A reboot: cron's @reboot line brings the agent back, which restarts its daemons.
        worker.reboot()
        plane.wait(lambda: any("corral.agent" in p.cmdline for p in worker.processes()), 120, "the agent after reboot")

        resp = plane.http.post(f"/clusters/{cid}/terminate")
        assert resp.status_code in (200, 202), resp.text
        ended = plane.wait(lambda: (c := plane.cluster(cid))["status"].startswith("TERMINATED") and c, 300, "terminate")
        assert ended["status"] == "TERMINATED", ended["state_change_reason"]
        for host in lab.hosts:
            got = plane.wait(lambda: (h := plane.http.get(f"/hosts/{host.name}").json())["status"] == "READY" and h,
                             60, f"{host.name} released")
            assert got["node_id"] is None
            assert host.user_processes() == [], host.user_processes()
            assert [port for _, port in host.listening_ports()] == [22]
            assert host.run("ls -A /root/.corral-host/nodes 2>/dev/null").stdout.strip() == ""
            assert "corral-node" not in host.run("crontab -l 2>/dev/null").stdout
    finally:
        plane.stop()
