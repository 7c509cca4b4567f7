"""Corral benchmarks (not timed tests): run with `make bench` or `.venv/bin/python bench/run.py`.

1. create -> WAITING for a 1 MASTER (local.small) + 2 CORE (local.medium) Spark cluster;
   goal <= 20 s on a 2-core machine. Median of --creates runs.
2. Spark's pi.py as a Corral step vs raw ``spark-submit --master spark://...`` of the same
   script on the same cluster with the same spark-defaults, --runs each (default 5),
   alternating; ratio of medians, goal <= 1.05 (the ratio of minimums is printed too: on
   2 cores single runs vary by several seconds). A step's time is from the API request to the moment the
   API reports it COMPLETED (so it includes queueing, dispatch and log shipping).

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ENDED = ("TERMINATED", "TERMINATED_WITH_ERRORS")
SPEC = {"name": "bench", "services": ["spark"], "node_groups": [
    {"role": "MASTER", "instance_type": "local.small", "count": 1},
    {"role": "CORE", "instance_type": "local.medium", "count": 2}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, home: Path):
        self.env = {**os.environ, "CORRAL_HOME": str(home), "CORRAL_PORT": str(free_port()),
                    "CORRAL_LOCAL_SUBNET": "127.90.0.0/16"}
        self.url = f"http://127.0.0.1:{self.env['CORRAL_PORT']}"
        home.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "corral.server"], env=self.env,
                                     stdout=open(home / "server.log", "ab"), stderr=subprocess.STDOUT)
        self.http = httpx.Client(base_url=self.url + "/api/v1", timeout=30)
        for _ in range(300):
            try:
                if self.http.get("/health").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def wait(self, cid: str, states: tuple[str, ...], poll: float = 0.05) -> dict[str, Any]:
        while True:
            c = self.http.get(f"/clusters/{cid}").json()
            if c["status"] in states or c["status"] in ENDED:
                return c
            time.sleep(poll)

    def terminate(self, cid: str) -> None:
        self.http.post(f"/clusters/{cid}/terminate")
        self.wait(cid, ENDED, poll=0.2)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def bench_create(server: Server, runs: int) -> tuple[list[float], str]:
    times = []
    keep = ""
    for i in range(runs):
        t0 = time.monotonic()
        cid = server.http.post("/clusters", json=SPEC).json()["id"]
        c = server.wait(cid, ("WAITING",))
        elapsed = time.monotonic() - t0
        if c["status"] != "WAITING":
            raise RuntimeError(f"cluster {cid} {c['status']}: {c['state_change_reason']}")
        times.append(elapsed)
        print(f"create -> WAITING run {i + 1}: {elapsed:.2f} s", flush=True)
        if i == runs - 1:
            keep = cid
        else:
            server.terminate(cid)
    return times, keep


def corral_step(server: Server, cid: str, script: str, partitions: int) -> float:
    t0 = time.monotonic()
    step = server.http.post(f"/clusters/{cid}/steps", json={"steps": [
        {"type": "SPARK", "args": [script, str(partitions)]}]}).json()["steps"][0]
    while True:
        s = server.http.get(f"/clusters/{cid}/steps/{step['id']}").json()
        if s["status"] in ("COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED"):
            break
        time.sleep(0.2)  # faster polling costs the 2-core machine more CPU than it saves in latency
    elapsed = time.monotonic() - t0
    if s["status"] != "COMPLETED":
        raise RuntimeError(f"step {s['id']} {s['status']}: {s['state_message']}")
    return elapsed


def raw_submit(cluster: dict[str, Any], home: Path, script: str, partitions: int) -> float:
    """spark-submit from the master node's own configuration, as a user would on EMR."""
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    master = next(n for n in cluster["nodes"] if n["role"] == "MASTER")
    conf_dir = home / "nodes" / cluster["id"] / master["id"] / "conf" / "spark"
    env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_CONF_DIR": str(conf_dir),
           "SPARK_LOCAL_IP": master["address"], "PYSPARK_PYTHON": sys.executable}
    t0 = time.monotonic()
    subprocess.run([str(spark_home / "bin" / "spark-submit"), "--master", f"spark://{master['address']}:7077",
                    script, str(partitions)], env=env, check=True, capture_output=True)
    return time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--creates", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=10)
    args = parser.parse_args()
    import pyspark

    script = str(Path(pyspark.__file__).parent / "examples" / "src" / "main" / "python" / "pi.py")
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        home = Path(tmp) / "home"
        server = Server(home)
        cid = ""
        try:
            creates, cid = bench_create(server, args.creates)
            cluster = server.http.get(f"/clusters/{cid}").json()
            step_times, raw_times = [], []
            raw_submit(cluster, home, script, 2)  # warm the page cache for both sides alike
            for i in range(args.runs):
                step_times.append(corral_step(server, cid, script, args.partitions))
                raw_times.append(raw_submit(cluster, home, script, args.partitions))
                print(f"pi.py run {i + 1}: corral step {step_times[-1]:.2f} s, raw spark-submit {raw_times[-1]:.2f} s",
                      flush=True)
        finally:
            if cid:
                server.terminate(cid)
            server.stop()
    result = {
        "create_to_waiting_s_median": round(statistics.median(creates), 2),
        "create_to_waiting_s_runs": [round(t, 2) for t in creates],
        "create_goal_s": 20,
        "step_s_median": round(statistics.median(step_times), 2),
        "raw_spark_submit_s_median": round(statistics.median(raw_times), 2),
        "step_vs_raw_ratio": round(statistics.median(step_times) / statistics.median(raw_times), 3),
        "step_vs_raw_ratio_of_minimums": round(min(step_times) / min(raw_times), 3),
        "ratio_goal": 1.05,
        "cpus": os.cpu_count(),
    }
    print(f"create -> WAITING median {result['create_to_waiting_s_median']} s (goal <= 20 s); "
          f"step/raw ratio {result['step_vs_raw_ratio']} (goal <= 1.05)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
