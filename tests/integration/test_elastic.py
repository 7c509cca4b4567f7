"""Elastic clusters on real Hadoop and Spark: refused resizes, CORE scale-out while a
Spark job runs, a TASK group added and removed during a Spark job, a graceful CORE
scale-in holding HDFS data while a MapReduce job reads it (with the control plane killed
-9 in the middle of the decommission), node replacement (a node gone, a NodeManager
UNHEALTHY), autoscaling, and idle auto-termination last. One cluster on a
control plane of the module's own, in that order (each test leaves it as the next expects)."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.integration.conftest import HTTP, ControlPlaneProcess, cluster_processes

pytestmark = pytest.mark.integration
SPEC: dict[str, Any] = {
    "name": "elastic",
    "node_groups": [
        {"role": "MASTER", "instance_type": "local.small", "count": 1},
        {"role": "CORE", "instance_type": "local.medium", "count": 2},
    ],
    # NodeManagers look at their disks every 5 s (YARN's default: 2 minutes), so a bad disk
    # makes one UNHEALTHY within seconds in the replacement test.
    "configurations": [{"classification": "yarn-site", "properties": {
        "yarn.nodemanager.disk-health-checker.interval-ms": "5000"}}],
}
# Node replacement's grace periods, shortened from 120 s (lost) and 300 s (unhealthy).
REPLACE_AFTER = {"CORRAL_NODE_REPLACE_LOST_TIMEOUT": "30", "CORRAL_NODE_UNHEALTHY_TIMEOUT": "20"}
# Many short tasks: the job's backlog has dynamic allocation ask for executors beyond the
# nodes it started on.
SLOW_JOB = """
import sys, time
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName(sys.argv[1]).getOrCreate()
n, delay = int(sys.argv[2]), float(sys.argv[3])
total = spark.sparkContext.parallelize(range(n), n).map(lambda x: (time.sleep(delay), x)[1]).sum()
print("SUM", total)
"""


@pytest.fixture(scope="module")
def shared_cp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneProcess]:
    """The module's own control plane: one test kills it with -9."""
    cp = ControlPlaneProcess(tmp_path_factory.mktemp("elastic") / "home")
    cp.env.update(REPLACE_AFTER)
    cp.home.mkdir()
    cp.start()
    yield cp
    cp.cleanup()


@pytest.fixture(scope="module")
def elastic(shared_cp: ControlPlaneProcess) -> Iterator[dict[str, Any]]:
    cluster = shared_cp.create(SPEC)
    yield shared_cp.wait_cluster(cluster["id"], ("WAITING",), timeout=300)
    if shared_cp.cluster(cluster["id"])["status"] not in ("TERMINATED", "TERMINATED_WITH_ERRORS"):
        shared_cp.terminate(cluster["id"])


def _resize(cp: ControlPlaneProcess, cid: str, group: str, **body: Any) -> Any:
    return cp.http.patch(f"/clusters/{cid}/node-groups/{group}", json=body)


def _group(cp: ControlPlaneProcess, cid: str, name: str) -> dict[str, Any]:
    return next(g for g in cp.http.get(f"/clusters/{cid}/node-groups").json() if g["name"] == name)


def _wait_resized(cp: ControlPlaneProcess, cid: str, name: str, timeout: float) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        group = _group(cp, cid, name)
        ops = [o for o in cp.http.get(f"/clusters/{cid}/operations").json() if o["kind"] == f"RESIZE_GROUP:{group['id']}"]
        assert not ops or ops[-1]["status"] != "FAILED", ops[-1]
        return group if group["status"] in ("RUNNING", "TERMINATED") and ops and ops[-1]["status"] == "SUCCEEDED" else None
    return cp.wait_for(done, timeout, f"group {name} resized")


def _rm_nodes(master: str) -> list[dict[str, Any]]:
    url = f"http://{master}:8088/ws/v1/cluster/nodes?states=RUNNING,DECOMMISSIONING,DECOMMISSIONED,SHUTDOWN,LOST"
    return (HTTP.get(url).json().get("nodes") or {}).get("node", [])


