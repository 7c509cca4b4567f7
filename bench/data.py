"""Data benchmarks on a Hadoop + Spark + Hive cluster (1 MASTER + 2 CORE):

- import of a 1M-row PostgreSQL table into a Hive Parquet table (DATA_IMPORT, parallel
  JDBC reads), rows per second, against ``psql \\copy`` of the same table to CSV on the
  same machine;
- ``SELECT count(*)`` on a 100k-row table through the warm SQL endpoint (PyHive), median
  latency (goal <= 1 s).

Run from the repository root: ``.venv/bin/python bench/data.py``. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from pyhive import hive  # noqa: E402

from bench.common import NODE_GROUPS, Server  # noqa: E402
from corral.cli.paging import read_log  # noqa: E402
from tests.postgres import ROLE, PostgresServer, find_bindir  # noqa: E402

SPEC: dict[str, Any] = {"name": "bench-data", "services": ["hdfs", "yarn", "mapreduce", "spark", "hive"],
                        "node_groups": NODE_GROUPS}


def wait_step(server: Server, cid: str, step: dict[str, Any]) -> dict[str, Any]:
    while True:
        s = server.http.get(f"/clusters/{cid}/steps/{step['id']}").json()
        if s["status"] in ("COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED"):
            if s["status"] != "COMPLETED":
                stderr = read_log(server.http, f"/clusters/{cid}/steps/{s['id']}/logs/stderr").decode(errors="replace")
                print("\n".join(line for line in stderr.splitlines() if not line.startswith("\tat "))[-6000:])
                raise RuntimeError(f"step {s['id']} {s['status']}: {s['state_message']}")
            return s
        time.sleep(0.2)


def make_table(pg: PostgresServer, db: str, rows: int) -> None:
    with psycopg.connect(host="127.0.0.1", port=pg.port, user=ROLE, password=pg.password, dbname=db, autocommit=True) as c:
        c.execute(f"""CREATE TABLE big AS SELECT g::bigint AS id, 'customer-' || (g * 7919 % 1000003) AS name,
                      round((g % 9973) * 1.37, 2)::numeric(12, 2) AS amount, (g % 97)::int AS qty,
                      (DATE '2024-01-01' + (g % 700)::int) AS day, (g % 3 = 0) AS flag
                      FROM generate_series(1::bigint, {rows}) g""")
        c.execute("ALTER TABLE big ADD PRIMARY KEY (id)")
        c.execute("VACUUM ANALYZE big")


def psql_copy(pg: PostgresServer, db: str, out: Path) -> float:
    """``psql \\copy big TO file CSV``: the same rows out of the same server, client-side."""
    psql = str(find_bindir() / "psql")
    env = {**os.environ, "PGPASSWORD": pg.password}
    t0 = time.monotonic()
    subprocess.run([psql, "-h", "127.0.0.1", "-p", str(pg.port), "-U", ROLE, "-d", db, "-q", "-c",
                    f"\\copy big TO '{out}' WITH (FORMAT csv)"], env=env, check=True)
    return time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--queries", type=int, default=20)
    args = parser.parse_args()
    pg = PostgresServer(bindir=find_bindir())
    pg.start()
    try:
        with tempfile.TemporaryDirectory(prefix="corral-bench-data-") as tmp, \
                Server(Path(tmp) / "home", subnet="127.92.0.0/16") as server:
            db = pg.create_database()
            make_table(pg, db, args.rows)
            copies = [psql_copy(pg, db, Path(tmp) / f"big-{i}.csv") for i in range(3)]
            print(f"psql \\copy of {args.rows} rows to CSV: {[round(t, 2) for t in copies]} s", flush=True)
            cid = server.create(SPEC)
            cluster = server.wait(cid, ("WAITING",))
            if cluster["status"] != "WAITING":
                raise RuntimeError(f"cluster {cid}: {cluster['state_change_reason']}")
            jdbc = f"jdbc:postgresql://127.0.0.1:{pg.port}/{db}"
            imports = []
            for i in range(2):
                t0 = time.monotonic()
                step = server.http.post(f"/clusters/{cid}/data/imports", json={
                    "from": jdbc, "table": "big", "user": ROLE, "password": pg.password, "to": f"hive:big_{i}",
                    "partition_column": "id", "num_partitions": args.partitions}).json()
                wait_step(server, cid, step)
                imports.append(time.monotonic() - t0)
                print(f"DATA_IMPORT of {args.rows} rows into Hive Parquet, run {i + 1}: {imports[-1]:.1f} s "
                      f"({args.rows / imports[-1]:,.0f} rows/s)", flush=True)
            made = server.http.post(f"/clusters/{cid}/steps", json={"steps": [{"type": "SPARK_SQL", "args": [
                "CREATE TABLE t100k USING parquet AS SELECT id, id % 97 AS k, uuid() AS s FROM range(100000)"]}]}).json()
            wait_step(server, cid, made["steps"][0])
            latencies = []
            with hive.connect(host=cluster["master_address"], port=10000, username="hadoop") as conn:
                cursor = conn.cursor()
                for i in range(3 + args.queries):  # the first ones warm the endpoint up
                    t0 = time.monotonic()
                    cursor.execute("SELECT count(*) FROM t100k")
                    assert cursor.fetchall() == [(100_000,)]
                    if i >= 3:
                        latencies.append(time.monotonic() - t0)
            print(f"SELECT count(*) on 100k rows, warm: median {statistics.median(latencies) * 1000:.0f} ms", flush=True)
    finally:
        pg.stop()
    best_import, best_copy = min(imports), min(copies)
    result = {
        "rows": args.rows,
        "import_s_runs": [round(t, 2) for t in imports],
        "import_rows_per_s": round(args.rows / best_import),
        "psql_copy_s_runs": [round(t, 2) for t in copies],
        "psql_copy_rows_per_s": round(args.rows / best_copy),
        "import_vs_psql_copy_time_ratio": round(best_import / best_copy, 2),
        "sql_count_100k_median_ms": round(statistics.median(latencies) * 1000, 1),
        "sql_count_100k_p90_ms": round(sorted(latencies)[int(len(latencies) * 0.9) - 1] * 1000, 1),
        "sql_count_goal_ms": 1000,
        "cpus": os.cpu_count(),
    }
    print(f"import {result['import_rows_per_s']:,} rows/s vs psql \\copy {result['psql_copy_rows_per_s']:,} rows/s "
          f"(time ratio {result['import_vs_psql_copy_time_ratio']}); warm SELECT count(*) median "
          f"{result['sql_count_100k_median_ms']} ms (goal <= 1000)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
