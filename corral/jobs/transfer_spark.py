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
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from pyspark import SparkConf, SparkContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from corral.domain.jdbc import driver_class, driver_url
from corral.domain.locations import STAGING_PREFIX, FileLocation
from corral.domain.sql_names import Dialect, Name, quote, sql_dialect
from corral.jobs.transfer import PASSWORD_ENV, REPORT_ENV, FileCommit, Kind, Transfer, parse
from corral.jobs.transfer_types import (CSV_JSON_WRITE, MYSQL_TABLE_OPTIONS, SQL_SETTINGS, Column, Unrepresentable,
                                        column_type, connection_properties, csv_number_stats, csv_number_type,
                                        probe_queries, read_as_text, temporal_export_check, with_utc,
                                        write_as_text)


class TransferError(Exception):
    """A failure explained in one line (the step's state message)."""


def say(message: str) -> None:
    print(f"corral: {message}", file=sys.stderr, flush=True)


def start_session(app_name: str) -> SparkSession:
    """The job's session, its driver and executors in UTC (``corral.jobs.transfer_types``).
    The driver JVM is already running (spark-submit started it): its default zone is set
    before the SparkContext exists; the executors get ``-Duser.timezone=UTC`` after the
    cluster's own options (spark-defaults, which spark-submit has loaded into the JVM)."""
    SparkContext._ensure_initialized()  # the gateway to the driver JVM, no context yet
    jvm = SparkContext._jvm
    assert jvm is not None
    jvm.java.util.TimeZone.setDefault(jvm.java.util.TimeZone.getTimeZone("UTC"))
    jvm.java.lang.System.setProperty("user.timezone", "UTC")
    executor_options = SparkConf().get("spark.executor.extraJavaOptions", "") or ""
    builder = SparkSession.builder.appName(app_name).config("spark.executor.extraJavaOptions", with_utc(executor_options))
    for key, value in SQL_SETTINGS.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


@contextmanager
def exact_names(spark: SparkSession) -> Iterator[None]:
    """Column names resolved case-sensitively (a JDBC partition column, the columns Spark's
    JDBC writer matches): ``"Id"`` and ``id`` are different columns in PostgreSQL."""
    before = spark.conf.get("spark.sql.caseSensitive")
    spark.conf.set("spark.sql.caseSensitive", "true")
    try:
        yield
    finally:
        spark.conf.set("spark.sql.caseSensitive", before or "false")


def jdbc_options(t: Transfer, url: str, writing: bool) -> dict[str, str]:
    return {"url": driver_url(url), "user": t.user or "", "password": os.environ.get(PASSWORD_ENV, ""),
            "driver": driver_class(url), **connection_properties(sql_dialect(url), writing)}


SPARK_JDBC_OPTIONS = {"url", "driver", "fetchsize", "preferTimestampNTZ", "customSchema", "dbtable", "batchsize"}


def sql_state(exc: BaseException) -> str:
    """The SQLSTATE of a Java SQLException behind a Py4J error ('' for anything else)."""
    try:
        return str(exc.java_exception.getSQLState())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not a Py4J error, or not an SQLException
        return ""


class Jdbc:
    """A plain JDBC connection in the driver: metadata, probes and the commit Spark's
    writer cannot do. Names reach it already quoted for its dialect."""

    def __init__(self, spark: SparkSession, options: dict[str, str]) -> None:
        jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
        props = jvm.java.util.Properties()
        for key, value in options.items():
            if key not in SPARK_JDBC_OPTIONS:  # the rest are the driver's own properties
                props.setProperty(key, value)
        # The drivers are on the driver JVM's class path (spark.driver.extraClassPath).
        self.conn = jvm.java.sql.DriverManager.getConnection(options["url"], props)
        self.dialect: Dialect = sql_dialect(options["url"])

    def close(self) -> None:
        self.conn.close()

    def table_exists(self, table_sql: str) -> bool:
        """Whether the database resolves ``table_sql`` (quoted) to a table: its own name
        lookup, so exactly that object (a metadata search would fold case or match
        ``_`` as a wildcard). SQLSTATE 42P01 (PostgreSQL) / 42S02 (MySQL): no such table."""
        stmt = self.conn.createStatement()
        try:
            stmt.executeQuery(f"SELECT 1 FROM {table_sql} WHERE 1 = 0").close()
            return True
        except Exception as exc:  # py4j's Py4JJavaError around a java.sql.SQLException
            if sql_state(exc) in ("42P01", "42S02"):
                return False
            raise
        finally:
            stmt.close()

    def columns(self, relation_sql: str) -> list[Column]:
        rs = self.conn.createStatement().executeQuery(f"SELECT * FROM {relation_sql} WHERE 1 = 0")
        meta = rs.getMetaData()
        found = [Column(meta.getColumnLabel(i), meta.getColumnType(i), meta.getColumnTypeName(i),
                        meta.getPrecision(i), meta.getScale(i)) for i in range(1, meta.getColumnCount() + 1)]
        rs.close()
        return found

    def one_row(self, sql: str) -> list[Any]:
        rs = self.conn.createStatement().executeQuery(sql)
        rs.next()
        row = [rs.getString(i) for i in range(1, rs.getMetaData().getColumnCount() + 1)]
        rs.close()
        return row

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

    def rename(self, old: Name, new: Name) -> str:
        if self.dialect == "postgresql":  # stays in its schema; the new name is unqualified
            return f"ALTER TABLE {old.sql(self.dialect)} RENAME TO {quote(new.object, self.dialect)}"
        return f"RENAME TABLE {old.sql(self.dialect)} TO {new.sql(self.dialect)}"