def _namenode_info(master: str) -> dict[str, Any]:
    bean = HTTP.get(f"http://{master}:9870/jmx?qry=Hadoop:service=NameNode,name=NameNodeInfo").json()["beans"][0]
    return {"live": json.loads(bean["LiveNodes"]), "dead": json.loads(bean["DeadNodes"])}


def _admin_state(master: str, address: str) -> str | None:
    info = _namenode_info(master)
    for name, value in {**info["dead"], **info["live"]}.items():
        if name.rsplit(":", 1)[0] == address:
            return str(value.get("adminState") or ("Decommissioned" if value.get("decommissioned") else "?"))
    return None


def _slow_job(cp: ControlPlaneProcess, cid: str, tmp_path: Path, name: str, tasks: int, seconds: float) -> dict[str, Any]:
    """A SLOW_JOB step of ``tasks`` tasks of ``seconds`` each, once it is RUNNING."""
    job = tmp_path / "slow.py"
    job.write_text(SLOW_JOB)
    step = cp.add_step(cid, "SPARK", [str(job), name, str(tasks), str(seconds)])
    cp.wait_for(lambda: cp.step(cid, step["id"])["status"] == "RUNNING", 120, "the job to run")
    return step


def _shell(cp: ControlPlaneProcess, cid: str, command: str, timeout: float = 300) -> str:
    step = cp.add_step(cid, "SHELL", [command])
    done = cp.wait_step(cid, step["id"], timeout)
    assert done["status"] == "COMPLETED", (done, cp.log(cid, step["id"], "stderr")[-3000:])
    return cp.log(cid, step["id"])


def test_bad_resizes_are_refused_and_change_nothing(shared_cp: ControlPlaneProcess, elastic: dict[str, Any]) -> None:
    cid = elastic["id"]
    before = shared_cp.http.get(f"/clusters/{cid}/node-groups").json()
    cases = [
        ("MASTER", {"count": 2}, 422, "group", "MASTER group is never resized"),
        ("CORE", {"count": -1}, 422, "count", "greater than or equal to 0"),
        ("CORE", {"count": 1}, 422, "count", "fewer than dfs.replication 2"),
        ("CORE", {"count": 1, "nodes": ["n-nosuchnode"]}, 422, "nodes", "not a node in service in group CORE"),
        ("CORE", {"count": 3, "decommission_timeout": -5}, 422, "decommission_timeout", "greater than or equal to 0"),
        ("NOPE", {"count": 3}, 404, None, "node group 'NOPE'"),
    ]
    for group, body, status, field, text in cases:
        resp = _resize(shared_cp, cid, group, **body)
        assert resp.status_code == status, (group, body, resp.text)
        assert text in resp.text, (group, body, resp.text)
        if field is not None:
            assert any(field in ".".join(map(str, d["loc"])) for d in resp.json()["detail"]), resp.text
    bad_add = shared_cp.http.post(f"/clusters/{cid}/node-groups", json={"role": "CORE", "instance_type": "local.huge",
                                                                         "count": 1})
    assert bad_add.status_code == 422 and {"role", "instance_type"} <= {d["loc"][-1] for d in bad_add.json()["detail"]}
    assert shared_cp.http.get(f"/clusters/{cid}/node-groups").json() == before
    assert not [e for e in shared_cp.events(cid) if e["code"] == "GROUP_RESIZE_REQUESTED"]


