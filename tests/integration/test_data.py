"""Data in and out, against real servers started here: s3proxy (an S3-compatible object
store), PostgreSQL and MariaDB, with clusters whose Hive metastore lives in one of those
databases and whose warehouse and logs live in the bucket.

Round trips are compared exactly: CSV objects -> Hive table -> aggregate through beeline
and PyHive -> PostgreSQL table; a PostgreSQL table of every type's edge values -> Hive ->
Parquet in the bucket -> imported back -> a new PostgreSQL table, cell for cell. Bad
sources fail the step with a clear reason and leave no target behind; secrets appear
nowhere. A second cluster on the same metastore sees the first one's tables, and copies
files between the bucket and its HDFS with DistCp. A third keeps its metastore in MariaDB
and moves a MariaDB table in and out (20k rows with a checksum of every column, and the
edge values). The second cluster has the tightest Hive-on-YARN shape Corral accepts, one
local.medium CORE node, and runs every kind of step there too (``tight``; the other shapes
are test_tight_clusters').

Every cluster's Spark JVMs run in America/Los_Angeles (DST gaps, a local mean time before
1883): timestamps, dates, numerics, bytes and text must arrive exactly all the same, both
ways, on PostgreSQL and MariaDB (``data_fidelity``). Table names that differ only in case
address exactly the named table. Locations at a root (``hdfs:///x``, a bucket root) are
copied both ways.
"""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
from pyhive import hive

from tests.integration.conftest import HADOOP_SPEC, HTTP, TEST_JVM_OPTIONS, ControlPlaneProcess, cluster_processes
from tests.integration.data_fidelity import (PG_ROWS, create_mariadb_tables, create_pg_tables,
                                             mariadb_round_trip_differences, pg_round_trip_differences)
from tests.integration.tight import check_yarn_sizes, run_every_step_type
from tests.mariadb import MariaDBServer
from tests.postgres import PostgresServer
from tests.s3server import S3Server

pytestmark = pytest.mark.integration
CORRAL = str(Path(sys.executable).with_name("corral"))
BUCKET = "lake"
REGIONS = ["apac", "emea", "latam", "na"]
# One checksum per column, computed the same way by the database and by Spark SQL: the sum
# of the first 32 bits of each value's MD5 (order-independent, exact).
SPARK_SUM = "SUM(CAST(conv(substr(md5(CAST({c} AS STRING)), 1, 8), 16, 10) AS BIGINT))"
ROOTS, COPIES = "roots", "copies"  # buckets that Spark and DistCp fill at their root
# The test JVM options (with_test_jvm_options) plus a zone with a DST gap on 2024-03-10.
IN_LOS_ANGELES = f"{TEST_JVM_OPTIONS} -Duser.timezone=America/Los_Angeles"
SPARK_IN_LOS_ANGELES = [{"classification": "spark-defaults", "properties": {
    "spark.driver.extraJavaOptions": IN_LOS_ANGELES, "spark.executor.extraJavaOptions": IN_LOS_ANGELES}}]
# The second cluster has the tightest Hive-on-YARN shape Corral accepts, one local.medium
# CORE node (tests/integration/tight.py, which it runs as test_tight_clusters would on a
# cluster of its own). Not the third: on one local.small standalone worker each transfer
# waits ~30 s for the SQL endpoint's idle executor after the query before it.
TIGHT_ON_YARN = [{"role": "MASTER", "instance_type": "local.small", "count": 1},
                 {"role": "CORE", "instance_type": "local.medium", "count": 1}]


class Shared:
    """What the first cluster leaves for the second (the tests run in file order)."""

    metastore_db: str = ""
    expected: dict[str, tuple[int, int]] = {}


@pytest.fixture(scope="module")
def lake(s3_server: S3Server) -> S3Server:
    s3_server.create_bucket(BUCKET)
    s3_server.create_bucket(ROOTS)
    s3_server.create_bucket(COPIES)
    return s3_server


