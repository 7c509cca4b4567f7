"""Corral benchmarks (not timed tests): run with `make bench` or `.venv/bin/python bench/run.py`.

1. create -> WAITING for a 1 MASTER (local.small) + 2 CORE (local.medium) standalone Spark cluster;
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
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NODE_GROUPS, Server, bench_create, master_env, run_step, timed  # noqa: E402

SPEC = {"name": "bench", "services": ["spark"], "node_groups": NODE_GROUPS}


def raw_submit(cluster: dict[str, Any], home: Path, script: str, partitions: int) -> float:
    """spark-submit from the master node's own configuration, as a user would on EMR."""
    env, spark_home = master_env(cluster, home)
    master = next(n for n in cluster["nodes"] if n["role"] == "MASTER")
    return timed([str(spark_home / "bin" / "spark-submit"), "--master", f"spark://{master['address']}:7077",
                  script, str(partitions)], env)


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
        with Server(home) as server:
            creates, cid = bench_create(server, SPEC, args.creates)
            cluster = server.http.get(f"/clusters/{cid}").json()
            step_times, raw_times = [], []
            raw_submit(cluster, home, script, 2)  # warm the page cache for both sides alike
            for i in range(args.runs):
                step_times.append(run_step(server, cid, "SPARK", [script, str(args.partitions)]))
                raw_times.append(raw_submit(cluster, home, script, args.partitions))
                print(f"pi.py run {i + 1}: corral step {step_times[-1]:.2f} s, raw spark-submit {raw_times[-1]:.2f} s",
                      flush=True)
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
