"""An agent whose node no longer exists cleans up after itself.

When the control plane answers that the node is gone (HTTP 410: the node is TERMINATED;
404 a few times in a row: it does not know the node), the agent stops its steps and
daemons as for any stop. If its ``agent.json`` has a ``self_clean`` section, written by
providers whose machines outlive their nodes (the ssh provider), it then also removes
what would otherwise be left on the host, because no ``terminate_node`` may ever reach it
(its cluster ended while the host was unreachable):

- its ``@reboot`` crontab line (the line ending with ``cron_tag``, under ``crontab_lock``),
- its logs: moved to ``orphaned_logs`` (same filesystem: a rename), where the provider
  copies them back to the control plane when it next reaches the host, then removes them,
- its node directory (and its cluster's directory once empty).

The local provider writes no ``self_clean``: its ``terminate_node`` always runs on this
machine, and archives the logs itself.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

log = logging.getLogger("corral.agent")


def remove_cron_line(tag: str, lock: str) -> None:
    """Drop the crontab line ending with `` <tag>`` (no crontab, no line: nothing to do)."""
    if shutil.which("crontab") is None:
        return
    Path(lock).parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        current = subprocess.run(["crontab", "-l"], capture_output=True, text=True, timeout=30)
        if current.returncode != 0:
            return  # "no crontab for <user>"
        lines = current.stdout.splitlines()
        kept = [line for line in lines if not line.endswith(f" {tag}")]
        if len(kept) == len(lines):
            return
        subprocess.run(["crontab", "-"], input="".join(f"{line}\n" for line in kept), text=True, check=True, timeout=30)


def clean_up(node_dir: Path, section: dict[str, Any] | None) -> bool:
    """Remove the node's traces as ``section`` says; returns False when there is no
    section (nothing done). Each part is tried even when another fails."""
    if not section:
        return False
    try:
        remove_cron_line(str(section["cron_tag"]), str(section["crontab_lock"]))
    except (OSError, subprocess.SubprocessError, KeyError) as exc:
        log.warning("could not remove this node's crontab line: %s", exc)
    logs, orphaned = node_dir / "logs", section.get("orphaned_logs")
    if orphaned and logs.is_dir():
        try:
            Path(orphaned).parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(orphaned, ignore_errors=True)
            os.replace(logs, orphaned)
        except OSError as exc:
            log.warning("could not keep this node's logs in %s: %s", orphaned, exc)
    shutil.rmtree(node_dir, ignore_errors=True)
    try:
        node_dir.parent.rmdir()  # the cluster's folder, once its last node is gone
    except OSError:
        pass
    return True