@pytest.fixture(scope="module")
def shop(postgres_server: PostgresServer) -> Iterator[tuple[str, dict[str, Any]]]:
    """A database with the exact-value tables (data_fidelity); (JDBC URL, psycopg connection kwargs)."""
    name = postgres_server.create_database()
    kwargs = {"host": "127.0.0.1", "port": postgres_server.port, "user": "corral",
              "password": postgres_server.password, "dbname": name}
    with psycopg.connect(**kwargs, autocommit=True) as conn:
        create_pg_tables(conn)
    yield f"jdbc:postgresql://127.0.0.1:{postgres_server.port}/{name}", kwargs
    postgres_server.drop_database(name)


def sales_csv(seed: int, rows: int) -> tuple[bytes, list[tuple[str, int]]]:
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["region", "product", "amount"])
    data = [(rng.choice(REGIONS), f"p{rng.randrange(50)}", rng.randrange(1, 10_000)) for _ in range(rows)]
    writer.writerows(data)
    return out.getvalue().encode(), [(r, a) for r, _, a in data]


def step_ok(cp: ControlPlaneProcess, cid: str, step: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    done = cp.wait_step(cid, step["id"], timeout=timeout)
    assert done["status"] == "COMPLETED", (done["state_message"], cp.log(cid, step["id"], "stderr")[-4000:])
    return done


def step_fails(cp: ControlPlaneProcess, cid: str, step: dict[str, Any], *fragments: str) -> str:
    done = cp.wait_step(cid, step["id"], timeout=300)
    assert done["status"] == "FAILED", done
    message = done["state_message"] or ""
    assert all(f in message for f in fragments), message
    return message


def transfer(cp: ControlPlaneProcess, cid: str, direction: str, **body: Any) -> dict[str, Any]:
    resp = cp.http.post(f"/clusters/{cid}/data/{direction}", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def pyhive_rows(cluster: dict[str, Any], query: str, *settings: str) -> list[tuple[Any, ...]]:
    with hive.connect(host=cluster["master_address"], port=10000, username="hadoop") as conn:
        cursor = conn.cursor()
        for setting in settings:  # e.g. SET spark.sql.session.timeZone=UTC, for this session
            cursor.execute(setting)
        cursor.execute(query)
        return list(cursor.fetchall()) if cursor.description else []


@pytest.mark.timeout(1500)
def test_round_trips_through_object_storage_and_postgres(shared_cp: ControlPlaneProcess, lake: S3Server,
                                                         shop: tuple[str, dict[str, Any]],
                                                         postgres_server: PostgresServer, tmp_path: Path) -> None:
    jdbc, pg = shop
    Shared.metastore_db = postgres_server.create_database()
    # Standalone Spark (no YARN) keeps this many short Spark applications quick; the second
    # cluster, on YARN, runs the DistCp transfers.
    spec = {**HADOOP_SPEC, "name": "data-a", "configurations": SPARK_IN_LOS_ANGELES, "services": ["hdfs", "spark", "hive"],
            "object_storage": lake.object_storage_spec(), "log_uri": f"s3a://{BUCKET}/logs",
            "metastore": {"type": "postgresql", "jdbc_url": f"jdbc:postgresql://127.0.0.1:{postgres_server.port}/{Shared.metastore_db}",
                          "username": "corral", "password": postgres_server.password,
                          "warehouse_dir": f"s3a://{BUCKET}/warehouse"}}
    cid = shared_cp.create(spec)["id"]
    s3 = lake.client()
    secrets_ = [lake.secret_key, postgres_server.password]
    step_ids: list[str] = []
    try:
        cluster = shared_cp.wait_cluster(cid, ("WAITING",), timeout=300)
        # the cluster's Spark JVMs, driver (the SQL endpoint) and executors, run in Los Angeles
        zones = pyhive_rows(cluster, "SELECT DISTINCT current_timezone(), reflect('java.lang.System', 'getProperty', "
                                     "'user.timezone') FROM range(0, 4, 1, 4)")
        assert zones == [("America/Los_Angeles", "America/Los_Angeles")]
        # -- CSV objects -> Hive table (through the CLI) -> aggregates through beeline and PyHive
        expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for part in range(3):
            body, rows = sales_csv(part, 1000)
            s3.put_object(Bucket=BUCKET, Key=f"incoming/sales/part-{part}.csv", Body=body)
            for region, amount in rows:
                expected[region][0] += amount
                expected[region][1] += 1
        Shared.expected = {r: (t, n) for r, (t, n) in expected.items()}
        cli = subprocess.run([CORRAL, "data", "import", cid, "--from", f"s3://{BUCKET}/incoming/sales/", "--to", "hive:sales",
                              "--format", "csv", "--wait", "-o", "json"], env=shared_cp.env, capture_output=True, text=True,
                             timeout=400)
        assert cli.returncode == 0, (cli.stdout, cli.stderr)
        step_ids.append(json.loads(cli.stdout)["id"])
        query = "SELECT region, SUM(amount) AS total, COUNT(*) AS n FROM sales GROUP BY region ORDER BY region"
        beeline = step_ok(shared_cp, cid, shared_cp.add_step(cid, "HIVE", [query]))
        step_ids.append(beeline["id"])
        lines = [line.split("> ", 1)[-1].split("\t") for line in shared_cp.log(cid, beeline["id"]).strip().splitlines()]
        assert lines[0] == ["region", "total", "n"]
        assert {r: (int(t), int(n)) for r, t, n in lines[1:]} == Shared.expected
        assert {r: (t, n) for r, t, n in pyhive_rows(cluster, query)} == Shared.expected
        # the table's data is in the bucket's warehouse, not in the cluster's HDFS
        assert s3.list_objects_v2(Bucket=BUCKET, Prefix="warehouse/sales/")["KeyCount"] > 0

        # -- Hive aggregate -> PostgreSQL table, and the modes (a new table: ExportTarget below)
        pyhive_rows(cluster, "CREATE TABLE region_totals AS "
                             "SELECT region, SUM(amount) AS total, COUNT(*) AS n FROM sales GROUP BY region")
        export = dict(source="hive:region_totals", target=jdbc, table="region_totals", user="corral",
                      password=postgres_server.password)
        export_body = {("from" if k == "source" else "to" if k == "target" else k): v for k, v in export.items()}

        def pg_totals() -> list[tuple[str, int, int]]:
            with psycopg.connect(**pg) as conn:
                return conn.execute("SELECT region, total, n FROM region_totals ORDER BY region").fetchall()

        with psycopg.connect(**pg) as conn:  # the table is there already
            conn.execute("CREATE TABLE region_totals (region text, total bigint, n bigint)")
            conn.execute("INSERT INTO region_totals VALUES ('stale', 0, 0)")
        step_fails(shared_cp, cid, transfer(shared_cp, cid, "exports", **export_body), "already exists")
        assert pg_totals() == [("stale", 0, 0)]  # left as it was
        # overwrite replaces every row (the MariaDB test appends)
        step_ids.append(step_ok(shared_cp, cid, transfer(shared_cp, cid, "exports", **export_body, mode="overwrite"))["id"])
        assert {r: (t, n) for r, t, n in pg_totals()} == Shared.expected

        # -- exact names and values: "Sales" (not sales), quoted names through the CLI, read in
        # two partitions of the mixed-case "Id"; every type's edge values -> Hive -> Parquet at
        # a bucket's root -> back into Hive -> a new table named ExportTarget as written (not
        # exporttarget), cell for cell as PostgreSQL renders them, on JVMs in America/Los_Angeles
        cli = subprocess.run([CORRAL, "data", "import", cid, "--from", jdbc, "--table", '"Sales"', "--user", "corral",
                              "--partition-column", "Id", "--num-partitions", "2", "--to", "hive:sales_exact",
                              "--wait", "-o", "json"], env={**shared_cp.env, "CORRAL_DB_PASSWORD": postgres_server.password},
                             capture_output=True, text=True, timeout=400)
        assert cli.returncode == 0, (cli.stdout, cli.stderr)
        step_ids.append(json.loads(cli.stdout)["id"])
        held = pyhive_rows(cluster, "SELECT COUNT(*), typeof(MAX(t)), CAST(MAX(CASE WHEN Id = 1 THEN t END) AS STRING), "
                                    "CAST(MAX(CASE WHEN Id = 2 THEN t END) AS STRING), "
                                    "CAST(MAX(CASE WHEN Id = 1 THEN z END) AS STRING), typeof(MAX(z)) FROM sales_exact",
                           "SET spark.sql.session.timeZone=UTC")
        assert held == [(3, "timestamp_ntz", "2024-03-10 02:30:00", "0001-01-01 00:00:00", "0001-01-01 00:00:00",
                         "timestamp")]
        out = transfer(shared_cp, cid, "exports", **{"from": "hive:sales_exact", "to": f"s3a://{ROOTS}", "format": "parquet"})
        step_ids.append(step_ok(shared_cp, cid, out)["id"])
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=ROOTS)["Contents"]]
        assert keys and all(k.endswith(".parquet") and "/" not in k for k in keys), keys  # no staging left
        back = transfer(shared_cp, cid, "imports", **{"from": f"s3a://{ROOTS}/", "to": "hive:sales_back",
                                                      "format": "parquet"})
        step_ids.append(step_ok(shared_cp, cid, back)["id"])
        step_ids.append(step_ok(shared_cp, cid, transfer(shared_cp, cid, "exports", **{
            "from": "hive:sales_back", "to": jdbc, "table": "ExportTarget", "user": "corral",
            "password": postgres_server.password}))["id"])
        with psycopg.connect(**pg) as conn:
            assert pg_round_trip_differences(conn, '"ExportTarget"') == []
            assert not conn.execute("SELECT 1 FROM information_schema.tables WHERE table_name = 'exporttarget'").fetchall()
            # a value Spark cannot hold fails the import by name, and no table is left
            conn.execute('INSERT INTO "Sales" ("Id", d) VALUES (4, \'infinity\')')
        step_fails(shared_cp, cid, transfer(shared_cp, cid, "imports", **{
            "from": jdbc, "to": "hive:ghost3", "table": "Sales", "user": "corral", "password": postgres_server.password}),
                   "column 'd' holds infinity")

        # -- bad sources: the step fails with the reason and no target is left
        step_fails(shared_cp, cid, transfer(shared_cp, cid, "imports", **{"from": "s3a://no-such-bucket/x", "to": "hive:ghost1",
                                                                           "format": "csv"}), "no-such-bucket")
        wrong = transfer(shared_cp, cid, "imports", **{"from": jdbc, "to": "hive:ghost2", "table": "Sales", "user": "corral",
                                                       "password": "not-the-password"})
        step_fails(shared_cp, cid, wrong, "password authentication failed")
        tables = {row[1] for row in pyhive_rows(cluster, "SHOW TABLES")}
        assert {"sales", "region_totals", "sales_exact", "sales_back"} <= tables
        assert not {t for t in tables if t.startswith(("ghost", "corral_staging"))}, tables
        assert not s3.list_objects_v2(Bucket=BUCKET, Prefix="warehouse/ghost")["KeyCount"]

        # -- secrets appear in no log, event, description or configuration
        shown = [json.dumps(shared_cp.cluster(cid)), json.dumps(shared_cp.events(cid)),
                 shared_cp.http.get(f"/clusters/{cid}/configurations").text,
                 json.dumps(shared_cp.steps(cid))]
        for step in shared_cp.steps(cid):
            shown += [shared_cp.log(cid, step["id"], "stdout"), shared_cp.log(cid, step["id"], "stderr")]
        for secret in secrets_:
            assert not any(secret in text for text in shown), "a secret leaked"
    finally:
        shared_cp.terminate(cid)
    assert cluster_processes(cid) == []
    # -- the LogUri keeps step and daemon logs after the cluster is gone
    archived = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"logs/{cid}/", MaxKeys=1000).get("Contents", [])]
    for step_id in step_ids:
        assert f"logs/{cid}/steps/{step_id}/stderr" in archived, (step_id, archived[:20])
    master = next(n for n in cluster["nodes"] if n["role"] == "MASTER")
    assert any(k.startswith(f"logs/{cid}/node/{master['id']}/") and k.endswith("hive-metastore.log") for k in archived)


