"""Type fidelity of the transfer Spark job: every value arrives exactly, whatever time zone
the cluster's JVMs run in, or the transfer fails with the reason before it writes anything.

Why each rule (Spark 4.3, pgjdbc 42.7, MariaDB Connector/J 3.5):

- Spark's JDBC source reads every date and timestamp through ``ResultSet.getDate`` /
  ``getTimestamp`` (``JDBCValueGetter``), i.e. through ``java.sql`` objects built in the JVM's
  default time zone and its hybrid Julian/Gregorian calendar; its writer goes back the same
  way. In ``America/Los_Angeles`` a wall-clock value inside the DST gap (2024-03-10 02:30)
  becomes 03:30, and a year-1 instant moves by the zone's local mean time (7:52:58 instead
  of 8:00, 422 s). ``spark.sql.datetime.java8API.enabled`` does not change those getters.
  So the job's own JVMs (driver and executors) run in UTC, which has neither gaps nor a
  local mean time, and its session time zone is UTC (``job_settings``); what a value means
  is carried by its type, not by a zone.
- ``timestamp`` without time zone (PostgreSQL ``timestamp``, MySQL ``DATETIME``) is read as
  ``TIMESTAMP_NTZ`` (the JDBC option ``preferTimestampNTZ``); instants (``timestamptz``,
  MySQL ``TIMESTAMP``) stay ``TIMESTAMP``. Zone-less timestamps in CSV files are read as
  ``TIMESTAMP_NTZ`` too (``spark.sql.timestampType``), and CSV/JSON written with microseconds.
- MariaDB: the connection's time zone is UTC, also on the server side
  (``connectionTimeZone``, ``forceConnectionTimeZoneToSession``), so ``TIMESTAMP`` instants
  are exchanged in UTC; ``TINYINT(1)`` stays a number (``tinyInt1isBit=false``: as a
  boolean, 5 would arrive as true); writes run in strict ``TRADITIONAL`` SQL mode, so a
  value MariaDB cannot store is an error, not a silently adjusted value.
- What Spark cannot hold fails the transfer, named by column (``probe_source``): dates and
  timestamps outside 0001-01-01..9999-12-31, PostgreSQL's ``infinity`` (Spark's dialect
  would turn it into 9999-12-31 23:59:59.999999), the ten days 1582-10-05..14 that the
  hybrid calendar of ``java.sql`` lacks (they would move by ten days), ``TIME`` values finer
  than a millisecond (``getTime`` keeps milliseconds), numeric values with more than 38
  digits or decimal places (Spark's DECIMAL; Spark would round or fail without naming the
  column), and ``NaN``/``Infinity`` numerics. An unconstrained ``numeric`` is read at the
  scale its values need (Spark's default, DECIMAL(38,18), would round a 20th decimal).
- Exports create their staging table with types that hold Spark's values
  (``column_types``): MySQL ``DATETIME(6)``/``TIMESTAMP(6)`` (Spark's own choice,
  ``DATETIME``/``TIMESTAMP``, drops the microseconds), ``LONGBLOB``, ``utf8mb4``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from corral.domain.sql_names import Dialect, quote

MAX_DECIMAL_DIGITS = 38  # Spark's DecimalType.MAX_PRECISION and MAX_SCALE
UTC = "UTC"
JVM_UTC = "-Duser.timezone=UTC"
# Session settings of the transfer job (see the module docstring).
SQL_SETTINGS = {
    "spark.sql.session.timeZone": UTC,
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
}
CSV_JSON_WRITE = {"timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
                  "timestampNTZFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSS"}
MYSQL_READ = {"connectionTimeZone": UTC, "forceConnectionTimeZoneToSession": "true", "tinyInt1isBit": "false"}
MYSQL_WRITE = {**MYSQL_READ, "sessionVariables": "sql_mode='TRADITIONAL'"}

# java.sql.Types
_NUMERIC, _DECIMAL, _DATE, _TIME, _TIMESTAMP, _TIMESTAMP_TZ = 2, 3, 91, 92, 93, 2014


class Unrepresentable(Exception):
    """A source value the transfer cannot carry exactly; the message names the column."""


def connection_properties(dialect: Dialect, writing: bool) -> dict[str, str]:
    """Driver properties of every connection the job opens (Spark passes them on)."""
    if dialect == "mysql":
        return dict(MYSQL_WRITE if writing else MYSQL_READ)
    return {}  # pgjdbc sets the session's TimeZone from the JVM's, which is UTC here


def with_utc(java_options: str) -> str:
    """A JVM's extra options with UTC as its zone (the last -Duser.timezone wins)."""
    return f"{java_options} {JVM_UTC}".strip()


# -- reading: what the source holds, before anything is written --------------------------------