def test_core_scale_out_while_a_spark_job_runs(shared_cp: ControlPlaneProcess, elastic: dict[str, Any],
                                               tmp_path: Path) -> None:
    cid, master = elastic["id"], elastic["master_address"]
    step = _slow_job(shared_cp, cid, tmp_path, "scale-out", 120, 1.5)
    old = {n["id"] for n in shared_cp.cluster(cid)["nodes"]}
    started = time.monotonic()
    resp = _resize(shared_cp, cid, "CORE", count=3)
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "RESIZING" and resp.json()["requested_count"] == 3
    assert shared_cp.cluster(cid)["status"] == "RUNNING"  # the cluster keeps running its step
    group = _wait_resized(shared_cp, cid, "CORE", 240)
    print(f"scale-out to RUNNING group: {time.monotonic() - started:.1f} s")
    assert group["running_count"] == 3
    cluster = shared_cp.cluster(cid)
    new = [n for n in cluster["nodes"] if n["id"] not in old]
    assert len(new) == 1 and new[0]["status"] == "RUNNING" and new[0]["group"] == "CORE"
    address = new[0]["address"]
    entry = next(n for n in _rm_nodes(master) if n["nodeHostName"] == address)
    assert entry["state"] == "RUNNING"
    assert _admin_state(master, address) == "In Service"
    # The running job's dynamic allocation puts an executor on the new NodeManager.
    shared_cp.wait_for(lambda: any(n["nodeHostName"] == address and int(n.get("numContainers") or 0) > 0
                                   for n in _rm_nodes(master)), 120, "a container on the new NodeManager")
    done = shared_cp.wait_step(cid, step["id"], 400)
    assert done["status"] == "COMPLETED", shared_cp.log(cid, step["id"], "stderr")[-3000:]
    assert f"SUM {sum(range(120))}" in shared_cp.log(cid, step["id"])
    # Nodes already there kept their daemons: nothing restarted with a new configuration.
    assert not [e for e in shared_cp.events(cid) if e["code"] == "COMPONENT_RECONFIGURED"]
    # dfs.replication stays what it was at create (2 CORE nodes), not re-derived from 3.
    conf = {c["classification"]: c["properties"] for c in shared_cp.http.get(f"/clusters/{cid}/configurations").json()}
    assert conf["hdfs-site"]["dfs.replication"] == "2"


def test_a_task_group_joins_and_leaves_during_a_spark_job(shared_cp: ControlPlaneProcess, elastic: dict[str, Any],
                                                          tmp_path: Path) -> None:
    cid, master = elastic["id"], elastic["master_address"]
    step = _slow_job(shared_cp, cid, tmp_path, "task-group", 160, 1.5)
    resp = shared_cp.http.post(f"/clusters/{cid}/node-groups", json={"role": "TASK", "instance_type": "local.medium",
                                                                      "count": 1, "name": "burst"})
    assert resp.status_code == 202 and resp.json()["name"] == "burst", resp.text
    _wait_resized(shared_cp, cid, "burst", 240)
    task = next(n for n in shared_cp.cluster(cid)["nodes"] if n["group"] == "burst" and n["status"] == "RUNNING")
    shared_cp.wait_for(lambda: any(n["nodeHostName"] == task["address"] and int(n.get("numContainers") or 0) > 0
                                   for n in _rm_nodes(master)), 120, "an executor on the TASK node")
    assert _admin_state(master, task["address"]) is None  # a TASK node runs no DataNode
    # Removed while its executor works: YARN drains it gracefully (Spark decommissions
    # the executor and moves its blocks), the job goes on and completes.
    removed = shared_cp.http.delete(f"/clusters/{cid}/node-groups/burst", params={"decommission_timeout": 120})
    assert removed.status_code == 202 and removed.json()["status"] == "TERMINATING", removed.text
    shared_cp.wait_for(lambda: _group(shared_cp, cid, "burst")["status"] == "TERMINATED", 300, "the group removed")
    assert [n["state"] for n in _rm_nodes(master) if n["nodeHostName"] == task["address"]] in (
        [], ["DECOMMISSIONED"], ["SHUTDOWN"])
    done = shared_cp.wait_step(cid, step["id"], 600)
    assert done["status"] == "COMPLETED", shared_cp.log(cid, step["id"], "stderr")[-3000:]
    assert f"SUM {sum(range(160))}" in shared_cp.log(cid, step["id"])
    codes = [e["code"] for e in shared_cp.events(cid) if e.get("node_id") == task["id"]]
    assert codes.index("NODE_DECOMMISSIONING") < codes.index("NODE_DECOMMISSIONED") < codes.index("NODE_TERMINATED")
    # The released node left nothing running.
    assert not [p for p in cluster_processes(cid) if p.environ().get("CORRAL_NODE_ID") == task["id"]]


