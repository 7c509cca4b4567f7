"""``corral data import|export``: move data between a cluster and object storage or a
database. Each runs as a step (logs, cancel, ActionOnFailure like any other)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import typer

from corral.cli.client import Client
from corral.cli.outcome import finish, step_succeeded
from corral.cli.render import Output
from corral.cli.step_cmd import TimeoutOpt, print_step_outcome, wait_step
from corral.domain.states import ActionOnFailure

app = typer.Typer(help="Import data into a cluster (HDFS, Hive) or export it (to s3a:// or a database).",
                  no_args_is_help=True)
PASSWORD_ENV = "CORRAL_DB_PASSWORD"


def read_password(password_file: Path | None, user: str | None) -> str | None:
    """From --password-file, else $CORRAL_DB_PASSWORD, else a hidden prompt (a TTY only):
    never from an option, which other users could read in the process list."""
    if password_file is not None:
        try:
            return password_file.read_text().rstrip("\n")
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {password_file}: {exc.strerror}", param_hint="'--password-file'") from exc
    if PASSWORD_ENV in os.environ:
        return os.environ[PASSWORD_ENV]
    if user is not None and os.isatty(0):
        return str(typer.prompt(f"password for {user}", hide_input=True))
    return None


def _transfer(direction: str, cluster_id: str, body: dict[str, Any], wait: bool, output: Output) -> None:
    client = Client()
    step = client.post(f"/clusters/{cluster_id}/data/{direction}s", json={k: v for k, v in body.items() if v is not None})
    if wait:
        step = wait_step(client, cluster_id, step["id"], show=output is Output.table)
    finish(step, output, lambda: print_step_outcome(step), ok=step_succeeded(step, waited=wait))


def _command(direction: str) -> Any:
    sources = "s3a://bucket/path or jdbc:postgresql://host/db" if direction == "import" else "hive:[db.]table or an HDFS path"
    targets = "hive:[db.]table or an HDFS path" if direction == "import" else "s3a://bucket/path or jdbc:mysql://host/db"

    def command(
        cluster_id: str = typer.Argument(..., help="The cluster."),
        source: str = typer.Option(..., "--from", help=sources),
        target: str = typer.Option(..., "--to", help=targets),
        format_: Optional[str] = typer.Option(None, "--format", help="csv, json or parquet: the files' format"),
        mode: str = typer.Option("error", "--mode", help="error (target must not exist), append or overwrite"),
        table: Optional[str] = typer.Option(None, "--table", help="database table, exactly as named: Sales, "
                                            "schema.Sales, 'public.\"my.table\"' (quote a part holding . or quotes)"),
        query: Optional[str] = typer.Option(None, "--query", help="database query (a source only)"),
        user: Optional[str] = typer.Option(None, "--user", help="database user"),
        password_file: Optional[Path] = typer.Option(None, "--password-file", dir_okay=False,
                                                     help=f"file holding the database password (or ${PASSWORD_ENV})"),
        partition_column: Optional[str] = typer.Option(None, "--partition-column",
                                                       help="numeric column to split reads on (its exact name)"),
        num_partitions: Optional[int] = typer.Option(None, "--num-partitions", help="parallel database reads"),
        lower_bound: Optional[int] = typer.Option(None, "--lower-bound"),
        upper_bound: Optional[int] = typer.Option(None, "--upper-bound"),
        header: bool = typer.Option(True, "--header/--no-header", help="CSV files have a header line"),
        delimiter: str = typer.Option(",", "--delimiter", help="CSV field delimiter"),
        schema: Optional[str] = typer.Option(None, "--schema", help="DDL schema of CSV/JSON files, e.g. 'id INT, name STRING'"),
        name: Optional[str] = typer.Option(None, "--name"),
        action_on_failure: ActionOnFailure = typer.Option(ActionOnFailure.CONTINUE, "--action-on-failure",
                                                          case_sensitive=False),
        wait: bool = typer.Option(False, "--wait", help="Wait for the step; exit 1 unless it COMPLETED."),
        timeout: Optional[int] = TimeoutOpt,
        output: Output = typer.Option(Output.table, "--output", "-o", help="table or json"),
    ) -> None:
        password = read_password(password_file, user)
        body = {"from": source, "to": target, "format": format_, "mode": mode, "table": table, "query": query,
                "user": user, "password": password, "partition_column": partition_column,
                "num_partitions": num_partitions, "lower_bound": lower_bound, "upper_bound": upper_bound,
                "header": header, "delimiter": delimiter, "schema": schema, "name": name,
                "action_on_failure": action_on_failure.value, "timeout": timeout}
        _transfer(direction, cluster_id, body, wait, output)

    command.__doc__ = ("Import into the cluster from object storage or a database."
                       if direction == "import" else "Export from the cluster to object storage or a database.")
    return command


app.command("import")(_command("import"))
app.command("export")(_command("export"))