@pytest.mark.timeout(1200)
def test_external_metastore_outlives_its_cluster(shared_cp: ControlPlaneProcess, lake: S3Server,
                                                 postgres_server: PostgresServer, tmp_path: Path) -> None:
    """Also the tightest Hive-on-YARN shape: one local.medium CORE node (tight.py)."""
    assert Shared.metastore_db, "runs after test_round_trips_through_object_storage_and_postgres"
    spec = {**HADOOP_SPEC, "name": "data-b", "node_groups": TIGHT_ON_YARN,
            "configurations": SPARK_IN_LOS_ANGELES, "services": ["hdfs", "yarn", "mapreduce", "spark", "hive"],
            "object_storage": lake.object_storage_spec(),
            "metastore": {"type": "postgresql", "jdbc_url": f"jdbc:postgresql://127.0.0.1:{postgres_server.port}/{Shared.metastore_db}",
                          "username": "corral", "password": postgres_server.password,
                          "warehouse_dir": f"s3a://{BUCKET}/warehouse"}}
    cid = shared_cp.create(spec)["id"]
    try:
        cluster = shared_cp.wait_cluster(cid, ("WAITING",), timeout=300)
        # -- the ResourceManager offers the sizes Corral derived; the SQL endpoint, idle, holds its AM only
        check_yarn_sizes(shared_cp, cluster)
        # -- object storage <-> HDFS as files (DistCp on YARN), both ways, at roots: from a
        # bucket's root (the Parquet files the first cluster wrote there) into a path at HDFS's
        # root written hdfs:///, and out to another bucket's root
        s3 = lake.client()
        sizes = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=ROOTS)["Contents"]}
        step_ok(shared_cp, cid, transfer(shared_cp, cid, "imports", **{"from": f"s3a://{ROOTS}", "to": "hdfs:///sales"}))
        step_ok(shared_cp, cid, transfer(shared_cp, cid, "exports", **{"from": "/sales/", "to": f"s3a://{COPIES}"}))
        copies = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=COPIES)["Contents"]}
        assert copies == sizes  # at the bucket's root, and no staging directory left

        def hdfs_listing(path: str) -> dict[str, int]:
            url = f"http://{cluster['master_address']}:9870/webhdfs/v1{path}?op=LISTSTATUS&user.name=hadoop"
            return {f["pathSuffix"]: f["length"] for f in HTTP.get(url).json()["FileStatuses"]["FileStatus"]}

        assert hdfs_listing("/sales") == sizes
        assert not [name for name in hdfs_listing("/") if name.startswith(".corral-staging")]
        # -- a key DistCp's map cannot copy (':' is not valid in an HDFS name): the step's
        #    reason carries that map's own error, not only "the job failed" (issue 10)
        s3.put_object(Bucket=BUCKET, Key="stamped/2026-12-01T10:00:00.csv", Body=b"region,amount\nna,1\n")
        stamped = transfer(shared_cp, cid, "imports", **{"from": f"s3a://{BUCKET}/stamped/", "to": "/data/stamped"})
        step_fails(shared_cp, cid, stamped, "DistCp failed")
        reason = shared_cp.wait_for(lambda: "container error:" in (m := shared_cp.step(cid, stamped["id"])["state_message"])
                                    and m, 60, "the map's error in the step's reason").splitlines()[0]
        assert "container error: java.lang.IllegalArgumentException: Pathname " in reason, reason
        assert "2026-12-01T10:00:00.csv" in reason and "is not a valid DFS filename" in reason, reason
        # -- every kind of step beside the SQL endpoint's AM: Spark in client and cluster mode,
        # MapReduce, SQL (after the DistCp steps: an idle endpoint's executors, kept 30 s after
        # a query, would hold them up on this one node)
        run_every_step_type(shared_cp, cluster, tmp_path, on_yarn=True)
        # -- a second cluster on the metastore sees the first one's tables
        rows = pyhive_rows(cluster, "SELECT region, total, n FROM region_totals ORDER BY region")
        assert {r: (t, n) for r, t, n in rows} == Shared.expected
        assert pyhive_rows(cluster, "SELECT COUNT(*) FROM sales_back") == [(len(PG_ROWS),)]
    finally:
        shared_cp.terminate(cid)
    assert cluster_processes(cid) == []