def test_graceful_core_scale_in_keeps_every_block_and_the_job(shared_cp: ControlPlaneProcess,
                                                              elastic: dict[str, Any]) -> None:
    cid, master = elastic["id"], elastic["master_address"]
    # 300 MB at replication 2 in 64 MB blocks: 12,000,000 lines of 4 words, 25 bytes each.
    _shell(shared_cp, cid, "yes 'corral elastic data line' | head -c 300000000 | "
                           "hdfs dfs -D dfs.blocksize=67108864 -put - /elastic/words")
    used = _shell(shared_cp, cid, "hdfs dfs -du -s /elastic/words | awk '{print $1}'")
    assert int(used.split()[-1]) == 300_000_000
    job = shared_cp.add_step(cid, "HADOOP_JAR", [
        "hadoop-mapreduce-examples.jar", "wordcount", "-Dmapreduce.input.fileinputformat.split.maxsize=33554432",
        "/elastic/words", "/elastic/count"])
    shared_cp.wait_for(lambda: shared_cp.step(cid, job["id"])["status"] == "RUNNING", 120, "the MapReduce job")
    resp = _resize(shared_cp, cid, "CORE", count=2, decommission_timeout=600)
    assert resp.status_code == 202, resp.text
    seen: dict[str, list[tuple[str, str | None]]] = {}  # node -> (its status, NameNode's admin state) as it went

    def watch() -> dict[str, Any] | None:
        cluster = shared_cp.cluster(cid)
        for n in cluster["nodes"]:
            if n["group"] == "CORE" and (n["decommission_state"] and n["status"] != "TERMINATED" or n["id"] in seen):
                state = _admin_state(master, n["address"]) if n["status"] != "TERMINATED" else None
                seen.setdefault(n["id"], []).append((f"{n['status']}/{n['decommission_state']}", state))
        group = _group(shared_cp, cid, "CORE")
        return group if group["status"] == "RUNNING" and group["decommissioning_count"] == 0 else None

    # The control plane killed -9 while the node drains: its restart continues from the store.
    shared_cp.wait_for(lambda: watch() or seen and any(h[-1][1] == "Decommission In Progress" for h in seen.values()),
                       300, "HDFS to start decommissioning")
    assert _group(shared_cp, cid, "CORE")["decommissioning_count"] == 1  # killed in the middle of it
    shared_cp.kill9()
    time.sleep(3)
    shared_cp.start()
    shared_cp.wait_for(watch, 900, "the CORE scale-in")
    assert len(seen) == 1, seen
    (node_id, history), = seen.items()
    # Stopped (TERMINATING) only once the NameNode listed it Decommissioned.
    first_stop = next(i for i, (status, _) in enumerate(history) if status.startswith(("TERMINATING", "TERMINATED")))
    assert any(state == "Decommissioned" for _, state in history[:first_stop]), history
    codes = [e["code"] for e in shared_cp.events(cid) if e.get("node_id") == node_id]
    assert codes.index("NODE_DECOMMISSIONING") < codes.index("NODE_DECOMMISSIONED") < codes.index("NODE_TERMINATED")
    done = shared_cp.wait_step(cid, job["id"], 900)
    assert done["status"] == "COMPLETED", shared_cp.log(cid, job["id"], "stderr")[-3000:]
    # Every word of every block counted, exactly, after the node left.
    counts = _shell(shared_cp, cid, "hdfs dfs -cat /elastic/count/part-r-* | sort")
    assert counts.split("\n")[:4] == ["corral\t12000000", "data\t12000000", "elastic\t12000000", "line\t12000000"], counts
    fsck = _shell(shared_cp, cid, "hdfs fsck / 2>/dev/null | tail -40")
    assert "The filesystem under path '/' is HEALTHY" in fsck, fsck
    assert re.search(r"Missing blocks:\s+0\n", fsck) and re.search(r"Corrupt blocks:\s+0\n", fsck), fsck
    cluster = shared_cp.cluster(cid)
    assert [n["status"] for n in cluster["nodes"] if n["id"] == node_id] == ["TERMINATED"]
    assert [n["status"] for n in cluster["nodes"] if n["group"] == "CORE" and n["id"] != node_id] == ["RUNNING"] * 2
    assert not [p for p in cluster_processes(cid) if p.environ().get("CORRAL_NODE_ID") == node_id]  # no node leaked


