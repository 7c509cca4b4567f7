"""``corral cluster metrics ID``: the cluster's metric history as a table with a trend per
series (``GET /clusters/{id}/metrics``), live with ``--watch``, or JSON."""

from __future__ import annotations

import time
from typing import Any, Optional

import typer
from rich.live import Live
from rich.table import Table

from corral.cli.audit_cmd import parse_since
from corral.cli.client import Client
from corral.cli.render import Output, console, print_json, table

BARS = "▁▂▃▄▅▆▇█"
TREND_POINTS = 30  # buckets in a trend: the range is averaged into this many
WATCH_SECONDS = 10.0  # the sampling interval: a faster refresh shows nothing new
SINCE_HELP = "How far back: a duration (30m, 1h, 2d) or a local time (2026-12-01T10:00). Default 1h."


def sparkline(values: list[float]) -> str:
    """One block character per value, scaled from the smallest to the largest ('' for none;
    a flat line at mid height when all are equal)."""
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return BARS[3] * len(values)
    return "".join(BARS[min(len(BARS) - 1, int((v - low) / (high - low) * len(BARS)))] for v in values)


def number(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}" if value % 1 else f"{value:.0f}"
    return f"{text} %" if unit == "percent" else f"{text} {unit}" if unit not in ("count", "ratio") else text


def render(answer: dict[str, Any], latest: dict[tuple[str, str | None], tuple[float, float]]) -> Table:
    """The table: one row per series, its latest raw value, the range's min and max, and a
    trend of the step averages."""
    t = table("metric", "node", "latest", "min", "max", "trend")
    t.columns[0].no_wrap = True
    t.columns[5].no_wrap = True
    for series in answer["series"]:
        values = [v for _, v in series["points"]]
        now = latest.get((series["metric"], series["node_id"]))
        shown = now[1] if now else (values[-1] if values else None)
        t.add_row(series["metric"], series["node_id"] or "-",
                  number(shown, series["unit"]) if shown is not None else "-",
                  number(min(values), series["unit"]) if values else "-",
                  number(max(values), series["unit"]) if values else "-", sparkline(values))
    return t


def _fetch(client: Client, cluster_id: str, names: Optional[str], since: float) -> tuple[dict[str, Any], dict]:
    now = time.time()
    step = max(1.0, (now - since) / TREND_POINTS)
    params: dict[str, Any] = {"start": str(since), "end": str(now), "step": f"{step:.0f}"}
    if names:
        params["names"] = names
    answer = client.get(f"/clusters/{cluster_id}/metrics", params=params)
    raw = client.get(f"/clusters/{cluster_id}/metrics",
                     params={**params, "start": str(now - 60), "step": ""})  # the newest point of each series
    latest = {(s["metric"], s["node_id"]): s["points"][-1] for s in raw["series"] if s["points"]}
    return answer, latest


def metrics(cluster_id: str,
            names: Optional[str] = typer.Option(None, "--names", help="Comma-separated metric names (EMR's: "
                                                "AppsRunning, MemoryAllocatedMB, HDFSUtilization, CPUUtilization, ...)."),
            since: str = typer.Option("1h", "--since", help=SINCE_HELP),
            step: Optional[str] = typer.Option(None, "--step", help="With -o json: average into buckets of this "
                                               "width (60, 5m); needed past 11,000 points a series (30 h at 10 s)."),
            watch: bool = typer.Option(False, "--watch", help="Keep the table live, refreshed every 10 s (Ctrl-C ends)."),
            output: Output = typer.Option(Output.table, "--output", "-o", help="table or json")) -> None:
    """Show a cluster's metrics (sampled every 10 s, kept 24 h; 5-minute averages for 14 days)."""
    start = parse_since(since)
    client = Client()
    if output is Output.json:
        params: dict[str, Any] = {"start": str(start)}
        if names:
            params["names"] = names
        if step:
            params["step"] = step
        print_json(client.get(f"/clusters/{cluster_id}/metrics", params=params))
        return
    answer, latest = _fetch(client, cluster_id, names, start)
    if not watch:
        if not answer["series"]:
            console.print(f"No samples of {cluster_id} since then (a cluster is sampled while it is up, "
                          "with monitoring on).", markup=False, highlight=False)
            return
        console.print(render(answer, latest))
        return
    span = time.time() - start  # a moving window of the same length
    with Live(render(answer, latest), console=console, refresh_per_second=1) as live:
        while True:
            time.sleep(WATCH_SECONDS)
            answer, latest = _fetch(client, cluster_id, names, time.time() - span)
            live.update(render(answer, latest))
