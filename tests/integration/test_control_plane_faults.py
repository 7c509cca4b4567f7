"""kill -9 of the control plane: while a cluster runs steps, and at points during create."""

from __future__ import annotations

import time

import psutil
import pytest

from tests.integration.conftest import ControlPlaneProcess, cluster_processes

pytestmark = pytest.mark.integration


def _agents(cluster_id: str) -> list[psutil.Process]:
    return [p for p in cluster_processes(cluster_id) if "corral.agent" in " ".join(p.cmdline())]


def _daemons(cluster_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for proc in cluster_processes(cluster_id):
        cmd = " ".join(proc.cmdline())
        for cls in ("deploy.master.Master", "deploy.worker.Worker", "deploy.history.HistoryServer"):
            if cls in cmd and proc.name() == "java":
                counts[cls] = counts.get(cls, 0) + 1
    return counts


def test_kill9_while_steps_run_then_restart_picks_up(control_plane: ControlPlaneProcess) -> None:
    cp = control_plane
    cid = cp.create(name="survivor")["id"]
    cp.wait_cluster(cid, ("WAITING",))
    running = cp.add_step(cid, "SHELL", ["sleep 6; echo first-done"])
    queued = cp.add_step(cid, "SHELL", ["echo second-done"])
    cp.wait_for(lambda: cp.step(cid, running["id"])["status"] == "RUNNING", 30, "the first step to run")
    agents_before = sorted(p.pid for p in _agents(cid))
    assert len(agents_before) == 3

    cp.kill9()
    time.sleep(2)
    assert sorted(p.pid for p in _agents(cid)) == agents_before, "agents keep their nodes while the server is down"
    cp.start()
    restarted_at = time.time()

    cluster = cp.cluster(cid)
    assert cluster["status"] in ("RUNNING", "WAITING")
    assert cp.wait_step(cid, running["id"])["status"] == "COMPLETED"
    assert cp.log(cid, running["id"]) == "first-done\n"
    assert cp.wait_step(cid, queued["id"])["status"] == "COMPLETED"
    assert cp.log(cid, queued["id"]) == "second-done\n"

    # Agents re-attached: fresh heartbeats, the same agent processes, nothing duplicated.
    def reattached() -> bool:
        from datetime import datetime
        nodes = cp.cluster(cid)["nodes"]
        return all(datetime.fromisoformat(n["last_heartbeat"]).timestamp() > restarted_at for n in nodes)
    cp.wait_for(reattached, 30, "agents to report to the new server")
    assert sorted(p.pid for p in _agents(cid)) == agents_before
    assert _daemons(cid) == {"deploy.master.Master": 1, "deploy.worker.Worker": 2, "deploy.history.HistoryServer": 1}
    assert cp.wait_cluster(cid, ("WAITING",))["status"] == "WAITING"
    cp.terminate(cid)
    assert cluster_processes(cid) == []


@pytest.mark.parametrize("kill_point", ["right-after-request", "while-provisioning", "while-bootstrapping"])
def test_kill9_during_create_resumes_without_duplicates(control_plane: ControlPlaneProcess, kill_point: str) -> None:
    cp = control_plane
    cid = cp.create(name=f"interrupted-{kill_point}")["id"]
    if kill_point == "while-provisioning":
        cp.wait_for(lambda: any(n["address"] for n in cp.cluster(cid)["nodes"]), 30, "a node to be provisioned")
    elif kill_point == "while-bootstrapping":
        cp.wait_for(lambda: cp.cluster(cid)["status"] == "BOOTSTRAPPING", 60, "BOOTSTRAPPING")
    cp.kill9()
    time.sleep(1)
    cp.start()
    cluster = cp.wait_cluster(cid, ("WAITING",), timeout=180)

    assert len(cluster["nodes"]) == 3
    assert len({n["address"] for n in cluster["nodes"]}) == 3
    assert len(_agents(cid)) == 3, [" ".join(p.cmdline()) for p in _agents(cid)]
    assert _daemons(cid) == {"deploy.master.Master": 1, "deploy.worker.Worker": 2, "deploy.history.HistoryServer": 1}
    ids = [c["id"] for c in cp.clusters()]
    assert ids == [cid]
    cp.terminate(cid)
    assert cluster_processes(cid) == []


def test_killed_agent_is_restarted_and_adopts_its_daemons(control_plane: ControlPlaneProcess) -> None:
    cp = control_plane
    cp.stop()
    cp.env["CORRAL_AGENT_LOST_TIMEOUT"] = "4"
    cp.start()
    cid = cp.create(name="agent-loss")["id"]
    cluster = cp.wait_cluster(cid, ("WAITING",))
    node = next(n for n in cluster["nodes"] if n["role"] == "CORE")
    worker_pid = node["components"]["spark-worker"]["pid"]
    agent = next(p for p in _agents(cid) if p.environ().get("CORRAL_NODE_ID") == node["id"])
    agent.kill()
    agent.wait(10)

    restarted = cp.wait_for(lambda: [e for e in cp.events(cid) if e["code"] == "AGENT_RESTARTED"
                                     and e["node_id"] == node["id"]], 60, "the agent to be restarted")
    assert restarted
    cp.wait_for(lambda: any(e["code"] == "COMPONENT_ADOPTED" and e["node_id"] == node["id"] for e in cp.events(cid)),
                30, "the new agent to adopt the Worker")

    def worker_after() -> dict[str, object] | None:
        after = next(n for n in cp.cluster(cid)["nodes"] if n["id"] == node["id"])
        worker = after["components"].get("spark-worker")
        return worker if worker and worker["status"] == "RUNNING" else None
    worker = cp.wait_for(worker_after, 30, "the adopted Worker to be reported RUNNING")
    assert worker["pid"] == worker_pid, "the Worker kept running through the agent restart"
    assert worker["restarts"] == 0
    assert len(_agents(cid)) == 3
    assert _daemons(cid) == {"deploy.master.Master": 1, "deploy.worker.Worker": 2, "deploy.history.HistoryServer": 1}
    step = cp.add_step(cid, "SHELL", ["echo still-works"])
    assert cp.wait_step(cid, step["id"])["status"] == "COMPLETED"
    cp.terminate(cid)
    assert cluster_processes(cid) == []
