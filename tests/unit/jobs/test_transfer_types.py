"""The transfer job's look at a database source before it reads (``transfer_types``): its
probe SQL runs on the real PostgreSQL and MariaDB, and every value Spark would change is
refused, named by column, while exact values pass and unconstrained numerics get the scale
their values need. (The whole path, through Spark and a cluster, is in test_data.)"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from corral.jobs.transfer_types import (MYSQL_TYPES, Column, Unrepresentable, column_type, connection_properties,
                                        probe_queries, with_utc)
from tests.mariadb import MariaDBServer

# java.sql.Types and the metadata pgjdbc / MariaDB Connector/J report for these columns
DATE, TIME, TIMESTAMP, NUMERIC, DECIMAL = 91, 92, 93, 2, 3
PG_COLUMNS = {"d": Column("d", DATE, "date", 13, 0), "t": Column("t", TIMESTAMP, "timestamp", 29, 6),
              "z": Column("z", TIMESTAMP, "timestamptz", 35, 6), "tm": Column("tm", TIME, "time", 15, 6),
              "n": Column("n", NUMERIC, "numeric", 0, 0), "wide": Column("wide", NUMERIC, "numeric", 50, 10),
              "fine": Column("fine", NUMERIC, "numeric", 60, 45), "ok": Column("ok", NUMERIC, "numeric", 10, 2)}
PG_DDL = "d date, t timestamp, z timestamptz, tm time, n numeric, wide numeric(50, 10), fine numeric(60, 45), ok numeric(10, 2)"
GOOD_PG = ("'0001-01-01', '2024-03-10 02:30:00', '0001-01-01 00:00:00+00', '23:59:59.999', "
           "-12345.123456789012345678901, 1234567890123456789012345678.1234567890, NULL, 1.5")


def outcome(run: Any, dialect: Any, columns: list[Column], relation: str) -> dict[str, str]:
    probe = probe_queries(dialect, columns, relation)
    assert probe is not None
    sql, checks = probe
    row = [None if v is None else str(v) for v in run(sql)]  # as JDBC's getString gives them
    return {col.name: t for col, check in checks if (t := check(row)) is not None}


@pytest.mark.postgres
def test_postgresql_values_spark_keeps_pass_and_unconstrained_numerics_get_their_scale(pg: psycopg.Connection) -> None:
    pg.execute(f"CREATE TABLE src ({PG_DDL})")
    pg.execute(f"INSERT INTO src VALUES ({GOOD_PG}), ('9999-12-31', '9999-12-31 23:59:59.999999', "
               "'1582-10-04 23:59:59+00', '00:00:00', 0, 0, NULL, 0), (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)")
    run = lambda sql: pg.execute(sql).fetchone()  # noqa: E731
    types = outcome(run, "postgresql", list(PG_COLUMNS.values()), '"src"')
    assert types == {"n": "DECIMAL(38, 21)", "wide": "DECIMAL(38, 10)"}  # fine: all NULL; ok: Spark's own type
    assert probe_queries("postgresql", [PG_COLUMNS["ok"]], '"src"') is None  # nothing to look at: no extra scan


@pytest.mark.postgres
@pytest.mark.parametrize("column, value, shown", [
    ("d", "'infinity'", "infinity"), ("d", "'-infinity'", "-infinity"), ("d", "'0001-01-01 BC'", "0001-01-01 BC"),
    ("d", "'10000-01-01'", "10000-01-01"), ("d", "'1582-10-10'", "1582-10-10"),
    ("t", "'infinity'", "infinity"), ("t", "'1582-10-14 23:59:59'", "1582-10-14 23:59:59"),
    ("z", "'0001-01-01 00:00:00+01'", "0001-12-31 23:00:00+00 BC"), ("z", "'1582-10-05 00:00:00+00'", "1582-10-05"),
    ("tm", "'10:00:00.000001'", "10:00:00.000001"),
    ("n", "'NaN'", "NaN"), ("n", "'Infinity'", "Infinity"), ("n", "1e38", "39 digits before the point"),
    ("n", "0.1234567890123456789012345678901234567", "37 after it"),
    ("wide", "123456789012345678901234567890.5", "30 digits before the point and 10 after"),
    ("fine", "0.5", "0 digits before the point and 45 after"),
])
def test_postgresql_values_spark_would_change_are_refused_by_column(pg: psycopg.Connection, column: str, value: str,
                                                                    shown: str) -> None:
    pg.execute(f"CREATE TABLE src ({PG_DDL})")
    pg.execute(f"INSERT INTO src VALUES ({GOOD_PG})")
    pg.execute(f"INSERT INTO src ({column}) VALUES ({value})")
    pg.execute("INSERT INTO src (n) VALUES (1.5)")
    with pytest.raises(Unrepresentable) as info:
        outcome(lambda sql: pg.execute(sql).fetchone(), "postgresql", list(PG_COLUMNS.values()),
                "(SELECT * FROM src) corral_q")  # a --query source
    assert f"column {column!r}" in str(info.value) and shown in str(info.value), info.value


MY_COLUMNS = [Column("d", DATE, "DATE", 10, 0), Column("t", TIMESTAMP, "DATETIME", 26, 6),
              Column("z", TIMESTAMP, "TIMESTAMP", 26, 6), Column("tm", TIME, "TIME", 15, 6),
              Column("wide", DECIMAL, "DECIMAL", 65, 30), Column("ok", DECIMAL, "DECIMAL", 12, 2)]


@pytest.mark.mariadb
@pytest.mark.parametrize("column, value, shown", [
    ("d", "'0000-00-00'", "0000-00-00"), ("d", "'0000-01-01'", "0000-01-01"), ("d", "'1582-10-10'", "1582-10-10"),
    ("t", "'0000-12-31 23:59:59'", "0000-12-31 23:59:59"), ("t", "'0000-00-00 00:00:00'", "0000-00-00 00:00:00"),
    ("tm", "'24:00:00'", "24:00:00"),
    ("tm", "'-01:00:00'", "-01:00:00"), ("tm", "'01:00:00.000100'", "01:00:00.000100"),
    ("wide", "123456789.5", "9 digits before the point and 30 after"),
])
def test_mariadb_values_spark_would_change_are_refused_by_column(mariadb_server: MariaDBServer, column: str,
                                                                 value: str, shown: str) -> None:
    database = mariadb_server.create_database()
    with mariadb_server.connect(database) as conn, conn.cursor() as cur:
        cur.execute("SET sql_mode = ''")  # the server's zero dates: what an old application may hold
        cur.execute("CREATE TABLE src (d DATE, t DATETIME(6), z TIMESTAMP(6) NULL, tm TIME(6), "
                    "wide DECIMAL(65, 30), ok DECIMAL(12, 2))")
        cur.execute("INSERT INTO src VALUES ('0001-01-01', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07', "
                    "'23:59:59.999', 12345678.123456789012345678901234567891, 1.5), "
                    "(NULL, '1582-10-10 12:00:00', NULL, NULL, NULL, NULL)")  # DATETIME goes as text: no gap

        def run(sql: str) -> Any:
            cur.execute(sql)
            return cur.fetchone()

        assert outcome(run, "mysql", MY_COLUMNS, "`src`") == {"wide": "DECIMAL(38, 30)"}
        cur.execute(f"INSERT INTO src ({column}) VALUES ({value})")
        with pytest.raises(Unrepresentable) as info:
            outcome(run, "mysql", MY_COLUMNS, "`src`")
    assert f"column {column!r}" in str(info.value) and shown in str(info.value), info.value


def test_connections_and_jvms_of_the_job_are_in_utc() -> None:
    assert with_utc("-XX:+UseSerialGC -Duser.timezone=America/Los_Angeles").endswith("-Duser.timezone=UTC")
    assert with_utc("") == "-Duser.timezone=UTC"
    mysql = connection_properties("mysql", writing=True)
    assert mysql["connectionTimeZone"] == "UTC" and mysql["forceConnectionTimeZoneToSession"] == "true"
    assert mysql["sessionVariables"] == "sql_mode='TRADITIONAL'" and mysql["tinyInt1isBit"] == "false"
    assert "sessionVariables" not in connection_properties("mysql", writing=False)
    assert connection_properties("postgresql", writing=True) == {}  # pgjdbc takes the JVM's zone, UTC
    assert column_type("mysql", "timestamp_ntz", "DATETIME") == "DATETIME(6)" == MYSQL_TYPES["timestamp_ntz"]
    assert column_type("postgresql", "timestamp_ntz", "TIMESTAMP") == "TIMESTAMP"
    assert column_type("mysql", "decimal", "DECIMAL(38,2)") == "DECIMAL(38,2)"
    # MySQL DATETIME goes through text both ways (Spark's MySQL dialect does not rebase it)
    from corral.jobs.transfer_types import read_as_text, write_as_text

    assert read_as_text("mysql", MY_COLUMNS[1]) and not read_as_text("mysql", MY_COLUMNS[2])
    assert not read_as_text("postgresql", PG_COLUMNS["t"])
    assert write_as_text("mysql", "timestamp_ntz") and not write_as_text("postgresql", "timestamp_ntz")


@pytest.mark.parametrize("stats, expected", [
    ([15, 10, 5, 1], "DOUBLE"),  # 15 significant digits survive a double, exponents too
    ([16, 10, 6, 0], "DECIMAL(38, 6)"),  # longer, plain decimals: exact as DECIMAL
    ([38, 20, 18, 0], "DECIMAL(38, 18)"),
    ([None, None, None, 0], "DOUBLE"),  # no values
])
def test_inferred_csv_doubles_are_kept_only_when_exact(stats: list[Any], expected: str) -> None:
    from corral.jobs.transfer_types import csv_number_type

    assert csv_number_type("amount", stats) == expected


@pytest.mark.parametrize("stats", [[16, 10, 6, 1], [39, 21, 18, 0]])
def test_inferred_csv_numbers_no_type_holds_are_refused(stats: list[Any]) -> None:
    from corral.jobs.transfer_types import csv_number_type

    with pytest.raises(Unrepresentable, match="column 'amount' holds numbers of"):
        csv_number_type("amount", stats)
