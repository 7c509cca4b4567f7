"""Names of tables and columns in transfers: the exact-name rule, quoting per dialect, and
that the quoted SQL addresses exactly the named object in real PostgreSQL and MariaDB."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.domain.sql_names import Name, check_for, parse_name, quote
from corral.domain.transfer_request import DataTransferRequest
from corral.jobs.transfer import TransferStep, parse
from tests.mariadb import MariaDBServer

PG_URL, MY_URL = "jdbc:postgresql://db/shop", "jdbc:mysql://db/shop"


@pytest.mark.parametrize("written, parts", [
    ("Sales", ("Sales",)),  # exact: case is kept, never folded
    ("sales", ("sales",)),
    ('"Sales"', ("Sales",)),
    ("`Sales`", ("Sales",)),
    ('public."Sales"', ("public", "Sales")),
    ("public.Sales", ("public", "Sales")),
    ('"my schema"."my.table"', ("my schema", "my.table")),
    ('"say ""hi"""', ('say "hi"',)),
    ("`a``b`", ("a`b",)),
    ("`a\"b`", ('a"b',)),
    ("order", ("order",)),  # reserved words are names like any other
    ("Straße_2024", ("Straße_2024",)),
    ("my table", ("my table",)),
    ("t; DROP TABLE x", ("t; DROP TABLE x",)),  # a legal name: quoted, it is only a name
])
def test_the_exact_name_rule(written: str, parts: tuple[str, ...]) -> None:
    assert parse_name(written) == Name(parts)


@pytest.mark.parametrize("written, message", [
    ("", "an empty name"),
    ("a.", "an empty name"),
    (".a", "an empty name"),
    ('""', "an empty name"),
    ('"Sales', 'unterminated "..."'),
    ('Sa"les', "a quote inside an unquoted name"),
    ('"a"b', "expected . after a quoted part"),
    (" sales", "leading or trailing spaces"),
    ("a.b.c", "got 3 parts"),
    ("a\0b", "NUL"),
])
def test_what_is_not_a_name(written: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_name(written)
    assert message in str(info.value)


def test_quoting_per_dialect_doubles_the_quote() -> None:
    assert quote('a"b', "postgresql") == '"a""b"' and quote("a`b", "postgresql") == '"a`b"'
    assert quote("a`b", "mysql") == "`a``b`" and quote('a"b', "mysql") == '`a"b`'
    assert quote("a`b", "spark") == "`a``b`"
    assert Name(("public", "Sales")).sql("postgresql") == '"public"."Sales"'
    assert Name(("shop", "Sales")).sql("mysql") == "`shop`.`Sales`"
    assert Name(("s", "t")).sibling("corral_staging_1") == Name(("s", "corral_staging_1"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.characters(exclude_characters="\0"), min_size=1, max_size=12), min_size=1, max_size=2))
def test_any_name_survives_the_notation(parts: list[str]) -> None:
    name = Name(tuple(parts))
    assert parse_name(str(name)) == name


