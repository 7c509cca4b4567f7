"""``corral cluster resize`` and ``corral group add|remove|list``: node groups of a running
cluster (EMR's ModifyInstanceGroups / AddInstanceGroups)."""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Optional

import typer
from rich.live import Live

from corral.cli.client import Client
from corral.cli.outcome import finish
from corral.cli.progress import ENDED, _render
from corral.cli.render import Output, console, styled, table
from corral.cli.specfile import load_spec_file
from corral.hosts.spec import parse_labels

app = typer.Typer(help="Add, remove and list the node groups of a running cluster.", no_args_is_help=True)
OutputOpt = typer.Option(Output.table, "--output", "-o", help="table or json")


def watch_resize(client: Client, cluster_id: str, group_id: str, show: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Follow the group's latest resize operation until it ends (or the cluster does):
    (the cluster, the operation)."""
    kind = f"RESIZE_GROUP:{group_id}"
    started = time.monotonic()
    with Live(console=console, refresh_per_second=8, transient=False) if show else nullcontext() as live:
        while True:
            cluster = client.get(f"/clusters/{cluster_id}")
            ops = [o for o in client.get(f"/clusters/{cluster_id}/operations") if o["kind"] == kind]
            op = ops[-1] if ops else None
            done = cluster["status"] in ENDED or (op is not None and op["status"] != "RUNNING")
            if live is not None:
                live.update(_render(cluster, op, started, done), refresh=True)
            if done:
                break
            time.sleep(0.5)
    if show and not console.is_terminal:
        console.print()
    return cluster, op


def _show_group(group: dict[str, Any], op: dict[str, Any] | None) -> None:
    console.print(f"Group {group['name']} ({group['role']}) {styled(group['status'])}: "
                  f"{group['running_count']} running, target {group['requested_count']}"
                  + (f", {group['decommissioning_count']} decommissioning" if group.get("decommissioning_count") else ""))
    if op is not None and op["status"] != "RUNNING":
        console.print(f"  resize {op['status']}" + (f": {op['message']}" if op.get("message") else ""),
                      markup=False, highlight=False)
    if group.get("status_reason"):
        console.print(f"  {group['status_reason']}", markup=False, highlight=False)


def _finish_group(client: Client, cluster_id: str, group: dict[str, Any], wait: bool, output: Output) -> None:
    op = None
    if wait:
        _, op = watch_resize(client, cluster_id, group["id"], show=output is Output.table)
        group = next(g for g in client.get(f"/clusters/{cluster_id}/node-groups") if g["id"] == group["id"])
    finish(group, output, lambda: _show_group(group, op), ok=op is None or op["status"] == "SUCCEEDED")


def resize(cluster_id: str,
           group: str = typer.Option(..., "--group", "-g", help="The group's name: CORE, TASK or a TASK group's own."),
           count: int = typer.Option(..., "--count", "-n", help="The group's new node count."),
           decommission_timeout: Optional[int] = typer.Option(None, "--decommission-timeout",
                                                              help="Seconds YARN may drain each leaving node (default 3600)."),
           nodes: list[str] = typer.Option([], "--nodes", help="Exactly which nodes leave (repeatable, or comma-separated)."),
           rebalance: bool = typer.Option(False, "--rebalance", help="Run the HDFS balancer after a CORE scale-out."),
           wait: bool = typer.Option(False, "--wait", help="Show progress until the resize is done."),
           output: Output = OutputOpt) -> None:
    """Resize a CORE or TASK group: new nodes join, leaving ones are decommissioned gracefully."""
    client = Client()
    leaving = [n.strip() for item in nodes for n in item.split(",") if n.strip()]
    body: dict[str, Any] = {"count": count, "nodes": leaving, "rebalance": rebalance}
    if decommission_timeout is not None:
        body["decommission_timeout"] = decommission_timeout
    answer = client.patch(f"/clusters/{cluster_id}/node-groups/{group}", json=body)
    _finish_group(client, cluster_id, answer, wait, output)


@app.command()
def add(cluster_id: str,
        role: str = typer.Option("TASK", "--role", help="Only TASK groups are added to a running cluster."),
        instance_type: str = typer.Option(..., "--instance-type",
                                          help="e.g. local.medium; on ssh a floor, or 'host' (sized from each host)"),
        count: int = typer.Option(..., "--count", "-n"),
        name: Optional[str] = typer.Option(None, "--name", help="Default: TASK, else TASK-2, TASK-3 ..."),
        label: list[str] = typer.Option([], "--label", help="ssh: KEY=VALUE each host must carry, repeatable."),
        wait: bool = typer.Option(False, "--wait", help="Show progress until its nodes are in service."),
        output: Output = OutputOpt) -> None:
    """Add a TASK group to a running cluster."""
    try:
        labels = parse_labels(label)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--label") from None
    client = Client()
    body = {"role": role, "instance_type": instance_type, "count": count, "name": name, "host_labels": labels}
    _finish_group(client, cluster_id, client.post(f"/clusters/{cluster_id}/node-groups", json=body), wait, output)


@app.command()
def remove(cluster_id: str, group: str,
           decommission_timeout: Optional[int] = typer.Option(None, "--decommission-timeout"),
           wait: bool = typer.Option(False, "--wait"), output: Output = OutputOpt) -> None:
    """Remove a TASK group: its nodes are decommissioned gracefully, then released."""
    client = Client()
    params = {"decommission_timeout": decommission_timeout} if decommission_timeout is not None else None
    _finish_group(client, cluster_id, client.delete(f"/clusters/{cluster_id}/node-groups/{group}", params=params),
                  wait, output)


@app.command("list")
def list_(cluster_id: str, output: Output = OutputOpt) -> None:
    """The cluster's node groups with their target and running counts."""
    groups = Client().get(f"/clusters/{cluster_id}/node-groups")

    def show() -> None:
        t = table("group", "role", "instance type", "status", "target", "running", "decommissioning")
        for g in groups:
            t.add_row(g["name"], g["role"], g["instance_type"], styled(g["status"]), str(g["requested_count"]),
                      str(g["running_count"]), str(g.get("decommissioning_count") or 0))
        console.print(t)

    finish(groups, output, show, ok=True)


autoscaling_app = typer.Typer(help="Attach, show and remove a group's autoscaling policy.", no_args_is_help=True)


def _policy_path(cluster_id: str, group: str) -> str:
    return f"/clusters/{cluster_id}/node-groups/{group}/autoscaling-policy"


def _show_policy(answer: dict[str, Any], explain: bool) -> None:
    policy = answer.get("policy")
    if not policy:
        console.print(f"Group {answer['group']}: no autoscaling policy")
        return
    console.print(f"Group {answer['group']}: min {policy['min_count']}, max {policy['max_count']}, "
                  f"{len(policy.get('rules') or [])} load rules, {len(policy.get('time_rules') or [])} time rules"
                  + (", managed" if policy.get("managed") else ""))
    if explain:
        t = table("time", "count", "bounds", "decision")
        for e in answer.get("evaluations") or []:
            change = f"{e['current']} -> {e['desired']}" if e["changed"] else str(e["current"])
            t.add_row(time.strftime("%H:%M:%S", time.localtime(e["at"])), change, f"{e['low']}..{e['high']}", e["cause"])
        console.print(t)


@autoscaling_app.command("put")
def put_policy(cluster_id: str, group: str = typer.Option(..., "--group", "-g"),
               file: Path = typer.Option(..., "--file", "-f", help="The policy, YAML or JSON."),
               output: Output = OutputOpt) -> None:
    """Attach or replace the group's autoscaling policy (EMR's rules, cron time rules, or managed)."""
    document = load_spec_file(file)
    answer = Client().request("PUT", _policy_path(cluster_id, group), json=document).json()
    finish(answer, output, lambda: _show_policy(answer, False), ok=True)


@autoscaling_app.command("get")
def get_policy(cluster_id: str, group: str = typer.Option(..., "--group", "-g"),
               explain: bool = typer.Option(False, "--explain", help="The last evaluations and why nothing changed."),
               output: Output = OutputOpt) -> None:
    """Show the group's policy (and with --explain its last evaluations)."""
    answer = Client().get(_policy_path(cluster_id, group))
    finish(answer, output, lambda: _show_policy(answer, explain), ok=True)


@autoscaling_app.command("remove")
def remove_policy(cluster_id: str, group: str = typer.Option(..., "--group", "-g"), output: Output = OutputOpt) -> None:
    """Remove the group's autoscaling policy (its count stays as it is)."""
    answer = Client().delete(_policy_path(cluster_id, group))
    finish(answer, output, lambda: _show_policy(answer, False), ok=True)
