"""Elasticity benchmarks (issue 12 §6; not timed tests): `.venv/bin/python bench/elastic.py`.

1. Scale-out: `PATCH node-groups/CORE` 2 -> 3 until the new NodeManager is RUNNING in the
   ResourceManager (its REST API). Floor <= 15 s on the local provider (EMR's published
   example: 5-6 minutes). Median of --runs (each run shrinks back to 2 first).
2. Scale-in of a CORE node holding data: 512 MB written at replication 2 over 3 CORE nodes,
   then `PATCH` 3 -> 2 until the node is released (TERMINATED, after HDFS re-replicated
   its blocks), against the time `hdfs dfs -cp` of the same 512 MB takes on the same
   cluster: a ratio (what a graceful decommission costs over copying the bytes once).

Autoscaling reaction (pending memory -> new NodeManager RUNNING, floor <= 30 s) is added
with autoscaling. The last line printed is one JSON object with every figure.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NODE_GROUPS, Server, run_step  # noqa: E402

SPEC = {"name": "bench-elastic", "node_groups": NODE_GROUPS}
DATA_BYTES = 512 * 1024 * 1024


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
    result = {
        "scale_out_seconds": [round(t, 2) for t in outs],
        "scale_out_median_seconds": round(statistics.median(outs), 2),
        "scale_out_floor_seconds": 15.0,
        "scale_in_seconds": round(scale_in, 1),
        "hdfs_cp_seconds": round(copy, 1),
        "scale_in_over_cp_ratio": round(scale_in / copy, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
