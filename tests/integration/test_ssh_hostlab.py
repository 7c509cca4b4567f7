"""A cluster on namespace hosts (``tests/hostlab.py``): real sshd per host, nothing shared
with the control plane but the network. kill -9 of an agent is repaired over SSH; a host's
link down and up makes its node LOST then re-attached, with events; a rebooted host's agent
comes back by itself; terminate leaves every host with only sshd and cron, no port but
sshd's and no node directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.hostlab_plane import LabPlane

pytestmark = [pytest.mark.integration, pytest.mark.host_lab(2)]


def test_a_cluster_on_lab_hosts_survives_kills_link_loss_and_reboots_and_leaves_them_clean(
        host_lab: Any, tmp_path: Path) -> None:
    lab = host_lab
    home = tmp_path / "cp"
    home.mkdir()
    plane = LabPlane(lab, home)
    try:
        for got in plane.add_hosts(lab.hosts).values():
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
