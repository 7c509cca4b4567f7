"""``corral cluster create|list|describe|terminate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from corral.cli.client import Client
from corral.cli.outcome import cluster_created, cluster_terminated, finish
from corral.cli.paging import list_all
from corral.cli.progress import ENDED, UP, print_ready, watch_cluster
from corral.cli.ship import ship_cluster_spec
from corral.cli.render import Output, component_summary, console, duration, print_json, styled, table, when
from corral.cli.specfile import SpecFlags, load_spec_file, merge_flags
from corral.domain.states import ClusterState

app = typer.Typer(help="Create, list, describe and terminate clusters.", no_args_is_help=True)
OutputOpt = typer.Option(Output.table, "--output", "-o", help="table or json")


def create_and_wait(client: Client, spec: dict[str, Any], wait: bool, show: bool = True) -> dict[str, Any]:
    # Bootstrap scripts and step files are uploaded from here: the server may be elsewhere.
    cluster = client.post("/clusters", json=ship_cluster_spec(client.http, spec))
    if not wait:
        return cluster
    return watch_cluster(client, cluster["id"], UP, "CREATE_CLUSTER", show=show)


@app.command()
def create(
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Cluster spec, YAML or JSON."),
    name: Optional[str] = typer.Option(None, "--name"),
    release: Optional[str] = typer.Option(None, "--release"),
    services: list[str] = typer.Option([], "--services", help="Comma-separated, e.g. spark."),
    provider: Optional[str] = typer.Option(None, "--provider", help="local (the default) or ssh (registered hosts)."),
    master_type: Optional[str] = typer.Option(None, "--master-type"),
    core_count: Optional[int] = typer.Option(None, "--core-count"),
    core_type: Optional[str] = typer.Option(None, "--core-type"),
    task_count: Optional[int] = typer.Option(None, "--task-count"),
    task_type: Optional[str] = typer.Option(None, "--task-type"),
    bootstrap: list[Path] = typer.Option([], "--bootstrap", help="A script run on every node before services start."),
    prop: list[str] = typer.Option([], "--property", "-p", help="CLASSIFICATION:KEY=VALUE, e.g. spark-defaults:spark.executor.memory=2g"),
    auto_terminate: bool = typer.Option(False, "--auto-terminate", help="Terminate after the last step."),
    idle_timeout: Optional[int] = typer.Option(None, "--idle-timeout",
                                               help="Terminate once idle this many seconds (60..604800)."),
    client_token: Optional[str] = typer.Option(None, "--client-token", help="Idempotency token."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Return once the cluster is requested."),
    output: Output = OutputOpt,
) -> None:
    """Create a cluster and show its progress until it is WAITING."""
    base = load_spec_file(file) if file else None
    flags = SpecFlags(name=name, release=release, services=services, provider=provider, master_type=master_type,
                      core_count=core_count,
                      core_type=core_type, task_count=task_count, task_type=task_type, bootstrap=bootstrap,
                      properties=prop, auto_terminate=auto_terminate, client_token=client_token,
                      idle_timeout=idle_timeout)
    spec = merge_flags(base, flags)
    client = Client()
    cluster = create_and_wait(client, spec, wait=not no_wait, show=output is Output.table)
    finish(cluster, output, lambda: _print_created(cluster), ok=cluster_created(cluster, waited=not no_wait))


def _print_created(cluster: dict[str, Any]) -> None:
    if cluster["status"] in UP:
        print_ready(cluster)
    elif cluster["status"] in ENDED:
        style = "red" if cluster["status"] == "TERMINATED_WITH_ERRORS" else "bold"
        console.print(f"[{style}]Cluster {cluster['id']} {cluster['status']}[/{style}]: "
                      f"{cluster['state_change_reason']['message']}")
    else:
        console.print(f"Cluster {cluster['id']} requested ({cluster['status']}); follow it with `corral cluster describe {cluster['id']}`")


@app.command("list")
def list_(state: list[str] = typer.Option([], "--state", help="Only clusters in this state (repeatable)."),
          all_: bool = typer.Option(False, "--all", help="Include terminated clusters."),
          output: Output = OutputOpt) -> None:
    """List clusters (active ones unless --all or --state)."""
    # Active ones are asked for by state: the ended ones, which only grow, are not fetched.
    wanted = [s.upper() for s in state] or ([] if all_ else [s.value for s in ClusterState if not s.is_terminal()])
    clusters = list_all(Client(), "/clusters", [("state", s) for s in wanted])
    if output is Output.json:
        print_json(clusters)
        return
    t = table("id", "name", "status", "nodes", "created", "uptime")
    for c in clusters:
        tl = c["timeline"]
        t.add_row(c["id"], c["name"], styled(c["status"]), str(c["node_count"]), when(tl["created_at"]),
                  duration(tl["ready_at"], tl["ended_at"]) if tl["ready_at"] else "-")
    console.print(t)


def _print_cluster(c: dict[str, Any], configs: list[dict[str, Any]] | None) -> None:
    tl = c["timeline"]
    reason = c["state_change_reason"]
    provider = c.get("provider", "local")
    console.print(f"[bold]{c['id']}[/bold] '{c['name']}'  {styled(c['status'])}  release {c['release']}  "
                  f"services {', '.join(c['services'])}" + ("  auto-terminate" if c["auto_terminate"] else "")
                  + (f"  provider {provider}" if provider != "local" else ""))
    said = ": ".join(part for part in (reason["code"], reason["message"]) if part)
    console.print(f"  reason: {said or '-'}")
    console.print(f"  created {when(tl['created_at'])}  ready {when(tl['ready_at'])}  ended {when(tl['ended_at'])}")
    for name, url in {**c["web_uis"], **c.get("endpoints", {})}.items():
        console.print(f"  {name:<22} {url}")
    # Host columns only where hosts are involved (ssh): a local cluster's tables stay as they were.
    selecting = any(g.get("host_labels") or g.get("hosts") for g in c["node_groups"])
    groups = table("group", "role", "instance type", "status", "requested", "running",
                   *(("hosts",) if selecting else ()))
    for g in c["node_groups"]:
        chosen = ([", ".join(f"{k}={v}" for k, v in (g.get("host_labels") or {}).items())
                   + (" " if g.get("host_labels") and g.get("hosts") else "") + ", ".join(g.get("hosts") or [])]
                  if selecting else [])
        groups.add_row(g.get("name") or g["id"], g["role"], g["instance_type"], styled(g.get("status") or "RUNNING"),
                       str(g["requested_count"]), str(g["running_count"]), *[text or "-" for text in chosen])
    console.print(groups)
    on_hosts = any(n.get("host") for n in c["nodes"])
    nodes = table("node", "role", *(("host",) if on_hosts else ()), "address", "status", "daemons")
    for n in c["nodes"]:
        host = [n.get("host") or "-"] if on_hosts else []
        status = styled(n["status"]) + (f" {styled(n['decommission_state'])}" if n.get("decommission_state") else "")
        nodes.add_row(n["id"], n["role"], *host, n["address"] or "-", status, component_summary(n["components"]))
    console.print(nodes)
    for n in c["nodes"]:  # a leaving node: what its decommission waits for
        if n.get("decommission_state") == "DECOMMISSIONING" and n.get("decommission_detail"):
            console.print(f"  {n['id']} DECOMMISSIONING: {n['decommission_detail']}", markup=False, highlight=False)
    for n in c["nodes"]:  # a LOST node, or one terminated without being cleaned: why
        if n.get("status_reason"):
            console.print(f"  {n['id']} {styled(n['status'])}: {n['status_reason']}")
    for conf in configs or []:
        t = table("property", "value", "source", title=conf["classification"])
        for key, value in sorted(conf["properties"].items()):
            t.add_row(key, value, "[bold]user[/bold]" if key in conf["user_set"] else "default")
        console.print(t)


@app.command()
def describe(cluster_id: str, configs: bool = typer.Option(False, "--configs", help="Show effective configuration."),
             events: bool = typer.Option(False, "--events", help="Show the cluster's events."),
             output: Output = OutputOpt) -> None:
    """Show a cluster: state and reason, timeline, nodes and daemons, web UIs."""
    client = Client()
    cluster = client.get(f"/clusters/{cluster_id}")
    conf = client.get(f"/clusters/{cluster_id}/configurations") if configs else None
    evs = list_all(client, f"/clusters/{cluster_id}/events") if events else None
    if output is Output.json:
        print_json({**cluster, **({"effective_configurations": conf} if conf is not None else {}),
                    **({"events": evs} if evs is not None else {})})
        return
    _print_cluster(cluster, conf)
    if evs:
        t = table("time", "level", "code", "node", "message")
        for e in evs:
            t.add_row(when(e["time"]), e["level"], e["code"], e["node_id"] or "", e["message"])
        console.print(t)


@app.command()
def terminate(cluster_id: str, wait: bool = typer.Option(False, "--wait", help="Wait until it is TERMINATED."),
              output: Output = OutputOpt) -> None:
    """Terminate a cluster: stop its daemons and steps and release its nodes."""
    client = Client()
    cluster = client.post(f"/clusters/{cluster_id}/terminate")
    ok = True
    if wait:
        cluster = watch_cluster(client, cluster_id, ENDED, "TERMINATE_CLUSTER", show=output is Output.table)
        ok = cluster_terminated(cluster, client.get(f"/clusters/{cluster_id}/operations"))

    def show() -> None:
        # Without --wait the answer is the request's: the reconciler moves the status next.
        going = cluster["status"] not in ENDED and cluster.get("target") == "TERMINATED"
        console.print(f"Cluster {cluster_id} is {styled(cluster['status'])}" + (", terminating" if going else ""))
        if not ok:
            console.print(cluster["state_change_reason"]["message"] or "", markup=False, highlight=False)

    finish(cluster, output, show, ok)



@app.command()
def update(cluster_id: str,
           idle_timeout: Optional[int] = typer.Option(None, "--idle-timeout",
                                                      help="Terminate after this many idle seconds (60..604800)."),
           no_idle_timeout: bool = typer.Option(False, "--no-idle-timeout", help="Turn idle auto-termination off."),
           output: Output = OutputOpt) -> None:
    """Change a running cluster: its idle auto-termination (EMR's AutoTerminationPolicy)."""
    if (idle_timeout is None) == (not no_idle_timeout):
        raise typer.BadParameter("give exactly one of --idle-timeout N and --no-idle-timeout")
    body = {"auto_termination": None if no_idle_timeout else {"idle_timeout": idle_timeout}}
    cluster = Client().patch(f"/clusters/{cluster_id}", json=body)

    def show() -> None:
        policy = cluster.get("auto_termination")
        console.print(f"Cluster {cluster_id}: " + (f"idle timeout {policy['idle_timeout']} s" if policy
                                                  else "idle auto-termination off"))

    finish(cluster, output, show, ok=True)
