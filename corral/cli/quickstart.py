"""``corral quickstart``: the main job. A 1 MASTER + 2 CORE Hadoop + Spark cluster (HDFS,
YARN, MapReduce, Spark on YARN) comes up, runs Spark's own pi.py as a step, prints the
result and the web UIs, and goes away."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from corral.agent.runtime import DeployError, check_java
from corral.cli.client import Client
from corral.cli.cluster_cmd import create_and_wait
from corral.cli.paging import read_log
from corral.cli.progress import UP, print_ready, watch_cluster, ENDED
from corral.cli.render import console, styled
from corral.cli.step_cmd import wait_step
from corral.domain.catalog import DEFAULT_RELEASE, RELEASES


def pi_script() -> Path:
    try:
        import pyspark  # noqa: PLC0415
    except ImportError:
        raise typer.BadParameter("pyspark is not installed; run `make quickstart` (or pip install pyspark==4.3.0)") from None
    return Path(pyspark.__file__).parent / "examples" / "src" / "main" / "python" / "pi.py"


def quickstart(keep: bool = typer.Option(False, "--keep", help="Keep the cluster running afterwards."),
               partitions: int = typer.Option(10, "--partitions", min=1, max=1000, help="pi.py's slices.")) -> None:
    """Create a Hadoop + Spark cluster, run pi.py on YARN as a step, print the result, terminate."""
    try:
        check_java(RELEASES[DEFAULT_RELEASE].java_major)
    except DeployError as exc:
        raise typer.BadParameter(str(exc)) from None
    script = pi_script()
    client = Client()
    spec = {"name": "quickstart",  # the release's default services: HDFS, YARN, MapReduce, Spark
            "node_groups": [{"role": "MASTER", "instance_type": "local.small", "count": 1},
                            {"role": "CORE", "instance_type": "local.medium", "count": 2}],
            "steps": [{"type": "SPARK", "name": "pi", "args": [str(script), str(partitions)]}]}
    console.print("[bold]Creating a Hadoop + Spark cluster: 1 MASTER (local.small) + 2 CORE (local.medium)[/bold]")
    cluster = create_and_wait(client, spec, wait=True)
    if cluster["status"] not in UP:
        console.print(f"[red]cluster {cluster['id']} {cluster['status']}: {cluster['state_change_reason']['message']}[/red]")
        raise typer.Exit(1)
    print_ready(cluster)
    step = client.get(f"/clusters/{cluster['id']}/steps", params={"limit": 1})["steps"][0]  # its one step
    console.print(f"[bold]Running Spark's pi.py on YARN as step {step['id']}[/bold]")
    step = wait_step(client, cluster["id"], step["id"])
    out = read_log(client, f"/clusters/{cluster['id']}/steps/{step['id']}/logs/stdout").decode(errors="replace")
    match = re.search(r"Pi is roughly ([0-9.]+)", out)
    ok = step["status"] == "COMPLETED" and match is not None
    if ok:
        console.print(f"[green]Step {step['id']} COMPLETED[/green]: Pi is roughly [bold]{match.group(1)}[/bold]")  # type: ignore[union-attr]
    else:
        console.print(f"[red]Step {step['id']} {step['status']}[/red]: {step.get('state_message') or ''}", markup=False)
    console.print(f"  logs: corral step logs {cluster['id']} {step['id']} [--stderr]")
    for name, url in cluster.get("web_uis", {}).items():
        console.print(f"  {name:<22} {url}")
    if keep:
        console.print(f"Cluster {cluster['id']} kept; terminate it with `corral cluster terminate {cluster['id']}`")
    else:
        client.post(f"/clusters/{cluster['id']}/terminate")
        final = watch_cluster(client, cluster["id"], ENDED, "TERMINATE_CLUSTER")
        console.print(f"Cluster {cluster['id']} {styled(final['status'])}")
    if not ok:
        raise typer.Exit(1)