class Column:
    """One column of a JDBC result, from its ``ResultSetMetaData``."""

    def __init__(self, name: str, sql_type: int, type_name: str, precision: int, scale: int) -> None:
        self.name, self.sql_type, self.type_name = name, sql_type, type_name.lower()
        self.precision, self.scale = precision, scale

    @property
    def temporal(self) -> bool:
        return self.sql_type in (_DATE, _TIME, _TIMESTAMP, _TIMESTAMP_TZ)

    @property
    def numeric(self) -> bool:
        return self.sql_type in (_NUMERIC, _DECIMAL)

    @property
    def spark_decimal_is_exact(self) -> bool:
        """Whether Spark's own mapping (``JdbcUtils.getCatalystType``) keeps every value:
        a declared precision and scale within 38."""
        return 0 < self.precision <= MAX_DECIMAL_DIGITS and 0 <= self.scale <= self.precision


def read_as_text(dialect: Dialect, col: Column) -> bool:
    """MySQL ``DATETIME`` is read as its text and cast to TIMESTAMP_NTZ in Spark: Spark's MySQL
    dialect turns the driver's ``java.sql.Timestamp`` into TIMESTAMP_NTZ without the Julian to
    Gregorian rebase (``JdbcDialect.convertJavaTimestampToTimestampNTZ``'s default; the
    PostgreSQL dialect overrides it), which moves values before 1582-10-15 by days."""
    return dialect == "mysql" and col.sql_type == _TIMESTAMP and col.type_name.startswith("datetime")


def write_as_text(dialect: Dialect, spark_type: str) -> bool:
    """The same on the way out: TIMESTAMP_NTZ goes to MySQL as text (the server parses it
    into the DATETIME(6) column), not through ``convertTimestampNTZToJavaTimestamp``."""
    return dialect == "mysql" and spark_type == "timestamp_ntz"


def _text(dialect: Dialect, expr: str) -> str:
    return f"CAST({expr} AS {'TEXT' if dialect == 'postgresql' else 'CHAR'})"


def _bad_temporal(dialect: Dialect, col: Column, q: str) -> str | None:
    """A condition true for the column's values Spark cannot carry exactly."""
    if col.sql_type == _TIME:
        if dialect == "postgresql":
            return f"MOD(CAST(EXTRACT(MICROSECONDS FROM {q}) AS BIGINT), 1000) <> 0"
        return f"MOD(MICROSECOND({q}), 1000) <> 0 OR {q} < '00:00:00' OR {q} >= '24:00:00'"
    if dialect == "postgresql":
        if col.sql_type == _TIMESTAMP_TZ or col.type_name == "timestamptz":
            q = f"({q} AT TIME ZONE 'UTC')"
        kind = "DATE" if col.sql_type == _DATE else "TIMESTAMP"
        return (f"NOT ISFINITE({q}) OR {q} < {kind} '0001-01-01' OR {q} >= {kind} '10000-01-01' "
                f"OR ({q} >= {kind} '1582-10-05' AND {q} < {kind} '1582-10-15')")
    if col.type_name.startswith("timestamp"):
        return None  # MySQL's TIMESTAMP holds 1970..2038 only
    if read_as_text(dialect, col):
        return f"{q} < '0001-01-01'"  # zero dates and year 0; the text path has no calendar gap
    return f"{q} < '0001-01-01' OR ({q} >= '1582-10-05' AND {q} < '1582-10-15')"


Check = Callable[[list[Any]], "str | None"]


def probe_queries(dialect: Dialect, columns: list[Column], relation: str) -> tuple[str, list[tuple[Column, Check]]] | None:
    """One aggregate query over the source (SQL after FROM) for the columns that need a look
    at their values, and for each such column a function of the query's row (as text) that
    raises ``Unrepresentable`` or returns a Spark DDL type to read the column as (None:
    Spark's own type is exact)."""
    selects: list[str] = []
    checks: list[tuple[Column, Check]] = []
    for col in columns:
        q = quote(col.name, dialect)
        at = len(selects)
        if col.temporal:
            bad = _bad_temporal(dialect, col, q)
            if bad is None:
                continue
            selects.append(f"MIN(CASE WHEN {bad} THEN {_text(dialect, q)} END)")
            checks.append((col, _temporal_check(col, at)))
        elif col.numeric and not col.spark_decimal_is_exact:
            special = (f"{_text(dialect, q)} IN ('NaN', 'Infinity', '-Infinity')" if dialect == "postgresql"
                       else "1 = 0")
            scale = f"MAX(CASE WHEN NOT ({special}) THEN SCALE({q}) END)" if dialect == "postgresql" else str(col.scale)
            selects += [f"MIN(CASE WHEN {special} THEN {_text(dialect, q)} END)",
                        _text(dialect, f"MAX(CASE WHEN NOT ({special}) THEN ABS({q}) END)"), scale]
            checks.append((col, _numeric_check(col, at)))
    if not selects:
        return None
    return f"SELECT {', '.join(selects)} FROM {relation}", checks


def _temporal_check(col: Column, at: int) -> Check:
    def check(row: list[Any]) -> str | None:
        if row[at] is not None:
            what = ("TIME values are carried to the millisecond (and within a day)" if col.sql_type == _TIME else
                    "Spark holds dates and timestamps from 0001-01-01 to 9999-12-31, and the JDBC drivers' "
                    "calendar has no 1582-10-05..14")
            raise Unrepresentable(f"column {col.name!r} holds {row[at]}, which cannot be carried exactly: {what}")
        return None
    return check