def test_a_core_node_that_is_gone_is_replaced_and_hdfs_heals(shared_cp: ControlPlaneProcess,
                                                            elastic: dict[str, Any]) -> None:
    # Every block is on both remaining CORE nodes only if the node the previous test took out
    # stayed excluded until the NameNode declared it dead (ClusterView.departed): dropped
    # sooner, HDFS put it back in service and deleted replicas here as excess, and this kill
    # lost blocks.
    cid = elastic["id"]
    victim = next(n for n in shared_cp.cluster(cid)["nodes"] if n["group"] == "CORE" and n["status"] == "RUNNING")
    procs = [p for p in cluster_processes(cid) if p.environ().get("CORRAL_NODE_ID") == victim["id"]]
    assert procs
    directory = shared_cp.home / "nodes" / cid / victim["id"]
    assert directory.is_dir()
    for proc in procs:
        proc.kill()
    shutil.rmtree(directory, ignore_errors=True)
    replaced = shared_cp.wait_for(lambda: next((e for e in shared_cp.events(cid) if e["code"] == "NODE_REPLACED"
                                                and e["node_id"] == victim["id"]), None), 300, "the node replaced")
    assert "none of its processes runs" in replaced["message"]
    group = _wait_resized(shared_cp, cid, "CORE", 300)
    assert group["running_count"] == 2
    nodes = shared_cp.cluster(cid)["nodes"]
    assert [n["status"] for n in nodes if n["id"] == victim["id"]] == ["TERMINATED"]
    fresh = [n for n in nodes if n["group"] == "CORE" and n["status"] == "RUNNING" and n["id"] != victim["id"]]
    assert len(fresh) == 2
    # HDFS re-replicates the lost DataNode's blocks onto the new one: HEALTHY again.
    def healed() -> bool:
        fsck = _shell(shared_cp, cid, "hdfs fsck / 2>/dev/null | tail -40")
        return ("is HEALTHY" in fsck and bool(re.search(r"Under-replicated blocks:\s+0 ", fsck))
                and bool(re.search(r"Missing blocks:\s+0\n", fsck)))

    shared_cp.wait_for(healed, 400, "HDFS HEALTHY with every block fully replicated")


def test_a_core_node_whose_nodemanager_stays_unhealthy_is_replaced_and_leaves_gracefully(
        shared_cp: ControlPlaneProcess, elastic: dict[str, Any]) -> None:
    """Its NodeManager's local dir turned into a file (a bad disk to YARN's disk checker):
    UNHEALTHY in the ResourceManager; past the grace period a new CORE node joins and the
    sick one is decommissioned (its DataNode's blocks copied away) before it is released."""
    cid, master = elastic["id"], elastic["master_address"]
    victim = next(n for n in shared_cp.cluster(cid)["nodes"] if n["group"] == "CORE" and n["status"] == "RUNNING")
    local = shared_cp.home / "nodes" / cid / victim["id"] / "data" / "yarn" / "local"
    assert local.is_dir()
    shutil.rmtree(local)
    local.write_text("not a directory\n")
    url = f"http://{master}:8088/ws/v1/cluster/nodes?states=UNHEALTHY"
    sick = shared_cp.wait_for(lambda: [n for n in (HTTP.get(url).json().get("nodes") or {}).get("node", [])
                                       if n["nodeHostName"] == victim["address"]], 60, "the NodeManager UNHEALTHY")
    assert "local-dirs" in sick[0]["healthReport"], sick
    seen: list[tuple[str, str | None]] = []  # the victim's (status/decommission state, NameNode admin state)

    def replaced() -> dict[str, Any] | None:
        node = next(n for n in shared_cp.cluster(cid)["nodes"] if n["id"] == victim["id"])
        state = _admin_state(master, victim["address"]) if node["status"] != "TERMINATED" else None
        seen.append((f"{node['status']}/{node['decommission_state']}", state))
        return node if node["status"] == "TERMINATED" else None

    node = shared_cp.wait_for(replaced, 400, "the unhealthy node replaced and released")
    assert node["status_reason"].startswith("replaced: its NodeManager has been UNHEALTHY for "), node
    events = [e for e in shared_cp.events(cid) if e.get("node_id") == victim["id"]]
    codes = [e["code"] for e in events]
    assert codes.index("NODE_UNHEALTHY") < codes.index("NODE_REPLACED") < codes.index("NODE_DECOMMISSIONED") \
        < codes.index("NODE_TERMINATED"), codes
    assert "local-dirs" in next(e for e in events if e["code"] == "NODE_UNHEALTHY")["message"]
    # Stopped only once the NameNode listed it Decommissioned: its blocks were copied first.
    first_stop = next(i for i, (status, _) in enumerate(seen) if status.startswith(("TERMINATING", "TERMINATED")))
    assert any(state == "Decommissioned" for _, state in seen[:first_stop]), seen
    group = _wait_resized(shared_cp, cid, "CORE", 300)
    assert (group["running_count"], group["requested_count"]) == (2, 2)
    fresh = [n for n in shared_cp.cluster(cid)["nodes"] if n["group"] == "CORE" and n["status"] == "RUNNING"]
    assert victim["id"] not in {n["id"] for n in fresh}
    assert all(any(r["nodeHostName"] == n["address"] and r["state"] == "RUNNING" for r in _rm_nodes(master))
               for n in fresh)
    fsck = _shell(shared_cp, cid, "hdfs fsck / 2>/dev/null | tail -40")
    assert "is HEALTHY" in fsck and re.search(r"Missing blocks:\s+0\n", fsck), fsck
    assert not [p for p in cluster_processes(cid) if p.environ().get("CORRAL_NODE_ID") == victim["id"]]


