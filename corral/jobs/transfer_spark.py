"""The Spark job of a DATA_IMPORT / DATA_EXPORT step, submitted by ``transfer_run``:
``spark-submit transfer_spark.py DIRECTION STEP_ID OPTIONS...``.

It reads the source (files in s3a:// or HDFS, a Hive table, a database table or query over
JDBC), writes a staging copy beside the target, and only then commits: a rename of the
staging table or directory, or one database transaction. A bad source (unreachable, wrong
credentials, missing bucket, table or column) fails before anything reaches the target.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from corral.domain.jdbc import dialect, driver_class, driver_url
from corral.jobs.transfer import PASSWORD_ENV, REPORT_ENV, FileCommit, Kind, Transfer, parse, staging_path

class TransferError(Exception):
    """A failure explained in one line (the step's state message)."""


def say(message: str) -> None:
    print(f"corral: {message}", file=sys.stderr, flush=True)


def jdbc_options(t: Transfer, url: str) -> dict[str, str]:
    return {"url": driver_url(url), "user": t.user or "", "password": os.environ.get(PASSWORD_ENV, ""),
            "driver": driver_class(url)}


# -- reading -----------------------------------------------------------------------------------

def file_reader(spark: SparkSession, t: Transfer) -> Any:
    fmt = t.format or "parquet"
    reader = spark.read.format(fmt)
    if fmt == "csv":
        reader = reader.option("header", t.header).option("sep", t.delimiter)
        if not t.schema:
            reader = reader.option("inferSchema", "true")
    if t.schema:
        reader = reader.schema(t.schema)
    return reader


def bounds(spark: SparkSession, t: Transfer, options: dict[str, str], relation: str) -> tuple[int, int]:
    """MIN and MAX of the partition column, as Sqoop's boundary query does."""
    col = t.partition_column
    row = (spark.read.format("jdbc").options(**options)
           .option("query", f"SELECT MIN({col}) AS lo, MAX({col}) AS hi FROM {relation} corral_b").load().first())
    if row is None or row["lo"] is None:
        return 0, 0
    return int(row["lo"]), int(row["hi"])


def read_source(spark: SparkSession, t: Transfer) -> DataFrame:
    kind = t.source_kind
    if kind in (Kind.S3, Kind.HDFS):
        return file_reader(spark, t).load(t.source)
    if kind is Kind.HIVE:
        return spark.table(t.source[len("hive:"):])
    options = {**jdbc_options(t, t.source), "fetchsize": "10000"}
    relation = t.table if t.table else f"({t.query})"
    if t.partition_column and (t.num_partitions or 1) > 1:
        lo, hi = (t.lower_bound, t.upper_bound) if t.lower_bound is not None else bounds(spark, t, options, relation)
        options.update(partitionColumn=t.partition_column, lowerBound=str(lo), upperBound=str(hi + 1),
                       numPartitions=str(t.num_partitions))
        options["dbtable"] = t.table or f"({t.query}) corral_q"
    elif t.table:
        options["dbtable"] = t.table
    else:
        options["query"] = t.query or ""
    return spark.read.format("jdbc").options(**options).load()


# -- writing: stage, then commit ---------------------------------------------------------------

def staging_name(step_id: str) -> str:
    return "corral_staging_" + re.sub(r"\W", "_", step_id).lower()


def write_hive(spark: SparkSession, df: DataFrame, t: Transfer, step_id: str, exists: bool) -> None:
    target = t.target[len("hive:"):]
    database = target.rsplit(".", 1)[0] + "." if "." in target else ""
    staging = database + staging_name(step_id)
    spark.sql(f"DROP TABLE IF EXISTS {staging}")
    try:
        df.write.format("parquet").saveAsTable(staging)
        if not exists:
            spark.sql(f"ALTER TABLE {staging} RENAME TO {target}")
        elif t.mode == "overwrite":
            old = database + staging_name(step_id + "_old")
            spark.sql(f"ALTER TABLE {target} RENAME TO {old}")
            spark.sql(f"ALTER TABLE {staging} RENAME TO {target}")
            spark.sql(f"DROP TABLE {old}")
        else:
            spark.sql(f"INSERT INTO {target} BY NAME SELECT * FROM {staging}")
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {staging}")


def write_files(spark: SparkSession, df: DataFrame, t: Transfer, step_id: str) -> None:
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    target = jvm.org.apache.hadoop.fs.Path(t.target)
    fs = target.getFileSystem(conf)
    staging_str = staging_path(t.target, step_id)
    staging = jvm.org.apache.hadoop.fs.Path(staging_str)
    fs.delete(staging, True)
    try:
        writer = df.write.format(t.format or "parquet").mode("overwrite")
        if (t.format or "parquet") == "csv":
            writer = writer.option("header", t.header).option("sep", t.delimiter)
        writer.save(staging_str)
        fs.delete(jvm.org.apache.hadoop.fs.Path(staging, "_SUCCESS"), False)
        commit = FileCommit.of(bool(fs.exists(target)), t.mode)
        if commit is FileCommit.MOVE_INTO:
            renamed = all(fs.rename(f.getPath(), jvm.org.apache.hadoop.fs.Path(target, f.getPath().getName()))
                          for f in fs.listStatus(staging))
        else:
            if commit is FileCommit.RENAME:
                fs.mkdirs(target.getParent())
            else:
                fs.delete(target, True)
            renamed = fs.rename(staging, target)
        if not renamed:
            raise TransferError(f"could not move the staged files into {t.target}")
    finally:
        fs.delete(staging, True)


class Jdbc:
    """A plain JDBC connection in the driver, for the commit Spark's writer cannot do."""

    def __init__(self, spark: SparkSession, options: dict[str, str]) -> None:
        jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
        props = jvm.java.util.Properties()
        props.setProperty("user", options["user"])
        props.setProperty("password", options["password"])
        # The drivers are on the driver JVM's class path (spark.driver.extraClassPath).
        self.conn = jvm.java.sql.DriverManager.getConnection(options["url"], props)
        self.kind = dialect(options["url"])

    def table_exists(self, table: str) -> bool:
        schema, _, name = table.rpartition(".")
        meta = self.conn.getMetaData()
        names = {name, name.lower(), name.upper()}
        for candidate in names:
            rs = meta.getTables(None, schema or None, candidate, None)
            if rs.next():
                return True
        return False

    def columns(self, table: str) -> list[str]:
        rs = self.conn.createStatement().executeQuery(f"SELECT * FROM {table} WHERE 1 = 0")
        meta = rs.getMetaData()
        return [meta.getColumnName(i) for i in range(1, meta.getColumnCount() + 1)]

    def execute_all(self, statements: list[str]) -> None:
        """In one transaction (PostgreSQL and MariaDB's InnoDB roll back data changes)."""
        self.conn.setAutoCommit(False)
        try:
            stmt = self.conn.createStatement()
            for sql in statements:
                stmt.execute(sql)
            self.conn.commit()
        except Exception:
            self.conn.rollback()
            raise
        finally:
            self.conn.setAutoCommit(True)

    def rename(self, old: str, new: str) -> str:
        if self.kind == "postgresql":
            return f"ALTER TABLE {old} RENAME TO {new.rpartition('.')[2]}"
        return f"RENAME TABLE {old} TO {new}"


def write_jdbc(spark: SparkSession, df: DataFrame, t: Transfer, step_id: str) -> None:
    options = jdbc_options(t, t.target)
    target = t.table or ""
    schema = target.rpartition(".")[0]
    staging = (schema + "." if schema else "") + staging_name(step_id)
    db = Jdbc(spark, options)
    exists = db.table_exists(target)
    if exists and t.mode == "error":
        raise TransferError(f"table {target} already exists in the database (use --mode overwrite or append)")
    db.execute_all([f"DROP TABLE IF EXISTS {staging}"])
    try:
        df.write.format("jdbc").options(**options).option("dbtable", staging).option("batchsize", "10000") \
            .mode("overwrite").save()
        if not exists:
            db.execute_all([db.rename(staging, target)])
            return
        cols = ", ".join(db.columns(staging))
        clear = [f"DELETE FROM {target}"] if t.mode == "overwrite" else []
        db.execute_all([*clear, f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {staging}"])
    finally:
        db.execute_all([f"DROP TABLE IF EXISTS {staging}"])
        db.conn.close()


# -- the job -----------------------------------------------------------------------------------

def target_exists(spark: SparkSession, t: Transfer) -> bool:
    if t.target_kind is Kind.HIVE:
        return bool(spark.catalog.tableExists(t.target[len("hive:"):]))
    if t.target_kind in (Kind.S3, Kind.HDFS):
        jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
        path = jvm.org.apache.hadoop.fs.Path(t.target)
        return bool(path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(path))  # type: ignore[attr-defined]
    return False  # a database table is checked by write_jdbc, which holds the connection


def run(spark: SparkSession, t: Transfer, step_id: str) -> int:
    exists = target_exists(spark, t)
    if exists and t.mode == "error":
        raise TransferError(f"{t.target} already exists (use --mode overwrite or append)")
    df = read_source(spark, t)
    if t.target_kind is Kind.HIVE:
        write_hive(spark, df, t, step_id, exists)
    elif t.target_kind is Kind.JDBC:
        write_jdbc(spark, df, t, step_id)
    else:
        write_files(spark, df, t, step_id)
    return 0


def one_line(exc: BaseException) -> str:
    """The line of a (possibly Java) error that names what is wrong: a Py4J error's own
    first line only says which call failed, so its Java exception is read instead."""
    # Py4JJavaError keeps the Java exception as java_exception, PySpark's captured ones as _origin.
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    text = str(exc) if java is None or getattr(exc, "_origin", None) is not None else str(java.toString())
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith("An error occurred while calling")]
    first = (lines[0] if lines else type(exc).__name__)[:600]
    root = java
    while root is not None and root.getCause() is not None and not root.getCause().equals(root):
        root = root.getCause()
    if root is not None and not root.equals(java):  # e.g. Spark's "Couldn't connect" over the driver's reason
        return f"{first} (caused by {str(root.toString())[:400]})"
    return first


def main() -> None:
    direction, step_id, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    t = parse(direction, args)
    spark = SparkSession.builder.appName(f"corral data {direction} {step_id}").getOrCreate()
    try:
        run(spark, t, step_id)
        say(f"{direction} done: {t.source} -> {t.target}")
    except Exception as exc:  # the step fails with one readable line, after the trace
        traceback.print_exc()
        try:
            reason = one_line(exc)
        except Exception:  # noqa: BLE001 - e.g. the driver JVM is gone: Python's own line then
            reason = (f"{type(exc).__name__}: " + (str(exc).strip().splitlines() or [""])[0])[:600]
        say(f"{direction} failed: {reason}")
        report = os.environ.get(REPORT_ENV)
        if report:  # transfer_run prints it last on the step's stderr, where its failure message comes from
            Path(report).write_text(reason)
        spark.stop()
        sys.exit(1)
    spark.stop()


if __name__ == "__main__":
    main()
