"""Source tables of test_data's exact-name and type-fidelity round trips.

A database holds two tables whose names differ only in case: ``Sales`` (3 rows, one column
per type with edge values, a mixed-case ``Id`` and a reserved-word ``Order`` column) and
``sales`` (1 row, other columns): a transfer that folds or fails to quote a name reads the
wrong one. A round trip (import into Hive, export back into a new table) must give back
every cell exactly as the database itself renders it.
"""

from __future__ import annotations

from typing import Any

import psycopg

ALL_BYTES = bytes(range(256))
# Text that CSV, JSON, SQL literals and shells each find hard, and characters outside the BMP.
ODD_TEXT = "😀 'single' \"double\" `back` \\ backslash\ttab\nnewline\rcr é 中文 NUL-free"

# PostgreSQL: timestamp in the DST gap of America/Los_Angeles (the input), a
# timestamptz in year 1 (the 422 s), the ambiguous fall-back hour, leap day, years
# 1 and 9999, numeric at full precision and negative, an unconstrained numeric with 23
# decimals, doubles, every byte, empty vs NULL text.
PG_DDL = ('CREATE TABLE "Sales" ("Id" int PRIMARY KEY, t timestamp, z timestamptz, d date, n numeric(38, 10), '
          'u numeric, f double precision, b bytea, s text, "Order" text)')
PG_ROWS: list[tuple[Any, ...]] = [
    (1, "2024-03-10 02:30:00", "0001-01-01 00:00:00+00", "2024-02-29", "-9999999999999999999999999999.9999999999",
     "1.12345678901234567890123", "0.1", ALL_BYTES, "", "a"),
    (2, "0001-01-01 00:00:00", "2024-11-03 01:30:00-07", "0001-01-01", "0", "-5", "-1.5e-300", b"", None, "b"),
    (3, "9999-12-31 23:59:59.999999", "9999-12-31 23:59:59.999999+00", "9999-12-31",
     "1234567890123456789012345678.0123456789", None, "NaN", None, ODD_TEXT, "c"),
]
# Every cell as PostgreSQL renders it. u, unconstrained, comes back as numeric(38, 23)
# (Spark's DECIMAL has a fixed scale), so it is compared by value below.
PG_CELLS = ('SELECT "Id", t::text, z::text, d::text, n::text, f::text, encode(b, \'hex\'), s, "Order" '
            'FROM {table} ORDER BY "Id"')
PG_TYPES = ("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
            "AND column_name <> 'u' ORDER BY ordinal_position")


def create_pg_tables(conn: psycopg.Connection) -> None:
    conn.execute(PG_DDL)
    for row in PG_ROWS:
        conn.execute('INSERT INTO "Sales" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)', row)
    conn.execute('CREATE TABLE sales ("Id" int, note text)')
    conn.execute("INSERT INTO sales VALUES (1, 'the other table')")


def pg_round_trip_differences(conn: psycopg.Connection, copy: str) -> list[Any]:
    """Rows whose rendering differs between "Sales" and ``copy`` (quoted), plus the column
    types that differ: empty when the copy is exact."""
    original, back = (conn.execute(PG_CELLS.format(table=t)).fetchall() for t in ('"Sales"', copy))
    differences: list[Any] = [(a, b) for a, b in zip(original, back) if a != b]
    if len(original) != len(back):
        differences.append(("rows", len(original), len(back)))
    unequal = conn.execute(f'SELECT "Id" FROM "Sales" a FULL JOIN {copy} c USING ("Id") '
                           "WHERE a.u IS DISTINCT FROM c.u").fetchall()
    differences += [("u", r) for r in unequal]
    name = copy.strip('"')
    types = conn.execute(PG_TYPES, ("Sales",)).fetchall(), conn.execute(PG_TYPES, (name,)).fetchall()
    if types[0] != types[1]:
        differences.append(types)
    return differences


# MariaDB: DATETIME in the DST gap, TIMESTAMP at both ends of its range, DECIMAL(65, 30)
# (wider than Spark's 38), DATE years 1 and 9999, every byte, empty vs NULL, 4-byte UTF-8.
MY_DDL = ("CREATE TABLE `Sales` (`Id` INT PRIMARY KEY, t DATETIME(6), z TIMESTAMP(6) NULL, d DATE, "
          "n DECIMAL(38, 10), w DECIMAL(65, 30), f DOUBLE, b LONGBLOB, s LONGTEXT, `Order` VARCHAR(10)) CHARSET utf8mb4")
MY_ROWS: list[tuple[Any, ...]] = [
    (1, "2024-03-10 02:30:00", "1970-01-01 00:00:01", "2024-02-29", "-9999999999999999999999999999.9999999999",
     "12345678.123456789012345678901234567890", 0.1, ALL_BYTES, "", "a"),
    (2, "0001-01-01 00:00:00", "2024-11-03 08:30:00.5", "0001-01-01", "0", "0", -1.5e-300, b"", None, "b"),
    (3, "9999-12-31 23:59:59.999999", "2038-01-19 03:14:07.999999", "9999-12-31",
     "1234567890123456789012345678.0123456789", None, None, None, ODD_TEXT, "c"),
]
MY_CELLS = ("SELECT `Id`, CAST(t AS CHAR), CAST(z AS CHAR), CAST(d AS CHAR), CAST(n AS CHAR), CAST(w AS CHAR), "
            "CAST(f AS CHAR), HEX(b), s, `Order` FROM {table} ORDER BY `Id`")
MY_TYPES = ("SELECT column_name, column_type FROM information_schema.columns WHERE table_schema = DATABASE() "
            "AND BINARY table_name = %s AND column_name NOT IN ('Id', 'Order', 's', 'b') ORDER BY ordinal_position")


def create_mariadb_tables(cur: Any) -> None:
    cur.execute("SET time_zone = '+00:00'")
    cur.execute(MY_DDL)
    cur.executemany("INSERT INTO `Sales` VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", MY_ROWS)
    cur.execute("CREATE TABLE sales (`Id` INT, note TEXT)")
    cur.execute("INSERT INTO sales VALUES (1, 'the other table')")


def mariadb_round_trip_differences(cur: Any, copy: str) -> list[Any]:
    cur.execute("SET time_zone = '+00:00'")
    rendered = []
    for table in ("`Sales`", copy):
        cur.execute(MY_CELLS.format(table=table))
        rendered.append(list(cur.fetchall()))
    differences: list[Any] = [(a, b) for a, b in zip(*rendered) if a != b]
    if len(rendered[0]) != len(rendered[1]):
        differences.append(("rows", len(rendered[0]), len(rendered[1])))
    types = []
    for name in ("Sales", copy.strip("`")):
        cur.execute(MY_TYPES, (name,))
        types.append(list(cur.fetchall()))
    # the copy's types hold every value: DATETIME(6)/TIMESTAMP(6) keep microseconds;
    # DECIMAL(65, 30) arrives as DECIMAL(38, 30), Spark's widest, which held these values
    expected = [(c, "decimal(38,30)" if c == "w" else t) for c, t in types[0]]
    if types[1] != expected:
        differences.append(types)
    return differences