def test_autoscaling_grows_a_task_group_for_a_job_and_shrinks_it_after(shared_cp: ControlPlaneProcess,
                                                                       elastic: dict[str, Any], tmp_path: Path) -> None:
    cid, master = elastic["id"], elastic["master_address"]
    resp = shared_cp.http.post(f"/clusters/{cid}/node-groups", json={"role": "TASK", "instance_type": "local.medium",
                                                                      "count": 0, "name": "auto"})
    assert resp.status_code == 202, resp.text
    rule = {"name": "x", "metric": "NoSuchMetric", "comparison": "GREATER_THAN", "threshold": 0, "adjustment": 1}
    for body, field in (({"min_count": 0, "max_count": 1, "rules": [rule]}, "rules.0.metric"),
                        ({"min_count": 3, "max_count": 1, "rules": [{**rule, "metric": "AppsPending"}]}, "min_count")):
        bad = shared_cp.http.put(f"/clusters/{cid}/node-groups/auto/autoscaling-policy", json=body)
        assert bad.status_code == 422, bad.text
        assert any(".".join(map(str, d["loc"])).endswith(field) for d in bad.json()["detail"]), bad.text
    assert shared_cp.http.get(f"/clusters/{cid}/node-groups/auto/autoscaling-policy").json()["policy"] is None
    policy = {"min_count": 0, "max_count": 2, "rules": [
        {"name": "grow-on-pending", "metric": "ContainerPending", "comparison": "GREATER_THAN", "threshold": 0,
         "period_seconds": 10, "evaluation_periods": 1, "adjustment": 1, "cooldown_seconds": 20},
        {"name": "shrink-when-quiet", "metric": "AppsRunning", "comparison": "LESS_THAN", "threshold": 1,
         "period_seconds": 10, "evaluation_periods": 2, "adjustment": -1, "cooldown_seconds": 20}]}
    put = shared_cp.http.put(f"/clusters/{cid}/node-groups/auto/autoscaling-policy", json=policy)
    assert put.status_code == 200, put.text
    started = time.monotonic()
    step = _slow_job(shared_cp, cid, tmp_path, "autoscale", 100, 2)
    # Pending containers grow the group, within its bounds, and its new node takes work.
    group = shared_cp.wait_for(lambda: (g := _group(shared_cp, cid, "auto"))["running_count"] >= 1 and g, 300,
                               "autoscaling to add a TASK node")
    print(f"autoscaling: a TASK node RUNNING {time.monotonic() - started:.1f} s after the job's submission")
    done = shared_cp.wait_step(cid, step["id"], 900)
    assert done["status"] == "COMPLETED", shared_cp.log(cid, step["id"], "stderr")[-3000:]
    assert max(g for g in [_group(shared_cp, cid, "auto")["requested_count"], group["requested_count"]]) <= 2
    decisions = [e for e in shared_cp.events(cid) if e["code"] == "AUTOSCALING_DECISION"]
    assert decisions and "grow-on-pending" in decisions[0]["message"] and "ContainerPending=" in decisions[0]["message"]
    # Idle after the job: back to min 0 once the cooldown has passed.
    shared_cp.wait_for(lambda: (g := _group(shared_cp, cid, "auto"))["requested_count"] == 0
                       and g["status"] == "RUNNING" and g["running_count"] == 0, 400, "autoscaling back to 0")
    shrink = [e for e in shared_cp.events(cid) if e["code"] == "AUTOSCALING_DECISION" and "shrink-when-quiet" in e["message"]]
    assert shrink, [e["message"] for e in shared_cp.events(cid) if e["code"] == "AUTOSCALING_DECISION"]
    explained = shared_cp.http.get(f"/clusters/{cid}/node-groups/auto/autoscaling-policy").json()["evaluations"]
    assert explained and any(e["cause"].startswith(("at min 0", "cooldown until")) for e in explained), explained
    # A time rule sets the count at its minute (UTC, the default time zone).
    at = time.gmtime(time.time() + 65)
    timed = {"min_count": 0, "max_count": 2,
             "time_rules": [{"name": "next-minute", "cron": f"{at.tm_min} {at.tm_hour} * * *", "count": 1}]}
    assert shared_cp.http.put(f"/clusters/{cid}/node-groups/auto/autoscaling-policy", json=timed).status_code == 200
    shared_cp.wait_for(lambda: _group(shared_cp, cid, "auto")["requested_count"] == 1, 150, "the time rule")
    fired = [e for e in shared_cp.events(cid) if e["code"] == "AUTOSCALING_DECISION" and "next-minute" in e["message"]]
    assert len(fired) == 1
    assert shared_cp.http.delete(f"/clusters/{cid}/node-groups/auto").status_code == 202
    shared_cp.wait_for(lambda: _group(shared_cp, cid, "auto")["status"] == "TERMINATED", 300, "the auto group removed")


