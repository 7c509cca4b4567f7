"""DATA_IMPORT / DATA_EXPORT: option parsing, directions, requirements, and the REST form."""

from __future__ import annotations

import pytest

from corral.domain.transfer_request import DataTransferRequest
from corral.jobs.transfer import OBJECT_STORAGE, Kind, TransferStep, parse


def test_object_storage_to_hdfs_is_a_distcp_copy_and_needs_mapreduce() -> None:
    t = parse("import", ["--from", "s3://bucket/in/", "--to", "/data/in"])
    assert t.source == "s3a://bucket/in" and (t.source_kind, t.target_kind) == (Kind.S3, Kind.HDFS)  # normal form
    assert t.is_copy and t.requirements() == ("mapreduce", "hdfs", OBJECT_STORAGE)


def test_object_storage_to_hive_is_a_spark_job() -> None:
    t = parse("import", ["--from", "s3a://b/sales", "--to", "hive:shop.sales", "--format", "csv", "--mode", "overwrite"])
    assert not t.is_copy and t.requirements() == ("spark", "hive", OBJECT_STORAGE)


def test_database_import_with_parallel_reads() -> None:
    t = parse("import", ["--from", "jdbc:postgresql://db:5432/shop", "--table", "orders", "--user", "etl",
                         "--to", "hive:orders", "--partition-column", "id", "--num-partitions", "8"])
    assert (t.table, t.user, t.partition_column, t.num_partitions) == ("orders", "etl", "id", 8)
    assert t.requirements() == ("spark", "hive")


@pytest.mark.parametrize("direction, args, message", [
    ("import", ["--from", "hive:t", "--to", "/x"], "a data import goes from database or object storage, not a Hive table"),
    ("export", ["--from", "s3a://b/x", "--to", "hive:t"], "a data export goes from HDFS path or Hive table"),
    ("import", ["--from", "oss://b/x", "--to", "/x"], "not a location"),
    ("import", ["--from", "s3a://b/x", "--to", "hive:bad-name"], "expected hive:table"),
    ("import", ["--from", "jdbc:postgresql://h/db", "--to", "/x", "--user", "u"], "exactly one of --table or --query"),
    ("import", ["--from", "jdbc:postgresql://h/db", "--to", "/x", "--table", "t"], "needs --user"),
    ("export", ["--from", "/x", "--to", "jdbc:mysql://h/db", "--query", "select 1", "--user", "u"], "needs --table"),
    ("import", ["--from", "s3a://b/x", "--to", "/x", "--table", "t"], "--table is for database transfers only"),
    ("import", ["--from", "s3a://b/x", "--to", "/x", "--num-partitions", "4"], "for database sources only"),
    ("import", ["--from", "jdbc:postgresql://h/db", "--table", "t", "--user", "u", "--to", "/x", "--num-partitions", "4"],
     "needs --partition-column"),
    ("import", ["--from", "jdbc:postgresql://h/db", "--table", "t", "--user", "u", "--to", "/x",
                "--partition-column", "id", "--num-partitions", "4", "--lower-bound", "1"], "both --lower-bound and --upper-bound"),
    ("import", ["--from", "jdbc:postgresql://h/db", "--table", "t", "--user", "u", "--to", "hive:t", "--format", "csv"],
     "--format describes files"),
    ("import", ["--from", "s3a://b/x", "--to", "/x", "--mode", "merge"], "invalid choice: 'merge'"),
    ("import", ["--to", "/x"], "the following arguments are required: --from"),
    ("export", ["--from", "/x", "--to", "jdbc:postgresql://h/db", "--table", 'public."t', "--user", "u"],
     "--table: unterminated"),
])
def test_bad_transfers_say_what_is_wrong(direction: str, args: list[str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse(direction, args)
    assert message in str(info.value)
    _, errors = TransferStep(direction).check(args)
    assert [e.loc for e in errors] == [("args",)] and message in errors[0].msg


def test_the_rest_form_becomes_the_step_options_and_points_at_the_field() -> None:
    req = DataTransferRequest.model_validate({
        "from": "jdbc:postgresql://db/shop", "to": "hive:orders", "table": "orders", "user": "etl",
        "password": "pw-123", "partition_column": "id", "num_partitions": 4, "header": False, "mode": "append"})
    args = req.to_args()
    assert "pw-123" not in args and "--password" not in args
    assert args == ["--from", "jdbc:postgresql://db/shop", "--to", "hive:orders", "--mode", "append", "--table", "orders",
                    "--user", "etl", "--partition-column", "id", "--num-partitions", "4", "--header", "false"]
    assert parse("import", args).num_partitions == 4
    assert "pw-123" not in repr(req) and "pw-123" not in req.model_dump_json()
    assert req.field_for("a database target needs --table (and no --query)") == "table"
    assert req.field_for("--from 'x': not a location") == "source"


def test_staging_sits_beside_the_target_and_errors_are_read_from_tool_output() -> None:
    from corral.jobs.transfer import staging_path
    from corral.jobs.transfer_run import last_error

    assert staging_path("s3a://lake/copy/sales/", "s-1") == "s3a://lake/copy/.corral-staging-s-1"
    assert staging_path("/data/sales", "s-2") == "/data/.corral-staging-s-2"
    stderr = ("26/11/25 INFO Configuration: loaded\n"
              "mv: `s3a://lake/x': No such file or directory\n\tat org.apache.hadoop.fs.FsShell.run(FsShell.java:1)\n")
    assert last_error(stderr) == "mv: `s3a://lake/x': No such file or directory"
    assert last_error("") == "no output"


def test_jdbc_urls_and_drivers_for_the_shipped_drivers() -> None:
    from corral.domain.jdbc import driver_class, driver_url

    assert driver_class("jdbc:postgresql://h/db") == "org.postgresql.Driver"
    assert driver_class("jdbc:mysql://h/db") == driver_class("jdbc:mariadb://h/db") == "org.mariadb.jdbc.Driver"
    assert driver_url("jdbc:mysql://h/db") == "jdbc:mysql://h/db?permitMysqlScheme"
    assert driver_url("jdbc:mysql://h/db?ssl=true") == "jdbc:mysql://h/db?ssl=true&permitMysqlScheme"
    assert driver_url("jdbc:postgresql://h/db") == "jdbc:postgresql://h/db"