# -- reading -----------------------------------------------------------------------------------

def file_reader(spark: SparkSession, t: Transfer) -> Any:
    fmt = t.format or "parquet"
    reader = spark.read.format(fmt)
    if fmt in ("csv", "json"):
        reader = reader.option("mode", "FAILFAST")  # a value that does not parse fails, never becomes NULL
        if fmt == "json" and not t.schema:  # inferred numbers with a fraction: decimals (exact), not doubles
            reader = reader.option("prefersDecimal", "true")
    if fmt == "csv":
        reader = reader.option("header", t.header).option("sep", t.delimiter)
        if not t.schema:
            reader = reader.option("inferSchema", "true")
    if t.schema:
        reader = reader.schema(t.schema)
    return reader


def exact_csv_numbers(spark: SparkSession, t: Transfer, inferred: DataFrame) -> DataFrame:
    """CSV inference makes every number with a fraction a DOUBLE, which keeps 15 significant
    digits (DBL_DIG): a column with longer numbers is read as DECIMAL(38, s) when its values
    fit, else the transfer fails naming it (``transfer_types.csv_number_type``)."""
    doubles = [f.name for f in inferred.schema.fields if f.dataType.typeName() == "double"]
    if not doubles:
        return inferred
    raw = spark.read.format("csv").option("header", t.header).option("sep", t.delimiter).load(t.source_files.uri)
    row = raw.selectExpr(*[e for name in doubles for e in csv_number_stats(quote(name, "spark"))]).first()
    types = {name: csv_number_type(name, list(row[4 * i:4 * i + 4])) for i, name in enumerate(doubles)}  # type: ignore[index]
    if all(ddl == "DOUBLE" for ddl in types.values()):
        return inferred
    # (with spark.sql.timestampType TIMESTAMP_NTZ, plain "timestamp" in DDL would mean NTZ)
    ddl = {f.name: "timestamp_ltz" if f.dataType.typeName() == "timestamp" else f.dataType.simpleString()
           for f in inferred.schema.fields}
    schema = ", ".join(f"{quote(name, 'spark')} {types.get(name) or ddl[name]}" for name in ddl)
    return spark.read.format("csv").option("mode", "FAILFAST").option("header", t.header).option("sep", t.delimiter) \
        .schema(schema).load(t.source_files.uri)


def source_relation(t: Transfer) -> str:
    """The source as SQL after FROM: the quoted table, or the query as a derived table."""
    return t.table_name.sql(sql_dialect(t.source)) if t.table else f"({t.query}) corral_q"


def exact_read_types(db: Jdbc, relation: str) -> tuple[dict[str, str], list[str]]:
    """Spark types for the columns whose default mapping would not keep every value, after
    one aggregate look at the values (raises Unrepresentable), and the columns read as text
    to be cast to TIMESTAMP_NTZ in Spark (``transfer_types.read_as_text``)."""
    columns = db.columns(relation)
    types: dict[str, str] = {}
    probe = probe_queries(db.dialect, columns, relation)
    if probe is not None:
        sql, checks = probe
        row = db.one_row(sql)
        types = {col.name: spark_type for col, check in checks if (spark_type := check(row)) is not None}
    as_text = [col.name for col in columns if read_as_text(db.dialect, col)]
    return {**types, **{name: "STRING" for name in as_text}}, as_text


