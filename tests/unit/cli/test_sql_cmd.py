"""``corral sql``: statement splitting, finding the endpoint, printing results and input errors.
The client against a real Spark Thrift Server is tested in tests/integration/test_hive.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from corral.cli.client import ApiError
from corral.cli.main import main
from corral.cli.sql_cmd import ResultSet, SqlOutput, endpoint_of, print_result, split_statements


def test_split_statements_keeps_quoted_semicolons_and_drops_comments() -> None:
    script = """-- a heading comment; with a semicolon
CREATE TABLE t (a STRING);
INSERT INTO t VALUES ('x;y'), ("z;");  /* trailing; comment */
SELECT a FROM t
;;
"""
    assert split_statements(script) == ["CREATE TABLE t (a STRING)", "INSERT INTO t VALUES ('x;y'), (\"z;\")",
                                        "SELECT a FROM t"]
    assert split_statements(" ; -- nothing\n") == []


def test_endpoint_of_reads_the_jdbc_url_or_says_why_there_is_none() -> None:
    up = {"id": "c-1", "status": "WAITING", "endpoints": {"sql": "jdbc:hive2://127.9.0.2:10000/default"}}
    assert endpoint_of(up) == ("127.9.0.2", 10000, "default")
    with pytest.raises(ApiError, match="no SQL endpoint: create it with the hive service"):
        endpoint_of({"id": "c-1", "status": "WAITING", "endpoints": {"hdfs": "hdfs://127.9.0.2:8020"}})
    with pytest.raises(ApiError, match="is STARTING"):
        endpoint_of({"id": "c-1", "status": "STARTING", "endpoints": {}})


def test_print_result_as_json_and_csv(capsys: pytest.CaptureFixture[str]) -> None:
    from decimal import Decimal

    result = ResultSet(["city", "total", "note"], [("Oslo", Decimal("12.50"), None), ("Bergen, NO", 3, "a\"b")])
    print_result(result, SqlOutput.json)
    assert json.loads(capsys.readouterr().out) == [{"city": "Oslo", "total": "12.50", "note": None},
                                                   {"city": "Bergen, NO", "total": 3, "note": "a\"b"}]
    print_result(result, SqlOutput.csv)
    assert capsys.readouterr().out == 'city,total,note\nOslo,12.50,\n"Bergen, NO",3,"a""b"\n'


@pytest.mark.parametrize("argv, message", [
    (["sql", "c-1"], "give exactly one of -e QUERY or -f FILE"),
    (["sql", "c-1", "-e", "select 1", "-f", "x.sql"], "give exactly one of -e QUERY or -f FILE"),
    (["sql", "c-1", "-e", "-- only a comment"], "no SQL statement to run"),
    (["sql", "c-1", "-f", "/nonexistent/q.sql"], "cannot read /nonexistent/q.sql"),
    (["sql", "c-1", "-e", "select 1", "-o", "xml"], "xml"),
])
def test_bad_input_exits_2_with_one_line(argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "argv", ["corral", *argv])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert len(err.splitlines()) == 1 and message in err


@pytest.mark.parametrize("sql_state, bad_input", [
    ("42P01", True),  # TABLE_OR_VIEW_NOT_FOUND
    ("42601", True),  # PARSE_SYNTAX_ERROR
    ("0A000", True),  # feature not supported
    ("P0001", False),  # raise_error(): it ran and failed
    ("22012", False),  # DIVIDE_BY_ZERO under ANSI mode: the data, at run time
    (None, False),  # no SQLSTATE: nothing says the statement was at fault
])
def test_endpoint_errors_are_bad_input_only_for_the_statements_own_fault(sql_state: str | None, bad_input: bool) -> None:
    from pyhive import exc as hive_exc
    from TCLIService import ttypes

    from corral.cli.sql_cmd import statement_error

    status = ttypes.TStatus(statusCode=ttypes.TStatusCode.ERROR_STATUS, sqlState=sql_state,
                            errorMessage="[SOME_CONDITION] what went wrong\n\tat org.apache.spark.Frame")
    error = statement_error(hive_exc.OperationalError(ttypes.TExecuteStatementResp(status=status)), "statement 2: ")
    assert isinstance(error, ApiError) is bad_input and isinstance(error, RuntimeError) is not bad_input
    assert str(error).startswith("statement 2: [SOME_CONDITION] what went wrong")
