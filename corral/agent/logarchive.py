"""Log archiving to the cluster's LogUri (as EMR does): each node copies its daemon logs to
``<log_uri>/<cluster>/node/<node>/`` every ARCHIVE_INTERVAL and when it stops, and the
master copies a step's stdout and stderr to ``<log_uri>/<cluster>/steps/<step>/`` when the
step ends. The copies are made with the node's own ``hadoop fs`` (S3A, the cluster's
object-storage settings), off the agent's loop, so a slow store never delays a step.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger("corral.agent.logarchive")
ARCHIVE_INTERVAL = float(os.environ.get("CORRAL_LOG_ARCHIVE_INTERVAL", 300.0))
UPLOAD_TIMEOUT = 120.0
Emit = Callable[[str, str, str, "str | None"], None]


class LogArchiver:
    def __init__(self, node_dir: Path, node_id: str, emit: Emit) -> None:
        self.node_dir, self.node_id, self.emit = node_dir, node_id, emit
        self.prefix: str | None = None
        self.env: dict[str, str] = {}
        self.jobs: queue.Queue[tuple[list[Path], str]] = queue.Queue()
        self.last_node_upload = 0.0
        self.archived_steps: set[str] = set()
        self.failed_once = False
        self._thread: threading.Thread | None = None

    def configure(self, prefix: str | None, env: dict[str, str]) -> None:
        """The node's own Hadoop client: its launcher falls back to the node's conf and
        address when the step environment's (the master's) are not set."""
        self.prefix = prefix.rstrip("/") if prefix else None
        self.env = {k: v for k, v in env.items() if k not in ("HADOOP_CONF_DIR", "CORRAL_BIND_ADDRESS")}
        if self.prefix and self._thread is None:
            self._thread = threading.Thread(target=self._work, daemon=True, name="log-archiver")
            self._thread.start()

    def _node_logs(self) -> list[Path]:
        return sorted(p for p in (self.node_dir / "logs").glob("*") if p.is_file())

    def tick(self, now: float) -> None:
        if self.prefix and now - self.last_node_upload >= ARCHIVE_INTERVAL:
            self.last_node_upload = now
            self.jobs.put((self._node_logs(), f"{self.prefix}/node/{self.node_id}"))

    def step_finished(self, step_id: str, step_dir: Path) -> None:
        """Hard links keep the step's logs for the copy after the agent forgets the step."""
        if not self.prefix or step_id in self.archived_steps:
            return
        self.archived_steps.add(step_id)
        held = self.node_dir / "run" / "log-archive" / step_id
        held.mkdir(parents=True, exist_ok=True)
        files = []
        for name in ("stdout", "stderr"):
            link = held / name
            try:
                if not link.exists():
                    os.link(step_dir / name, link)
                files.append(link)
            except OSError:
                continue
        self.jobs.put((files, f"{self.prefix}/steps/{step_id}"))

    def flush(self, timeout: float) -> None:
        """At shutdown: the daemons are stopped, so their logs are complete; copy them and
        wait (up to ``timeout``) for every queued copy."""
        if not self.prefix:
            return
        self.jobs.put((self._node_logs(), f"{self.prefix}/node/{self.node_id}"))
        deadline = time.monotonic() + timeout
        while self.jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.2)

    def _work(self) -> None:
        while True:
            files, dest = self.jobs.get()
            try:
                if files:
                    self._upload(files, dest)
            except Exception as exc:  # noqa: BLE001 - archiving must never stop the agent
                log.warning("log archive to %s failed: %s", dest, exc)
            finally:
                held = self.node_dir / "run" / "log-archive"
                for f in files:
                    if f.parent.parent == held:
                        shutil.rmtree(f.parent, ignore_errors=True)
                self.jobs.task_done()

    def _upload(self, files: list[Path], dest: str) -> None:
        hadoop = str(self.node_dir / "bin" / "hadoop")
        for argv in ([hadoop, "fs", "-mkdir", "-p", dest], [hadoop, "fs", "-put", "-f", *map(str, files), dest]):
            result = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=UPLOAD_TIMEOUT)
            if result.returncode != 0:
                reason = next((line for line in reversed(result.stderr.splitlines()) if line.strip()), "no output")
                if not self.failed_once:  # one event, not one per attempt
                    self.failed_once = True
                    self.emit("WARN", "LOG_ARCHIVE_FAILED", f"could not copy logs to {dest}: {reason[:300]}", None)
                return
