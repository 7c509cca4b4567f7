"""Bootstrap actions: user scripts run on every node before its daemons start.

Each action runs once per node (a record in ``run/bootstrap.json`` keeps an agent restart
from running it twice). A failure carries the script's own stderr tail, because opaque
init-action failures are what users of other platforms complain about most.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from corral.agent.client import ControlPlaneClient
from corral.agent.process import ManagedProcess
from corral.agent.protocol import BootstrapSpec
from corral.agent.supervisor import EventSink, tail


class BootstrapFailed(Exception):
    pass


def _command(script: Path, args: list[str]) -> list[str]:
    with open(script, "rb") as handle:
        has_shebang = handle.read(2) == b"#!"
    if has_shebang:
        script.chmod(0o755)
        return [str(script), *args]
    return ["/bin/bash", str(script), *args]


def run_bootstrap_actions(actions: list[BootstrapSpec], node_dir: Path, client: ControlPlaneClient,
                          env: dict[str, str], stop: threading.Event, emit: EventSink) -> None:
    record = node_dir / "run" / "bootstrap.json"
    done: list[str] = json.loads(record.read_text()) if record.exists() else []
    for index, action in enumerate(actions):
        key = f"{index}:{action.name}:{action.artifact.sha256}"
        if key in done:
            continue
        name = action.artifact.name
        if name in ("", ".", "..") or "/" in name or "/" in action.artifact.sha256:
            raise BootstrapFailed(f"bootstrap action '{action.name}': refusing artifact name {name!r}")
        script = node_dir / "artifacts" / action.artifact.sha256 / name
        if not script.exists():
            client.download_artifact(action.artifact.sha256, script)
        out = node_dir / "logs" / f"bootstrap-{index}.stdout"
        err = node_dir / "logs" / f"bootstrap-{index}.stderr"
        emit("INFO", "BOOTSTRAP_STARTED", f"bootstrap action '{action.name}' started", None)
        proc = ManagedProcess.spawn(_command(script, action.args), env, str(node_dir), out, err)
        deadline = time.monotonic() + action.timeout
        while proc.poll() is None:
            if stop.is_set() or time.monotonic() > deadline:
                proc.stop(5)
                why = "stopped" if stop.is_set() else f"timed out after {action.timeout:.0f}s"
                raise BootstrapFailed(f"bootstrap action '{action.name}' {why}; stderr tail:\n{tail(err)}")
            time.sleep(0.05)
        code = proc.poll()
        if code != 0:
            raise BootstrapFailed(f"bootstrap action '{action.name}' exited with code {code}; stderr tail:\n{tail(err)}")
        done.append(key)
        record.write_text(json.dumps(done))
        emit("INFO", "BOOTSTRAP_DONE", f"bootstrap action '{action.name}' succeeded", None)
