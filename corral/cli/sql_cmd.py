"""``corral sql ID -e QUERY | -f FILE``: run SQL on a cluster's SQL endpoint (the Spark Thrift
Server, HiveServer2 protocol) from this host with PyHive, and print what comes back."""

from __future__ import annotations

import csv
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

import sqlparse
import typer
from pyhive import exc as hive_exc
from pyhive import hive
from thrift.transport.TTransport import TTransportException

from corral.cli.client import ApiError, Client
from corral.cli.render import console, table
from corral.services.hadoop_common import HADOOP_USER

UP = ("WAITING", "RUNNING")


class SqlOutput(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def split_statements(text: str) -> list[str]:
    """The statements of a script, without comments or their trailing ``;`` (Spark refuses it);
    semicolons inside quotes and comments do not split."""
    statements = []
    for raw in sqlparse.split(text):
        stmt = sqlparse.format(raw, strip_comments=True).strip().rstrip(";").strip()
        if stmt:
            statements.append(stmt)
    return statements


def endpoint_of(cluster: dict[str, Any]) -> tuple[str, int, str]:
    """(host, port, database) of the cluster's SQL endpoint, or a one-line reason there is none."""
    url = cluster.get("endpoints", {}).get("sql")
    if url is None:
        if cluster["status"] not in UP:
            raise ApiError(409, f"cluster {cluster['id']} is {cluster['status']}; its SQL endpoint is up in WAITING or RUNNING")
        raise ApiError(409, f"cluster {cluster['id']} has no SQL endpoint: create it with the hive service")
    parsed = urlparse(url.removeprefix("jdbc:"))
    return parsed.hostname or "", parsed.port or 10000, parsed.path.strip("/") or "default"


# SQLSTATE classes (ISO/IEC 9075, which Spark's error conditions follow) of a statement at
# fault, so bad input (exit 2): 42 "syntax error or access rule violation" (unknown table or
# column, parse errors), 0A "feature not supported". Any other failure (a data exception
# such as a division by zero, a raised error, a failed job) ran and failed (exit 1).
BAD_STATEMENT_CLASSES = ("42", "0A")


def sql_state(error: hive_exc.OperationalError) -> str | None:
    """The SQLSTATE the endpoint gave with the error (HiveServer2's TStatus.sqlState)."""
    response = error.args[0] if error.args else None
    status = getattr(response, "status", None)
    state = getattr(status, "sqlState", None) or getattr(response, "sqlState", None)
    return str(state) if state else None


def statement_error(error: hive_exc.OperationalError, where: str) -> Exception:
    """The endpoint's refusal as the CLI's errors: ApiError (the statement's fault, exit 2)
    or RuntimeError (it ran and failed, exit 1), with the message's first line."""
    state = sql_state(error)
    message = f"{where}{first_line(error)}"
    if state is not None and state[:2] in BAD_STATEMENT_CLASSES:
        return ApiError(400, message)
    return RuntimeError(message + (f" (SQLSTATE {state})" if state else ""))


def first_line(error: Exception) -> str:
    """Spark's message without its stack trace: the server puts both in one string."""
    message = str(error)
    if isinstance(error, hive_exc.OperationalError) and error.args:
        status = getattr(error.args[0], "status", None)
        message = getattr(status, "errorMessage", None) or message
    return next((line.strip() for line in message.splitlines() if line.strip()), type(error).__name__)


class ResultSet:
    def __init__(self, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.columns, self.rows = columns, rows


def run_statements(host: str, port: int, database: str, statements: list[str]) -> Iterator[ResultSet]:
    """Run the statements in order on one session; yield the rows of each one that returns rows."""
    try:
        conn = hive.connect(host=host, port=port, username=HADOOP_USER, database=database)
    except (TTransportException, OSError) as exc:
        raise RuntimeError(f"cannot reach the SQL endpoint at {host}:{port}: {exc}") from exc
    try:
        cursor = conn.cursor()
        for i, stmt in enumerate(statements, 1):
            where = f"statement {i}: " if len(statements) > 1 else ""
            try:
                cursor.execute(stmt)
                if cursor.description is None:
                    continue
                columns = [d[0].split(".", 1)[-1] for d in cursor.description]
                rows = cursor.fetchall()
                # The Spark Thrift Server answers DDL with an empty one-column "Result": noise
                # between statements; the last statement's result is always shown.
                if rows or i == len(statements):
                    yield ResultSet(columns, rows)
            except hive_exc.OperationalError as exc:
                raise statement_error(exc, where) from exc
            except (TTransportException, OSError) as exc:
                raise RuntimeError(f"{where}the SQL endpoint at {host}:{port} dropped the connection: {exc}") from exc
    finally:
        try:
            conn.close()
        except (TTransportException, OSError):
            pass


def _cell(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def print_result(result: ResultSet, output: SqlOutput) -> None:
    if output is SqlOutput.json:
        print(json.dumps([dict(zip(result.columns, map(_cell, row))) for row in result.rows], default=str))
    elif output is SqlOutput.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([["" if v is None else _cell(v) for v in row] for row in result.rows])
    else:
        t = table(*result.columns)
        for row in result.rows:
            t.add_row(*("NULL" if v is None else str(v) for v in row))
        console.print(t)
        console.print(f"{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}", style="dim")


def sql(cluster_id: str = typer.Argument(..., help="The cluster whose SQL endpoint to use."),
        execute: str | None = typer.Option(None, "--execute", "-e", help="SQL to run (several statements: ;-separated)."),
        file: Path | None = typer.Option(None, "--file", "-f", help="A .sql file to run.", dir_okay=False),
        database: str | None = typer.Option(None, "--database", "-d", help="Database to start in (default: default)."),
        output: SqlOutput = typer.Option(SqlOutput.table, "--output", "-o", help="table, json (one array per result) or csv.")
        ) -> None:
    """Run SQL on the cluster's SQL endpoint (Spark Thrift Server) and print the results."""
    if (execute is None) == (file is None):
        raise typer.BadParameter("give exactly one of -e QUERY or -f FILE")
    if file is not None:
        try:
            text = file.read_text()
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {file}: {exc.strerror}", param_hint="'--file'") from exc
    else:
        text = execute or ""
    statements = split_statements(text)
    if not statements:
        raise typer.BadParameter("no SQL statement to run")
    host, port, default_db = endpoint_of(Client().get(f"/clusters/{cluster_id}"))
    for i, result in enumerate(run_statements(host, port, database or default_db, statements)):
        if i and output is not SqlOutput.json:
            print()
        print_result(result, output)