# The same per-column checksum in MariaDB's SQL (CONV gives a string: cast it exactly).
MARIADB_SUM = "SUM(CAST(CONV(SUBSTR(MD5(CAST({c} AS CHAR)), 1, 8), 16, 10) AS UNSIGNED))"
ORDER_ROWS = 20_000
ORDER_COLUMNS = ["id", "customer", "amount", "qty", "day"]


def test_mysql_metastore_and_mariadb_round_trips(shared_cp: ControlPlaneProcess, lake: S3Server,
                                                 mariadb_server: MariaDBServer) -> None:
    metastore_db, shop_db = mariadb_server.create_database(), mariadb_server.create_database()
    jdbc = mariadb_server.jdbc_url(shop_db)
    with mariadb_server.connect(shop_db) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE orders (id BIGINT PRIMARY KEY, customer VARCHAR(40) NOT NULL, "
                    "amount DECIMAL(12, 2) NOT NULL, qty INT NOT NULL, day DATE NOT NULL)")
        cur.execute(f"INSERT INTO orders SELECT seq, CONCAT('c-', seq * 7919 % 53), (seq % 9973) * 1.37, seq % 97, "
                    f"DATE '2024-01-01' + INTERVAL (seq % 700) DAY FROM seq_1_to_{ORDER_ROWS}")
        cur.execute("SELECT COUNT(*), " + ", ".join(MARIADB_SUM.format(c=c) for c in ORDER_COLUMNS) + " FROM orders")
        source = tuple(int(v) for v in cur.fetchone())
        cur.execute("SELECT customer, SUM(amount), COUNT(*) FROM orders GROUP BY customer")
        totals = {c: (t, n) for c, t, n in cur.fetchall()}
        create_mariadb_tables(cur)
    spec = {**HADOOP_SPEC, "name": "data-c", "configurations": SPARK_IN_LOS_ANGELES, "services": ["hdfs", "spark", "hive"],
            "object_storage": lake.object_storage_spec(),
            "metastore": {"type": "mysql", "jdbc_url": mariadb_server.jdbc_url(metastore_db), "username": "corral",
                          "password": mariadb_server.password, "warehouse_dir": f"s3a://{BUCKET}/mysql-warehouse"}}
    cid = shared_cp.create(spec)["id"]
    db = {"user": "corral", "password": mariadb_server.password}
    try:
        cluster = shared_cp.wait_cluster(cid, ("WAITING",), timeout=300)
        # -- MariaDB table -> Hive (2 parallel reads): counts and every column's checksum equal
        step_ok(shared_cp, cid, transfer(shared_cp, cid, "imports", **{
            "from": jdbc, "to": "hive:orders", "table": "orders", "partition_column": "id", "num_partitions": 2, **db}))
        copied = pyhive_rows(cluster, "SELECT COUNT(*), " + ", ".join(SPARK_SUM.format(c=c) for c in ORDER_COLUMNS)
                             + " FROM orders")
        assert source[0] == ORDER_ROWS and tuple(int(v) for v in copied[0]) == source
        # -- exact names and values, as on PostgreSQL: `Sales` (not sales) in two partitions of
        # `Id` -> Hive -> a new table ExportTarget, cell for cell as MariaDB renders them
        step_ok(shared_cp, cid, transfer(shared_cp, cid, "imports", **{
            "from": jdbc, "to": "hive:my_sales", "table": "`Sales`", "partition_column": "`Id`", "num_partitions": 2, **db}))
        assert pyhive_rows(cluster, "SELECT COUNT(*), CAST(MAX(CASE WHEN Id = 1 THEN t END) AS STRING), "
                                    "CAST(MAX(CASE WHEN Id = 2 THEN t END) AS STRING) FROM my_sales") == [
            (3, "2024-03-10 02:30:00", "0001-01-01 00:00:00")]
        step_ok(shared_cp, cid, transfer(shared_cp, cid, "exports", **{"from": "hive:my_sales", "to": jdbc,
                                                                        "table": "ExportTarget", **db}))
        with mariadb_server.connect(shop_db) as conn, conn.cursor() as cur:
            assert mariadb_round_trip_differences(cur, "`ExportTarget`") == []
            cur.execute("SHOW TABLES")
            assert {"Sales", "sales", "ExportTarget"} <= {row[0] for row in cur.fetchall()}
        # -- a Hive aggregate appended (INSERT ... SELECT) to a MariaDB table holding the same
        # totals already (a new table, RENAME TABLE, is ExportTarget above)
        pyhive_rows(cluster, "CREATE TABLE customer_totals AS "
                             "SELECT customer, SUM(amount) AS total, COUNT(*) AS n FROM orders GROUP BY customer")
        with mariadb_server.connect(shop_db) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE customer_totals (customer VARCHAR(40), total DECIMAL(22, 2), n BIGINT)")
            cur.execute("INSERT INTO customer_totals SELECT customer, SUM(amount), COUNT(*) FROM orders GROUP BY customer")

        def exported() -> list[tuple[Any, ...]]:
            with mariadb_server.connect(shop_db) as conn, conn.cursor() as cur:
                cur.execute("SELECT customer, total, n FROM customer_totals")
                return list(cur.fetchall())

        export = {"from": "hive:customer_totals", "to": jdbc, "table": "customer_totals", **db}
        step_ok(shared_cp, cid, transfer(shared_cp, cid, "exports", **export, mode="append"))
        assert sorted(exported()) == sorted([(c, t, n) for c, (t, n) in totals.items()] * 2)
        # -- a missing column fails the step with MariaDB's reason and leaves no table
        step_fails(shared_cp, cid, transfer(shared_cp, cid, "imports", **{
            "from": jdbc, "to": "hive:ghost", "query": "SELECT id, nope FROM orders", **db}), "nope")
        assert not {row[1] for row in pyhive_rows(cluster, "SHOW TABLES") if row[1].startswith(("ghost", "corral_staging"))}
        # -- the tables are in the MariaDB metastore, their data in the bucket
        with mariadb_server.connect(metastore_db) as conn, conn.cursor() as cur:
            cur.execute("SELECT TBL_NAME FROM TBLS")
            assert {"orders", "customer_totals"} <= {row[0] for row in cur.fetchall()}
        assert lake.client().list_objects_v2(Bucket=BUCKET, Prefix="mysql-warehouse/orders/")["KeyCount"] > 0
        shown = [json.dumps(shared_cp.cluster(cid)), json.dumps(shared_cp.events(cid))]
        for step in shared_cp.steps(cid):
            shown += [shared_cp.log(cid, step["id"], "stdout"), shared_cp.log(cid, step["id"], "stderr")]
        assert not any(mariadb_server.password in text for text in shown), "a secret leaked"
    finally:
        shared_cp.terminate(cid)
    assert cluster_processes(cid) == []
