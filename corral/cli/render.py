"""Printing: Rich tables for people, ``--output json`` for programs."""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


class Output(str, Enum):
    table = "table"
    json = "json"


STATE_STYLE = {
    "WAITING": "green", "RUNNING": "cyan", "COMPLETED": "green", "STARTING": "yellow", "BOOTSTRAPPING": "yellow",
    "PENDING": "yellow", "TERMINATING": "magenta", "TERMINATED": "dim", "TERMINATED_WITH_ERRORS": "red",
    "FAILED": "red", "CANCELLED": "dim", "CANCEL_PENDING": "magenta", "INTERRUPTED": "red", "LOST": "red",
}


def styled(state: str | None) -> str:
    if not state:
        return "-"
    style = STATE_STYLE.get(state)
    return f"[{style}]{state}[/{style}]" if style else state


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def when(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def duration(start: str | None, end: str | None) -> str:
    if not start:
        return "-"
    t0 = datetime.fromisoformat(start)
    t1 = datetime.fromisoformat(end) if end else datetime.now(t0.tzinfo)
    secs = (t1 - t0).total_seconds()
    return f"{secs:.1f}s" if secs < 120 else f"{secs / 60:.1f}m"


def table(*columns: str, title: str | None = None) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        t.add_column(col)
    return t


def component_summary(components: dict[str, Any]) -> str:
    return ", ".join(f"{name} {styled(c['status'])}" + (f" (restarts {c['restarts']})" if c.get("restarts") else "")
                     for name, c in components.items()) or "-"
