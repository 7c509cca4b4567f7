"""Live progress of a cluster operation: state, operation steps, and every node's daemons."""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from corral.cli.client import Client
from corral.cli.render import component_summary, console, styled

UP = ("WAITING", "RUNNING")
ENDED = ("TERMINATED", "TERMINATED_WITH_ERRORS")
STEP_MARK = {"DONE": "[green]✓[/green]", "RUNNING": "[cyan]…[/cyan]", "FAILED": "[red]✗[/red]",
             "PENDING": "[dim]·[/dim]", "SKIPPED": "[dim]-[/dim]"}


def _render(cluster: dict[str, Any], operation: dict[str, Any] | None, started: float, done: bool) -> Group:
    line = Text.from_markup(
        f" [bold]{cluster['id']}[/bold] '{cluster['name']}' {styled(cluster['status'])}"
        f"  {time.monotonic() - started:.1f}s  [dim]{cluster['state_change_reason'].get('message') or ''}[/dim]")
    parts: list[Any] = [Text("•") + line if done else Spinner("dots", line)]
    if operation:
        steps = Table.grid(padding=(0, 1))
        for step in operation["steps"]:
            steps.add_row(STEP_MARK.get(step["status"], "?"), step["name"], f"[dim]{step.get('detail') or ''}[/dim]")
        parts.append(steps)
    nodes = Table(show_edge=False, header_style="bold", box=None)
    for col in ("node", "role", "address", "status", "daemons"):
        nodes.add_column(col)
    for node in cluster.get("nodes", []):
        status = node["status"] + (f" ({node['phase']})" if node.get("phase") and node["phase"] != node["status"] else "")
        nodes.add_row(node["id"], node["role"], node.get("address") or "-", status, component_summary(node["components"]))
    parts.append(nodes)
    return Group(*parts)


def watch_cluster(client: Client, cluster_id: str, until: tuple[str, ...], kind: str, show: bool = True) -> dict[str, Any]:
    """Wait until the cluster's state is in ``until`` or it has ended, showing progress."""
    started = time.monotonic()
    with Live(console=console, refresh_per_second=8, transient=False) if show else nullcontext() as live:
        while True:
            cluster = client.get(f"/clusters/{cluster_id}")
            done = cluster["status"] in until or cluster["status"] in ENDED
            if live is not None:
                ops = [o for o in client.get(f"/clusters/{cluster_id}/operations") if o["kind"] == kind]
                live.update(_render(cluster, ops[-1] if ops else None, started, done), refresh=True)
            if done:
                break
            time.sleep(0.3)
    if show and not console.is_terminal:
        console.print()  # Live leaves the cursor after its last frame when not on a terminal
    return cluster


def print_ready(cluster: dict[str, Any]) -> None:
    console.print(f"[green]Cluster {cluster['id']} is {cluster['status']}[/green]: {cluster['state_change_reason']['message']}")
    for name, url in cluster.get("web_uis", {}).items():
        console.print(f"  {name:<22} {url}")