def bounds(db: Jdbc, t: Transfer, relation: str) -> tuple[int, int]:
    """MIN and MAX of the partition column, as Sqoop's boundary query does."""
    col = quote(t.partition_name, db.dialect)
    lo, hi = db.one_row(f"SELECT MIN({col}), MAX({col}) FROM {relation}")
    if lo is None:
        return 0, 0
    return int(lo), int(hi)


def read_jdbc(spark: SparkSession, t: Transfer) -> DataFrame:
    options = {**jdbc_options(t, t.source, writing=False), "fetchsize": "10000", "preferTimestampNTZ": "true"}
    relation = source_relation(t)
    db = Jdbc(spark, options)
    try:
        types, as_text = exact_read_types(db, relation)
        partitioned = bool(t.partition_column) and (t.num_partitions or 1) > 1
        if partitioned:
            lo, hi = (t.lower_bound, t.upper_bound) if t.lower_bound is not None else bounds(db, t, relation)
    finally:
        db.close()
    if types:
        options["customSchema"] = ", ".join(f"{quote(name, 'spark')} {ddl}" for name, ddl in types.items())
    options["dbtable"] = relation
    if partitioned:
        options.update(partitionColumn=t.partition_name, lowerBound=str(lo), upperBound=str(hi + 1),  # type: ignore[operator]
                       numPartitions=str(t.num_partitions))
    with exact_names(spark):  # the partition column resolves now, at load
        df = spark.read.format("jdbc").options(**options).load()
    for name in as_text:
        df = df.withColumn(name, F.col(quote(name, "spark")).cast("timestamp_ntz"))
    return df


def read_source(spark: SparkSession, t: Transfer) -> DataFrame:
    kind = t.source_kind
    if kind in (Kind.S3, Kind.HDFS):
        df = file_reader(spark, t).load(t.source_files.uri)
        return exact_csv_numbers(spark, t, df) if t.format == "csv" and not t.schema else df
    if kind is Kind.HIVE:
        return spark.table(t.source_hive.sql("spark"))
    return read_jdbc(spark, t)


# -- writing: stage, then commit ---------------------------------------------------------------

def staging_name(step_id: str) -> str:
    return "corral_staging_" + re.sub(r"\W", "_", step_id).lower()


def write_hive(spark: SparkSession, df: DataFrame, t: Transfer, step_id: str, exists: bool) -> None:
    target = t.target_hive
    staging = target.sibling(staging_name(step_id)).sql("spark")
    spark.sql(f"DROP TABLE IF EXISTS {staging}")
    try:
        df.write.format("parquet").saveAsTable(staging)
        if not exists:
            spark.sql(f"ALTER TABLE {staging} RENAME TO {target.sql('spark')}")
        elif t.mode == "overwrite":
            old = target.sibling(staging_name(step_id + "_old")).sql("spark")
            spark.sql(f"ALTER TABLE {target.sql('spark')} RENAME TO {old}")
            spark.sql(f"ALTER TABLE {staging} RENAME TO {target.sql('spark')}")
            spark.sql(f"DROP TABLE {old}")
        else:
            spark.sql(f"INSERT INTO {target.sql('spark')} BY NAME SELECT * FROM {staging}")
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {staging}")


def _fs(spark: SparkSession, location: FileLocation) -> tuple[Any, Any]:
    """(Hadoop Path, its FileSystem) of ``location``."""
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    path = jvm.org.apache.hadoop.fs.Path(location.uri)
    return path, path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]


def holds_data(spark: SparkSession, target: FileLocation) -> bool:
    """As ``transfer_run.holds_data``: for a root, whether it holds anything but staging."""
    path, fs = _fs(spark, target)
    if not target.is_root:
        return bool(fs.exists(path))
    return any(not str(s.getPath().getName()).startswith(STAGING_PREFIX) for s in fs.listStatus(path))


def write_files(spark: SparkSession, df: DataFrame, t: Transfer, step_id: str) -> None:
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    target_at = t.target_files
    staging_at = target_at.staging(step_id)
    target, fs = _fs(spark, target_at)
    staging, _ = _fs(spark, staging_at)
    fs.delete(staging, True)
    try:
        fmt = t.format or "parquet"
        writer = df.write.format(fmt).mode("overwrite")
        if fmt in ("csv", "json"):
            writer = writer.options(**CSV_JSON_WRITE)  # microseconds, not Spark's default milliseconds
        if fmt == "csv":
            writer = writer.option("header", t.header).option("sep", t.delimiter)
        writer.save(staging_at.uri)
        fs.delete(jvm.org.apache.hadoop.fs.Path(staging, "_SUCCESS"), False)
        commit = FileCommit.of(holds_data(spark, target_at), t.mode, target_at.is_root)
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


