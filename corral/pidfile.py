"""Pid files that name a process by pid *and* start time, so a recycled pid is never
mistaken for the process Corral started (server, agents, daemons, steps)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psutil


def is_same_process(pid: int, create_time: float) -> bool:
    """Whether ``pid`` still is the live (non-zombie) process that started at ``create_time``."""
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - create_time) < 0.05 and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def write(path: Path, pid: int, **extra: Any) -> float:
    """Record ``pid`` with its start time (and any ``extra`` fields); returns the start time."""
    create_time = psutil.Process(pid).create_time()
    path.write_text(json.dumps({"pid": pid, "create_time": create_time, **extra}))
    return create_time


def read_live(path: Path) -> dict[str, Any] | None:
    """The record in ``path`` if its process still runs, else None."""
    try:
        info = json.loads(path.read_text())
        if is_same_process(int(info["pid"]), float(info["create_time"])):
            return info  # type: ignore[no-any-return]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None