@pytest.mark.parametrize("dialect, part, message", [
    ("postgresql", "é" * 32, "longer than PostgreSQL's 63 bytes"),
    ("mysql", "x" * 65, "longer than MySQL's 64 characters"),
    ("mysql", "sales ", "cannot end with a space"),
    ("mysql", "sales😀", "Basic Multilingual Plane"),
    ("spark", "bad-name", "letters, digits and _"),
    ("spark", "été", "letters, digits and _"),
])
def test_what_a_database_cannot_hold_is_refused(dialect: Any, part: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_for(Name((part,)), dialect)
    assert message in str(info.value)
    check_for(Name(("x" * 63,)), "postgresql")
    check_for(Name(("Sales 😀", "é" * 31)), "postgresql")
    check_for(Name(("Sales é", "x" * 64)), "mysql")
    check_for(Name(("2024_Sales",)), "spark")


def test_transfers_take_exact_names_and_refuse_only_what_the_database_cannot_hold() -> None:
    t = parse("import", ["--from", PG_URL, "--table", 'public."Sales"', "--user", "u", "--to", "hive:s",
                         "--partition-column", '"Id"', "--num-partitions", "2"])
    assert t.table_name.sql("postgresql") == '"public"."Sales"' and t.partition_name == "Id"
    assert parse("import", ["--from", PG_URL, "--table", "Sales", "--user", "u", "--to", "hive:s"]).table_name == Name(("Sales",))
    assert parse("export", ["--from", "hive:Shop.Totals", "--to", MY_URL, "--table", "Export Target", "--user", "u"]
                 ).source_hive.sql("spark") == "`Shop`.`Totals`"
    for args, message in [
        (["--from", PG_URL, "--table", "a.b.c", "--user", "u", "--to", "hive:s"], "--table: 'a.b.c': expected a name"),
        (["--from", MY_URL, "--table", "sales😀", "--user", "u", "--to", "hive:s"], "--table: 'sales😀': MySQL"),
        (["--from", PG_URL, "--table", "t", "--user", "u", "--to", "hive:s", "--partition-column", "a.b",
          "--num-partitions", "2"], "--partition-column: 'a.b': expected a name,"),
        (["--from", PG_URL, "--table", "t", "--user", "u", "--to", "hive:bad-name"], "expected hive:table"),
    ]:
        with pytest.raises(ValueError) as info:
            parse("import", args)
        assert message in str(info.value), info.value
        _, errors = TransferStep("import").check(args)
        assert message in errors[0].msg
    req = DataTransferRequest.model_validate({"from": PG_URL, "to": "hive:s", "table": 'public."Sa les', "user": "u"})
    try:
        parse("import", req.to_args())
    except ValueError as exc:
        assert req.field_for(str(exc)) == "table"
    else:
        raise AssertionError("an unterminated quote was accepted")


# -- the quoted names against the real databases ---------------------------------------------------

NAMES = [Name(("Sales",)), Name(("sales",)), Name(("SALES",)), Name(("order",)), Name(("my table",)),
         Name(('say "hi"',)), Name(("a`b",)), Name(("Straße",)), Name(("t; DROP TABLE x",))]


@pytest.mark.postgres
def test_quoted_names_address_exactly_their_table_in_postgresql(pg: psycopg.Connection) -> None:
    pg.execute('CREATE SCHEMA "Shop"')
    for rows, name in enumerate([*NAMES, Name(("Shop", "Sales")), Name(("Shop", "x😀"))], start=1):
        pg.execute(f"CREATE TABLE {name.sql('postgresql')} ({quote('Id', 'postgresql')} int, id int)")
        pg.execute(f"INSERT INTO {name.sql('postgresql')} SELECT g, -g FROM generate_series(1, {rows}) g")
    for rows, name in enumerate([*NAMES, Name(("Shop", "Sales")), Name(("Shop", "x😀"))], start=1):
        got = pg.execute(f"SELECT COUNT(*), MAX({quote('Id', 'postgresql')}) FROM {name.sql('postgresql')}").fetchone()
        assert got == (rows, rows), name
    tables = {r[0] for r in pg.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
    assert tables == {n.object for n in NAMES}


@pytest.mark.mariadb
def test_quoted_names_address_exactly_their_table_in_mariadb(mariadb_server: MariaDBServer) -> None:
    database = mariadb_server.create_database()
    names = [*NAMES, Name((database, "Qualified"))]
    with mariadb_server.connect(database) as conn, conn.cursor() as cur:
        for rows, name in enumerate(names, start=1):
            cur.execute(f"CREATE TABLE {name.sql('mysql')} ({quote('Id', 'mysql')} int)")
            cur.execute(f"INSERT INTO {name.sql('mysql')} SELECT seq FROM seq_1_to_{rows}")
        for rows, name in enumerate(names, start=1):
            cur.execute(f"SELECT COUNT(*) FROM {name.sql('mysql')}")
            assert cur.fetchone() == (rows,), name
        cur.execute("SELECT BINARY table_name FROM information_schema.tables WHERE table_schema = DATABASE()")
        assert {r[0].decode() for r in cur.fetchall()} == {n.object for n in names}


def test_the_api_takes_exact_names_and_points_at_the_field(cp: Any) -> None:
    from corral.control import clusters, transfers
    from corral.errors import ValidationFailed
    from corral.store.models import Step
    from tests.unit.helpers import count_rows, make_spec

    cluster, _ = clusters.create_cluster(cp, make_spec(services=["hdfs", "spark", "hive"]))
    body = {"from": PG_URL, "to": "hive:s", "user": "u", "password": "pw-1"}
    step = transfers.add_transfer(cp, cluster.id, "import", DataTransferRequest.model_validate(
        {**body, "table": 'public."Sales"', "partition_column": "Id", "num_partitions": 2}))
    assert step.args[step.args.index("--table") + 1] == 'public."Sales"'  # the job reads exactly this name
    for fields, loc in [({"table": "a.b.c"}, "table"), ({"table": '"Sales'}, "table"),
                        ({"table": "t", "partition_column": "a.b", "num_partitions": 2}, "partition_column"),
                        ({"table": "t", "to": "hive:bad-name"}, "target")]:
        with pytest.raises(ValidationFailed) as info:
            transfers.add_transfer(cp, cluster.id, "import", DataTransferRequest.model_validate({**body, **fields}))
        assert [e.loc for e in info.value.errors] == [(loc,)], info.value
    assert count_rows(cp.store, Step) == 1  # the refused ones added nothing