def test_idle_termination_waits_for_a_long_step_then_ends_the_cluster(shared_cp: ControlPlaneProcess,
                                                                      elastic: dict[str, Any]) -> None:
    cid = elastic["id"]
    bad = shared_cp.http.patch(f"/clusters/{cid}", json={"auto_termination": {"idle_timeout": 30}})
    assert bad.status_code == 422 and "idle_timeout" in bad.text
    resp = shared_cp.http.patch(f"/clusters/{cid}", json={"auto_termination": {"idle_timeout": 60}})
    assert resp.status_code == 200 and resp.json()["auto_termination"] == {"idle_timeout": 60}, resp.text
    step = shared_cp.add_step(cid, "SHELL", ["sleep 80"])
    ended = shared_cp.wait_step(cid, step["id"], 300)
    assert ended["status"] == "COMPLETED"  # longer than the timeout: the step kept the cluster up
    assert shared_cp.cluster(cid)["status"] in ("WAITING", "RUNNING")
    after = time.time()
    cluster = shared_cp.wait_cluster(cid, ("TERMINATED", "TERMINATED_WITH_ERRORS"), timeout=240)
    assert cluster["status"] == "TERMINATED", cluster["state_change_reason"]
    assert cluster["state_change_reason"]["code"] == "IDLE_TIMEOUT"
    idle = next(e for e in shared_cp.events(cid) if e["code"] == "TERMINATION_REQUESTED")
    from datetime import datetime
    requested = datetime.fromisoformat(idle["time"]).timestamp()
    assert requested - after >= 55, (requested - after)  # idle time counted from the step's end, not before
