"""``corral audit list``: the control plane's audit log (admin; ``corral.control.audit``)."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Optional

import typer

from corral.cli.client import Client
from corral.cli.paging import list_all
from corral.cli.render import Output, console, print_json, table, when

app = typer.Typer(help="Read the audit log: every mutating API call (admin).", no_args_is_help=True)
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SINCE_HELP = "Only calls since then: a duration back from now (30m, 1h, 2d) or a local time (2026-12-01T10:00)."


def parse_since(text: str, now: float | None = None) -> float:
    """Epoch seconds of ``--since``: ``<n>s|m|h|d`` before ``now``, or an ISO 8601 time (local
    time when it names no zone). Raises ``typer.BadParameter`` (exit 2) for anything else."""
    value = text.strip()
    match = re.fullmatch(r"(\d+)\s*([smhd])", value)
    if match:
        return (time.time() if now is None else now) - int(match.group(1)) * UNITS[match.group(2)]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is neither a duration (30m, 1h, 2d) nor a time (2026-12-01T10:00)",
                                 param_hint="--since") from None
    return (parsed if parsed.tzinfo else parsed.astimezone()).timestamp()


@app.command("list")
def list_(since: Optional[str] = typer.Option(None, "--since", help=SINCE_HELP),
          output: Output = typer.Option(Output.table, "--output", "-o", help="table or json")) -> None:
    """List audit records, oldest first: who, what, on which target, when, and the result."""
    params = [("since", parse_since(since))] if since else []
    records = list_all(Client(), "/audit", params)
    if output is Output.json:
        print_json(records)
        return
    t = table("time", "actor", "role", "action", "target", "status", "result", "remote")
    for r in records:
        style = {"ok": "green", "denied": "red", "failed": "yellow"}.get(r["result"], "")
        t.add_row(when(r["time"]), r["actor"], r["role"] or "-", r["action"], r["target"] or "-", str(r["status_code"]),
                  f"[{style}]{r['result']}[/{style}]" if style else r["result"], r["remote"] or "-")
    console.print(t)
