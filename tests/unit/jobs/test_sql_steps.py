"""SPARK_SQL and HIVE steps: one query or one shipped .sql file."""

from __future__ import annotations

from corral.domain.states import NodeRole
from corral.jobs.sql import HiveStep, SparkSqlStep
from corral.services.base import ClusterView, NodeView

MASTER = NodeView(node_id="n-1", role=NodeRole.MASTER, address="127.7.0.2", directory="/n/1", instance_type="local.small")
VIEW = ClusterView(cluster_id="c-x", release="corral-1.0", services=("hdfs", "spark", "hive"), nodes=(MASTER,))


def test_an_inline_query_runs_with_spark_sql_or_beeline() -> None:
    query = "SELECT region, count(*) FROM sales GROUP BY region"
    assert SparkSqlStep().check([query]) == ([], [])
    assert SparkSqlStep().command([query], VIEW).argv[-2:] == ["-e", query]
    beeline = HiveStep().command([query], VIEW).argv
    assert beeline[0] == "${SPARK_HOME}/bin/beeline" and "jdbc:hive2://127.7.0.2:10000/default" in beeline
    assert beeline[-2:] == ["-e", query]


def test_a_sql_file_is_shipped_and_run_with_f() -> None:
    files, errors = HiveStep().check(["/c/report.sql"])
    assert errors == [] and [(f.index, f.path) for f in files] == [(0, "/c/report.sql")]
    assert HiveStep().command(["/c/report.sql"], VIEW).argv[-2:] == ["-f", "/c/report.sql"]
    # spark-sql reads a remote script where it is (a Hadoop path); beeline only a local file
    assert SparkSqlStep().check(["s3a://b/report.sql"]) == ([], [])
    assert SparkSqlStep().command(["s3a://b/report.sql"], VIEW).argv[-2:] == ["-f", "s3a://b/report.sql"]


def test_one_argument_is_required() -> None:
    for args in ([], [""], ["SELECT 1", "SELECT 2"]):
        errors = SparkSqlStep().check(args)[1]
        assert errors and errors[0].loc == ("args",) and "one argument" in errors[0].msg
