"""Elasticity benchmarks (issue 12 §6; not timed tests): `.venv/bin/python bench/elastic.py`.

1. Scale-out: `PATCH node-groups/CORE` 2 -> 3 until the new NodeManager is RUNNING in the
   ResourceManager (its REST API). Floor <= 15 s on the local provider (EMR's published
   example: 5-6 minutes). Median of --runs (each run shrinks back to 2 first).
2. Scale-in of a CORE node holding data: 512 MB written at replication 2 over 3 CORE nodes,
   then `PATCH` 3 -> 2 until the node is released (TERMINATED, after HDFS re-replicated
   its blocks), against the time `hdfs dfs -cp` of the same 512 MB takes on the same
   cluster: a ratio (what a graceful decommission costs over copying the bytes once).

3. Autoscaling reaction: a TASK group at 0 with a policy growing it on MemoryPendingMB > 0
   (one 10 s evaluation period, the default evaluation interval); a Spark job asks for more
   than the CORE nodes have. From the ResourceManager first reporting pending memory for
   the job's executors (its /ws/v1/cluster/metrics once the job's application RUNS, polled
   every 0.1 s) to the TASK node's NodeManager RUNNING.
   Floor <= 30 s. Median of --runs (the group is put back to 0 between runs).

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NODE_GROUPS, Server, run_step  # noqa: E402

from corral.cli.ship import ship_step  # noqa: E402

SPEC = {"name": "bench-elastic", "node_groups": NODE_GROUPS}
DATA_BYTES = 512 * 1024 * 1024
# 40 tasks of 3 s: dynamic allocation asks for an executor per pending task's worth of
# cores, more than two local.medium NodeManagers hold, so the RM reports pending memory.
BUSY_JOB = """
import time
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("bench-autoscale").getOrCreate()
print(spark.sparkContext.parallelize(range(40), 40).map(lambda x: (time.sleep(3), x)[1]).sum())
"""
GROW_ON_PENDING = {"min_count": 0, "max_count": 1, "rules": [
    {"name": "grow-on-pending-memory", "metric": "MemoryPendingMB", "comparison": "GREATER_THAN", "threshold": 0,
     "period_seconds": 10, "evaluation_periods": 1, "adjustment": 1, "cooldown_seconds": 60}]}


def _resize(server: Server, cid: str, count: int, **extra: Any) -> None:
    resp = server.http.patch(f"/clusters/{cid}/node-groups/CORE", json={"count": count, **extra})
    if resp.status_code != 202:
        raise RuntimeError(f"resize refused: {resp.text}")


def _wait(predicate: Any, timeout: float, what: str, poll: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(what)


def _core_settled(server: Server, cid: str, count: int) -> bool:
    group = next(g for g in server.http.get(f"/clusters/{cid}/node-groups").json() if g["name"] == "CORE")
    return group["status"] == "RUNNING" and group["running_count"] == count


def scale_out(server: Server, cid: str, master: str) -> float:
    """Seconds from the resize request to the new NodeManager RUNNING in the RM."""
    before = {n["id"] for n in server.http.get(f"/clusters/{cid}").json()["nodes"]}
    t0 = time.monotonic()
    _resize(server, cid, 3)

    def new_nm_running() -> bool:
        nodes = server.http.get(f"/clusters/{cid}").json()["nodes"]
        fresh = [n["address"] for n in nodes if n["id"] not in before and n["address"]]
        if not fresh:
            return False
        listed = server.http.get(f"http://{master}:8088/ws/v1/cluster/nodes").json()["nodes"] or {}
        return any(n["nodeHostName"] in fresh and n["state"] == "RUNNING" for n in listed.get("node", []))

    _wait(new_nm_running, 300, "the new NodeManager")
    elapsed = time.monotonic() - t0
    _wait(lambda: _core_settled(server, cid, 3), 300, "CORE at 3")
    return elapsed


def _rm(master: str, path: str) -> Any:
    return httpx.get(f"http://{master}:8088/ws/v1/cluster/{path}", timeout=10).json()


def _nm_running(master: str, addresses: set[str]) -> bool:
    listed = _rm(master, "nodes")["nodes"] or {}
    return any(n["nodeHostName"] in addresses and n["state"] == "RUNNING" for n in listed.get("node", []))


def autoscaling_reaction(server: Server, cid: str, master: str, job: Path) -> float:
    """Seconds from the RM first reporting pending memory to the policy's new TASK node's
    NodeManager RUNNING; the group is back at 0, without a policy, on return."""
    base = f"/clusters/{cid}/node-groups/auto"
    if server.http.put(f"{base}/autoscaling-policy", json=GROW_ON_PENDING).status_code != 200:
        raise RuntimeError("policy refused")
    request = ship_step(server.http, {"type": "SPARK", "args": [str(job)]})
    step = server.http.post(f"/clusters/{cid}/steps", json={"steps": [request]}).json()["steps"][0]

    def executors_pending() -> bool:  # the job's own executors, not its ApplicationMaster's brief wait
        running = (_rm(master, "apps?states=RUNNING").get("apps") or {}).get("app", [])
        return any(a["name"] == "bench-autoscale" for a in running) and \
            _rm(master, "metrics")["clusterMetrics"]["pendingMB"] > 0

    _wait(executors_pending, 300, "pending memory", poll=0.1)
    t0 = time.monotonic()

    def task_addresses() -> set[str]:
        nodes = server.http.get(f"/clusters/{cid}").json()["nodes"]
        return {n["address"] for n in nodes if n["group"] == "auto" and n["address"] and n["status"] != "TERMINATED"}

    _wait(lambda: _nm_running(master, task_addresses()), 300, "the TASK NodeManager", poll=0.1)
    elapsed = time.monotonic() - t0
    server.http.post(f"/clusters/{cid}/steps/{step['id']}/cancel")
    server.http.delete(f"{base}/autoscaling-policy")
    _wait(lambda: server.http.get(f"{base}").json()["status"] == "RUNNING", 300, "the grow to settle", poll=0.5)
    server.http.patch(base, json={"count": 0, "decommission_timeout": 0})
    _wait(lambda: (g := server.http.get(base).json())["status"] == "RUNNING" and g["running_count"] == 0,
          600, "the TASK group back at 0", poll=0.5)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        with Server(Path(tmp) / "home") as server:
            cid = server.create(SPEC)
            cluster = server.wait(cid, ("WAITING",))
            master = cluster["master_address"]
            outs = []
            for i in range(args.runs):
                outs.append(scale_out(server, cid, master))
                print(f"scale-out run {i + 1}: {outs[-1]:.2f} s to the new NodeManager RUNNING", flush=True)
                if i < args.runs - 1:
                    _resize(server, cid, 2, decommission_timeout=0)
                    _wait(lambda: _core_settled(server, cid, 2), 600, "CORE back at 2", poll=0.5)
            # 512 MB at replication 2 over the 3 CORE nodes, then its copy and a scale-in.
            run_step(server, cid, "SHELL", [f"head -c {DATA_BYTES} /dev/urandom | hdfs dfs -D dfs.replication=2 "
                                            "-put - /bench/data"])
            copy = run_step(server, cid, "SHELL", ["hdfs dfs -cp /bench/data /bench/copy"])
            run_step(server, cid, "SHELL", ["hdfs dfs -rm -r -skipTrash /bench/copy"])
            t0 = time.monotonic()
            _resize(server, cid, 2, decommission_timeout=600)
            _wait(lambda: _core_settled(server, cid, 2), 1800, "the CORE scale-in", poll=0.5)
            scale_in = time.monotonic() - t0
            print(f"scale-in of a CORE node holding {DATA_BYTES >> 20} MB: {scale_in:.1f} s; "
                  f"hdfs dfs -cp of the same bytes (step): {copy:.1f} s", flush=True)
            added = server.http.post(f"/clusters/{cid}/node-groups", json={
                "role": "TASK", "instance_type": "local.medium", "count": 0, "name": "auto"})
            if added.status_code != 202:
                raise RuntimeError(f"TASK group refused: {added.text}")
            _wait(lambda: server.http.get(f"/clusters/{cid}/node-groups/auto").json()["status"] == "RUNNING",
                  120, "the TASK group")
            job = Path(tmp) / "busy.py"
            job.write_text(BUSY_JOB)
            reactions = []
            for i in range(args.runs):
                reactions.append(autoscaling_reaction(server, cid, master, job))
                print(f"autoscaling run {i + 1}: {reactions[-1]:.2f} s from pending memory to the new "
                      "NodeManager RUNNING", flush=True)
    result = {
        "scale_out_seconds": [round(t, 2) for t in outs],
        "scale_out_median_seconds": round(statistics.median(outs), 2),
        "scale_out_floor_seconds": 15.0,
        "scale_in_seconds": round(scale_in, 1),
        "hdfs_cp_seconds": round(copy, 1),
        "scale_in_over_cp_ratio": round(scale_in / copy, 2),
        "autoscaling_reaction_seconds": [round(t, 2) for t in reactions],
        "autoscaling_reaction_median_seconds": round(statistics.median(reactions), 2),
        "autoscaling_reaction_floor_seconds": 30.0,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