def _numeric_check(col: Column, at: int) -> Check:
    def check(row: list[Any]) -> str | None:
        special, largest, scale = row[at], row[at + 1], row[at + 2]
        if special is not None:
            raise Unrepresentable(f"column {col.name!r} holds {special}, which Spark's DECIMAL cannot hold")
        if largest is None:
            return None  # no values: Spark's own type will do
        try:
            whole = len(str(abs(int(Decimal(str(largest)))))) if abs(Decimal(str(largest))) >= 1 else 0
        except InvalidOperation:
            raise Unrepresentable(f"column {col.name!r} holds {largest}, which is not a number Spark holds") from None
        scale = max(0, int(scale or 0))
        if whole + scale > MAX_DECIMAL_DIGITS:
            raise Unrepresentable(f"column {col.name!r} holds values of {whole} digits before the point and "
                                  f"{scale} after it: more than the {MAX_DECIMAL_DIGITS} digits of Spark's DECIMAL")
        return f"DECIMAL({MAX_DECIMAL_DIGITS}, {scale})"
    return check


# -- CSV numbers: what inference made a DOUBLE ----------------------------------------------------

DOUBLE_DIGITS = 15  # DBL_DIG: every decimal of this many significant digits survives a double
_PLAIN = r"^\\s*[+-]?([0-9]*)[.]?([0-9]*)\\s*$"


def csv_number_stats(column_sql: str) -> list[str]:
    """Spark SQL aggregates over a CSV column read as text: the most significant digits, the
    most digits before and after the point, and how many values are not plain decimals
    (an exponent, NaN, Infinity)."""
    whole = f"regexp_replace(regexp_extract({column_sql}, '{_PLAIN}', 1), '^0+', '')"
    fraction = f"regexp_replace(regexp_extract({column_sql}, '{_PLAIN}', 2), '0+$', '')"
    significant = f"length(regexp_replace(regexp_replace(concat({whole}, {fraction}), '^0+', ''), '0+$', ''))"
    plain = f"{column_sql} RLIKE '{_PLAIN}'"
    return [f"MAX(CASE WHEN {plain} THEN {significant} END)", f"MAX(CASE WHEN {plain} THEN length({whole}) END)",
            f"MAX(CASE WHEN {plain} THEN length({fraction}) END)",
            f"COUNT(CASE WHEN {column_sql} IS NOT NULL AND trim({column_sql}) <> '' AND NOT ({plain}) THEN 1 END)"]


def csv_number_type(name: str, stats: list[Any]) -> str:
    """DOUBLE when every value survives it, else DECIMAL(38, s) when they all fit; raises
    Unrepresentable otherwise."""
    significant, whole, scale, not_plain = (int(v or 0) for v in stats)
    if significant <= DOUBLE_DIGITS:
        return "DOUBLE"
    if not not_plain and whole + scale <= MAX_DECIMAL_DIGITS:
        return f"DECIMAL({MAX_DECIMAL_DIGITS}, {scale})"
    raise Unrepresentable(f"column {name!r} holds numbers of {significant} significant digits, more than a DOUBLE "
                          f"keeps, and not all fit a DECIMAL of {MAX_DECIMAL_DIGITS} digits; give --schema")


# -- writing: the staging table's columns --------------------------------------------------------

MYSQL_TYPES = {"timestamp_ntz": "DATETIME(6)", "timestamp": "TIMESTAMP(6) NULL", "binary": "LONGBLOB",
               "string": "LONGTEXT"}
MYSQL_TABLE_OPTIONS = " DEFAULT CHARSET=utf8mb4"


def column_type(dialect: Dialect, spark_type: str, spark_default: str) -> str:
    """The database type of a staging column: ``spark_default`` (Spark's own dialect mapping,
    ``JdbcUtils.getJdbcType``) unless it would not hold every value (see the module)."""
    if dialect == "mysql":
        return MYSQL_TYPES.get(spark_type, spark_default)
    return spark_default


def temporal_export_check(dialect: Dialect, spark_type: str, column_sql: str) -> str | None:
    """A Spark SQL condition for values of a date/timestamp column that JDBC drivers cannot
    write exactly (outside 0001..9999, or in 1582-10-05..14), or None for other types and
    for values written as text (``write_as_text``: the database checks those itself)."""
    if spark_type not in ("date", "timestamp", "timestamp_ntz") or write_as_text(dialect, spark_type):
        return None
    v = f"CAST({column_sql} AS TIMESTAMP_NTZ)"  # in the session's zone, UTC: the fields written
    return (f"{v} < TIMESTAMP_NTZ'0001-01-01 00:00:00' OR {v} > TIMESTAMP_NTZ'9999-12-31 23:59:59.999999' "
            f"OR ({v} >= TIMESTAMP_NTZ'1582-10-05 00:00:00' AND {v} < TIMESTAMP_NTZ'1582-10-15 00:00:00')")
