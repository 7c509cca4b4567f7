"""``corral step add|list|describe|cancel|logs``."""

from __future__ import annotations

import os
import sys
import time
from contextlib import nullcontext
from typing import Any, Optional

import typer
from rich.markup import escape

from corral.cli.client import Client
from corral.cli.outcome import finish, step_succeeded
from corral.cli.paging import list_all, log_pages
from corral.cli.ship import ship_step
from corral.cli.render import Output, console, duration, print_json, styled, table, when
from corral.domain.spec import MAX_STEP_TIMEOUT_SECONDS
from corral.domain.states import ActionOnFailure, StepState, StepType

app = typer.Typer(help="Add, follow and cancel steps.", no_args_is_help=True)
OutputOpt = typer.Option(Output.table, "--output", "-o", help="table or json")
TimeoutOpt = typer.Option(None, "--timeout", metavar="SECONDS", min=1, max=MAX_STEP_TIMEOUT_SECONDS,
                          help="Cancel the step and fail it (reason TIMEOUT) once it has run this long.")
FINAL = {s.value for s in StepState if s.is_terminal()}


def wait_step(client: Client, cluster_id: str, step_id: str, show: bool = True) -> dict[str, Any]:
    started = time.monotonic()
    with console.status(f"step {step_id}") if show else nullcontext() as status:
        while True:
            step = client.get(f"/clusters/{cluster_id}/steps/{step_id}")
            if status is not None:
                # A RUNNING step's state message says what it waits for (e.g. YARN containers).
                waiting = f": {step['state_message']}" if step["status"] == "RUNNING" and step.get("state_message") else ""
                status.update(f"step {step_id} '{step['name']}' {styled(step['status'])} "
                              f"{time.monotonic() - started:.0f}s" + escape(waiting))
            if step["status"] in FINAL:
                return step
            time.sleep(0.5)


@app.command()
def add(
    cluster_id: str,
    args: list[str] = typer.Argument(None, help="After --: spark-submit arguments (SPARK), JAR [MAIN_CLASS] ARGS (HADOOP_JAR), streaming options (STREAMING), a query or .sql file (SPARK_SQL, HIVE) or a command (SHELL)."),
    type_: StepType = typer.Option(..., "--type", "-t", case_sensitive=False, help="spark, hadoop_jar, streaming, spark_sql, hive, shell, data_import or data_export"),
    name: Optional[str] = typer.Option(None, "--name"),
    action_on_failure: ActionOnFailure = typer.Option(ActionOnFailure.CONTINUE, "--action-on-failure", case_sensitive=False),
    wait: bool = typer.Option(False, "--wait", help="Wait for the step; exit 1 unless it COMPLETED."),
    timeout: Optional[int] = TimeoutOpt,
    output: Output = OutputOpt,
) -> None:
    """Queue a step on a cluster."""
    client = Client()
    # Local files are uploaded from here: the server may be on another machine.
    request = ship_step(client.http, {"type": type_.value, "name": name, "args": args or [],
                                      "action_on_failure": action_on_failure.value,
                                      **({"timeout": timeout} if timeout is not None else {})})
    body = {"steps": [request]}
    step = client.post(f"/clusters/{cluster_id}/steps", json=body)["steps"][0]
    if wait:
        step = wait_step(client, cluster_id, step["id"], show=output is Output.table)
    finish(step, output, lambda: print_step_outcome(step), ok=step_succeeded(step, waited=wait))


def print_step_outcome(step: dict[str, Any]) -> None:
    console.print(f"step {step['id']} '{step['name']}' {styled(step['status'])}", highlight=False)
    if step["status"] in ("FAILED", "INTERRUPTED") and step.get("state_message"):
        console.print(step["state_message"], markup=False, highlight=False)


@app.command("list")
def list_(cluster_id: str, output: Output = OutputOpt) -> None:
    """List a cluster's steps in queue order."""
    steps = list_all(Client(), f"/clusters/{cluster_id}/steps", key="steps")
    if output is Output.json:
        print_json(steps)
        return
    t = table("id", "name", "type", "status", "on failure", "started", "duration")
    for s in steps:
        t.add_row(s["id"], s["name"], s["type"], styled(s["status"]), s["action_on_failure"], when(s["started_at"]),
                  duration(s["started_at"], s["ended_at"]))
    console.print(t)


@app.command()
def describe(cluster_id: str, step_id: str, output: Output = OutputOpt) -> None:
    """Show one step: arguments, state, times, failure reason."""
    s = Client().get(f"/clusters/{cluster_id}/steps/{step_id}")
    if output is Output.json:
        print_json(s)
        return
    console.print(f"[bold]{s['id']}[/bold] '{s['name']}' {s['type']} {styled(s['status'])}  on failure: {s['action_on_failure']}")
    console.print("  args: " + " ".join(s["args"]), markup=False)
    console.print(f"  created {when(s['created_at'])}  started {when(s['started_at'])}  ended {when(s['ended_at'])}"
                  f"  duration {duration(s['started_at'], s['ended_at'])}  exit code {s['exit_code'] if s['exit_code'] is not None else '-'}")
    if s.get("timeout") is not None:
        console.print(f"  timeout {s['timeout']} s" + (f"  failure code {s['failure_code']}" if s.get("failure_code") else ""),
                      markup=False)
    if s.get("yarn_application_ids"):
        console.print("  YARN applications: " + ", ".join(s["yarn_application_ids"]), markup=False)
    if s.get("spark_application_ids"):
        console.print("  Spark applications: " + ", ".join(s["spark_application_ids"]), markup=False)
    if s.get("cost"):
        console.print("  cost: " + cost_line(s["cost"]["total"]), markup=False)
    if s.get("state_message"):
        console.print(s["state_message"], markup=False, highlight=False)


def cost_line(total: dict[str, Any]) -> str:
    """``3 containers, 1,234 MiB-s (1.2 GiB-h), 456 vcore-s, 12.3 s`` from a step's cost total."""
    memory = total.get("memory_seconds") or 0
    return (f"{total.get('containers', 0)} containers, {memory:,} MiB-s ({memory / 1024 / 3600:.2f} GiB-h), "
            f"{total.get('vcore_seconds', 0):,} vcore-s, {total.get('elapsed_seconds', 0)} s in "
            f"{total.get('applications', 0)} application(s)")


@app.command()
def cancel(cluster_id: str, step_id: str, output: Output = OutputOpt) -> None:
    """Cancel a PENDING or RUNNING step (its driver and application are stopped)."""
    s = Client().post(f"/clusters/{cluster_id}/steps/{step_id}/cancel")  # a step that has ended: 409, exit 2
    finish(s, output, lambda: console.print(f"step {s['id']} {styled(s['status'])}"), ok=True)


def stream_log(client: Client, cluster_id: str, step_id: str, stream: str, follow: bool) -> None:
    """Every page of the log to stdout, as it comes (``paging.log_pages``)."""
    out = sys.stdout.buffer
    try:
        for chunk in log_pages(client, f"/clusters/{cluster_id}/steps/{step_id}/logs/{stream}", follow=follow):
            out.write(chunk)
            out.flush()
    except BrokenPipeError:  # `| head`: stop quietly, and let Python's exit-time flush hit /dev/null
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1)


@app.command()
def logs(cluster_id: str, step_id: str, follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the step ends."),
         stderr: bool = typer.Option(False, "--stderr", help="The step's stderr instead of its stdout.")) -> None:
    """Print a step's stdout (or stderr)."""
    stream_log(Client(), cluster_id, step_id, "stderr" if stderr else "stdout", follow)
