"""The transfer Spark job itself, in Spark's local mode (no cluster), its JVM started in
America/Los_Angeles: files -> a real PostgreSQL table, with the CSV reader's types.

Zone-less CSV timestamps arrive as wall-clock values (``timestamp``), ones with an offset
as instants (``timestamptz``), a number longer than a DOUBLE keeps as an exact numeric; a
CSV column no type holds exactly fails the job naming it, and no table is created.
(test_data runs every other path on real clusters.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pyspark
import pytest

from corral.runtime.hadoop import ensure_hadoop
from tests.postgres import PostgresServer

pytestmark = pytest.mark.integration
CSV = ("id,wall,instant,day,small,exact\n"
       "1,2024-03-10 02:30:00.123456,2024-03-10T02:30:00-08:00,2024-02-29,12.5,12345678901234567890.123\n"
       "2,0001-01-01 00:00:00,0001-01-01T00:00:00Z,0001-01-01,-3,0.5\n")


def run_job(direction: str, args: list[str], password: str, tmp: Path) -> tuple[int, str]:
    jars = sorted(str(p) for p in (ensure_hadoop() / "jdbc").glob("*.jar"))
    spark_home = Path(pyspark.__file__).parent
    report = tmp / "reason"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "PYSPARK_PYTHON": sys.executable,
           "SPARK_HOME": str(spark_home), "CORRAL_JDBC_PASSWORD": password, "CORRAL_TRANSFER_REPORT": str(report)}
    argv = [str(spark_home / "bin" / "spark-submit"), "--master", "local[1]", "--driver-class-path", ":".join(jars),
            "--driver-java-options", "-Duser.timezone=America/Los_Angeles -XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
            "--conf", "spark.ui.enabled=false", "--conf", f"spark.local.dir={tmp}",
            str(Path(__file__).parents[2] / "corral" / "jobs" / "transfer_spark.py"), direction, "s-1", *args]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=tmp)
    return done.returncode, report.read_text() if report.exists() else done.stdout[-3000:] + done.stderr[-3000:]


def test_csv_files_to_postgresql_keep_their_values(postgres_server: PostgresServer, tmp_path: Path) -> None:
    name = postgres_server.create_database()
    url = f"jdbc:postgresql://127.0.0.1:{postgres_server.port}/{name}"
    kwargs = {"host": "127.0.0.1", "port": postgres_server.port, "user": "corral",
              "password": postgres_server.password, "dbname": name}
    files = tmp_path / "in"
    files.mkdir()
    (files / "part-0.csv").write_text(CSV)
    try:
        code, reason = run_job("export", ["--from", str(files), "--format", "csv", "--to", url, "--table", "FromCsv",
                                          "--user", "corral"], postgres_server.password, tmp_path)
        assert code == 0, reason
        with psycopg.connect(**kwargs) as conn:
            conn.execute("SET TIME ZONE 'UTC'")
            rows = conn.execute('SELECT id, wall::text, instant::text, day::text, small::text, exact::text '
                                'FROM "FromCsv" ORDER BY id').fetchall()
            types = dict(conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                                      "WHERE table_name = 'FromCsv'").fetchall())
        assert rows == [(1, "2024-03-10 02:30:00.123456", "2024-03-10 10:30:00+00", "2024-02-29", "12.5",
                         "12345678901234567890.123"),
                        (2, "0001-01-01 00:00:00", "0001-01-01 00:00:00+00", "0001-01-01", "-3", "0.500")]
        assert types == {"id": "integer", "wall": "timestamp without time zone", "instant": "timestamp with time zone",
                         "day": "date", "small": "double precision", "exact": "numeric"}
        # a number no type holds exactly (18 digits with an exponent elsewhere in the column)
        (files / "part-1.csv").write_text("id,wall,instant,day,small,exact\n3,,,,1e300,1.12345678901234567\n")
        (files / "part-2.csv").write_text("id,wall,instant,day,small,exact\n4,,,,1.12345678901234567,1\n")
        code, reason = run_job("export", ["--from", str(files), "--format", "csv", "--to", url, "--table", "Ghost",
                                          "--user", "corral"], postgres_server.password, tmp_path)
        assert code == 1 and "column 'small' holds numbers of 18 significant digits" in reason, reason
        with psycopg.connect(**kwargs) as conn:
            tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables "
                                                 "WHERE table_schema = 'public'").fetchall()}
        assert tables == {"FromCsv"}
    finally:
        postgres_server.drop_database(name)
