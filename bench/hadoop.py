"""Hadoop + Spark benchmarks (not timed tests): `make bench` runs them after bench/run.py.

1. create -> WAITING for a 1 MASTER (local.small) + 2 CORE (local.medium) cluster with
   HDFS + YARN + MAPREDUCE + SPARK; goal <= 45 s. Median of --creates runs.
2. Resident memory of that idle cluster: every process carrying the cluster's id (agents,
   daemons), summed; goal <= 4 GiB.
3. teragen 1 GB and terasort 1 GB as HADOOP_JAR steps: wall times and their ratio.
4. Spark's pi.py on YARN as a Corral step vs raw ``spark-submit --master yarn`` of the same
   script from the master's configuration, --runs each, alternating; ratio of medians,
   goal <= 1.05.

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NODE_GROUPS, Server, bench_create, master_env, run_step, timed  # noqa: E402

SPEC = {"name": "bench-hadoop", "node_groups": NODE_GROUPS}  # the default services: Hadoop + Spark
EXAMPLES = "hadoop-mapreduce-examples.jar"


def cluster_rss(cluster_id: str) -> int:
    total = 0
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("CORRAL_CLUSTER_ID") == cluster_id:
                total += proc.memory_info().rss
        except (psutil.Error, OSError):
            continue
    return total


def raw_yarn_submit(cluster: dict[str, Any], home: Path, script: str, partitions: int) -> float:
    env, spark_home = master_env(cluster, home)
    return timed([str(spark_home / "bin" / "spark-submit"), "--master", "yarn", script, str(partitions)], env)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--creates", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--tera-rows", type=int, default=10_000_000, help="100-byte rows; 10M = 1 GB")
    args = parser.parse_args()
    import pyspark

    script = str(Path(pyspark.__file__).parent / "examples" / "src" / "main" / "python" / "pi.py")
    with tempfile.TemporaryDirectory(prefix="corral-bench-hadoop-") as tmp:
        home = Path(tmp) / "home"
        with Server(home, subnet="127.91.0.0/16") as server:
            creates, cid = bench_create(server, SPEC, args.creates)
            time.sleep(10)  # let the daemons settle after start-up
            rss = cluster_rss(cid)
            print(f"idle cluster resident memory: {rss / 2**30:.2f} GiB", flush=True)
            teragen = run_step(server, cid, "HADOOP_JAR", [EXAMPLES, "teragen", str(args.tera_rows), "/bench/tera-in"])
            print(f"teragen {args.tera_rows * 100 / 1e9:.1f} GB: {teragen:.1f} s", flush=True)
            terasort = run_step(server, cid, "HADOOP_JAR", [EXAMPLES, "terasort", "/bench/tera-in", "/bench/tera-out"])
            print(f"terasort: {terasort:.1f} s", flush=True)
            cluster = server.http.get(f"/clusters/{cid}").json()
            step_times, raw_times = [], []
            raw_yarn_submit(cluster, home, script, 2)  # warm up both sides alike
            for i in range(args.runs):
                step_times.append(run_step(server, cid, "SPARK", [script, str(args.partitions)]))
                raw_times.append(raw_yarn_submit(cluster, home, script, args.partitions))
                print(f"pi.py on YARN run {i + 1}: corral step {step_times[-1]:.2f} s, raw spark-submit "
                      f"{raw_times[-1]:.2f} s", flush=True)
    result = {
        "hadoop_create_to_waiting_s_median": round(statistics.median(creates), 2),
        "hadoop_create_to_waiting_s_runs": [round(t, 2) for t in creates],
        "hadoop_create_goal_s": 45,
        "idle_cluster_rss_gib": round(rss / 2**30, 2),
        "idle_rss_goal_gib": 4,
        "teragen_s": round(teragen, 1),
        "terasort_s": round(terasort, 1),
        "terasort_vs_teragen_ratio": round(terasort / teragen, 2),
        "tera_gb": args.tera_rows * 100 / 1e9,
        "yarn_step_s_median": round(statistics.median(step_times), 2),
        "yarn_raw_spark_submit_s_median": round(statistics.median(raw_times), 2),
        "yarn_step_vs_raw_ratio": round(statistics.median(step_times) / statistics.median(raw_times), 3),
        "yarn_step_vs_raw_ratio_of_minimums": round(min(step_times) / min(raw_times), 3),
        "ratio_goal": 1.05,
        "cpus": os.cpu_count(),
    }
    print(f"create -> WAITING median {result['hadoop_create_to_waiting_s_median']} s (goal <= 45 s); idle RSS "
          f"{result['idle_cluster_rss_gib']} GiB (goal <= 4); terasort/teragen {result['terasort_vs_teragen_ratio']}; "
          f"YARN step/raw ratio {result['yarn_step_vs_raw_ratio']} (goal <= 1.05)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