def check_export_values(df: DataFrame, dialect: Dialect) -> None:
    """Dates and timestamps a JDBC driver would change fail the export before it writes."""
    checks = [(f.name, cond) for f in df.schema.fields
              if (cond := temporal_export_check(dialect, f.dataType.typeName(), quote(f.name, "spark"))) is not None]
    if not checks:
        return
    row = df.selectExpr(*[f"MIN(CASE WHEN {cond} THEN CAST({quote(name, 'spark')} AS STRING) END)"
                          for name, cond in checks]).first()
    for (name, _), value in zip(checks, row or []):
        if value is not None:
            raise Unrepresentable(f"column {name!r} holds {value}, which a JDBC driver cannot write exactly: "
                                  "dates and timestamps from 0001-01-01 to 9999-12-31, except 1582-10-05..14")


def create_table_sql(spark: SparkSession, df: DataFrame, table: Name, dialect: Dialect, url: str) -> str:
    """The staging table's DDL, with column types that hold every value (``column_type``)."""
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    jdbc_dialect = jvm.org.apache.spark.sql.jdbc.JdbcDialects.get(url)
    utils = jvm.org.apache.spark.sql.execution.datasources.jdbc.JdbcUtils
    columns = []
    for java_field, field in zip(df._jdf.schema().fields(), df.schema.fields):
        spark_default = str(utils.getJdbcType(java_field.dataType(), jdbc_dialect).databaseTypeDefinition())
        ddl = column_type(dialect, field.dataType.typeName(), spark_default)
        columns.append(f"{quote(field.name, dialect)} {ddl}{'' if field.nullable else ' NOT NULL'}")
    options = MYSQL_TABLE_OPTIONS if dialect == "mysql" else ""
    return f"CREATE TABLE {table.sql(dialect)} ({', '.join(columns)}){options}"


def write_jdbc(spark: SparkSession, df: DataFrame, t: Transfer, step_id: str) -> None:
    dialect = sql_dialect(t.target)
    options = jdbc_options(t, t.target, writing=True)
    target = t.table_name
    staging = target.sibling(staging_name(step_id))
    check_export_values(df, dialect)
    db = Jdbc(spark, options)
    try:
        exists = db.table_exists(target.sql(dialect))
        if exists and t.mode == "error":
            raise TransferError(f"table {target} already exists in the database (use --mode overwrite or append)")
        db.execute_all([f"DROP TABLE IF EXISTS {staging.sql(dialect)}"])
        try:
            db.execute_all([create_table_sql(spark, df, staging, dialect, options["url"])])
            as_text = {f.name for f in df.schema.fields if write_as_text(dialect, f.dataType.typeName())}
            if as_text:
                df = df.select(*[F.col(quote(f.name, "spark")).cast("string").alias(f.name) if f.name in as_text
                                 else F.col(quote(f.name, "spark")) for f in df.schema.fields])
            with exact_names(spark):
                df.write.format("jdbc").options(**options).option("dbtable", staging.sql(dialect)) \
                    .option("batchsize", "10000").mode("append").save()
            if not exists:
                db.execute_all([db.rename(staging, target)])
                return
            cols = ", ".join(quote(c.name, dialect) for c in db.columns(staging.sql(dialect)))
            clear = [f"DELETE FROM {target.sql(dialect)}"] if t.mode == "overwrite" else []
            db.execute_all([*clear, f"INSERT INTO {target.sql(dialect)} ({cols}) SELECT {cols} FROM {staging.sql(dialect)}"])
        finally:
            db.execute_all([f"DROP TABLE IF EXISTS {staging.sql(dialect)}"])
    finally:
        db.close()


# -- the job -----------------------------------------------------------------------------------

def target_exists(spark: SparkSession, t: Transfer) -> bool:
    if t.target_kind is Kind.HIVE:
        name = t.target_hive
        return bool(spark.catalog.tableExists(name.object, name.qualifier or spark.catalog.currentDatabase()))
    if t.target_kind in (Kind.S3, Kind.HDFS):
        return holds_data(spark, t.target_files)
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
    spark = start_session(f"corral data {direction} {step_id}")
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
