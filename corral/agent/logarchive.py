"""Log archiving to the cluster's LogUri (as EMR does): each node copies its daemon logs to
``<log_uri>/<cluster>/node/<node>/`` every ARCHIVE_INTERVAL and when it stops, and the
master copies a step's stdout and stderr to ``<log_uri>/<cluster>/steps/<step>/`` when the
step ends. The copies are made with the node's own ``hadoop fs`` (S3A, the cluster's
object-storage settings), off the agent's loop, so a slow store never delays a step.

Every ``hadoop fs`` is a JVM that loads the S3A client (seconds of CPU), so copies are
batched: whatever is queued is hard-linked into one staging tree laid out like the LogUri
and copied with a single ``-put`` that merges it into the prefix (the prefix is created
once per agent).
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

from corral.services.hadoop_common import DAEMON_JAVA_OPTS

log = logging.getLogger("corral.agent.logarchive")
ARCHIVE_INTERVAL = float(os.environ.get("CORRAL_LOG_ARCHIVE_INTERVAL", 300.0))
UPLOAD_TIMEOUT = 120.0
Emit = Callable[[str, str, str, "str | None"], None]


class LogArchiver:
    def __init__(self, node_dir: Path, node_id: str, emit: Emit) -> None:
        self.node_dir, self.node_id, self.emit = node_dir, node_id, emit
        self.prefix: str | None = None
        self.env: dict[str, str] = {}
        self.jobs: queue.Queue[tuple[list[Path], str]] = queue.Queue()  # (files, dest under the prefix)
        self.prefix_made = False
        self.last_node_upload = 0.0
        self.archived_steps: set[str] = set()
        self.failed_once = False
        self._thread: threading.Thread | None = None

    def configure(self, prefix: str | None, env: dict[str, str]) -> None:
        """The node's own Hadoop client: its launcher falls back to the node's conf and
        address when the step environment's (the master's) are not set."""
        self.prefix = prefix.rstrip("/") if prefix else None
        self.env = {k: v for k, v in env.items() if k not in ("HADOOP_CONF_DIR", "CORRAL_BIND_ADDRESS")}
        self.env.setdefault("HADOOP_CLIENT_OPTS", DAEMON_JAVA_OPTS)  # a short-lived client: C1 is enough
        if self.prefix and self._thread is None:
            self._thread = threading.Thread(target=self._work, daemon=True, name="log-archiver")
            self._thread.start()

    def _node_logs(self) -> list[Path]:
        return sorted(p for p in (self.node_dir / "logs").glob("*") if p.is_file())

    def tick(self, now: float) -> None:
        if self.prefix and now - self.last_node_upload >= ARCHIVE_INTERVAL:
            self.last_node_upload = now
            self.jobs.put((self._node_logs(), f"node/{self.node_id}"))

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
        self.jobs.put((files, f"steps/{step_id}"))

    def flush(self, timeout: float) -> None:
        """At shutdown: the daemons are stopped, so their logs are complete; copy them and
        wait (up to ``timeout``) for every queued copy."""
        if not self.prefix:
            return
        self.jobs.put((self._node_logs(), f"node/{self.node_id}"))
        deadline = time.monotonic() + timeout
        while self.jobs.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.2)

    def _work(self) -> None:
        while True:
            batch = [self.jobs.get()]
            while True:  # what was queued meanwhile goes with the same copy
                try:
                    batch.append(self.jobs.get_nowait())
                except queue.Empty:
                    break
            try:
                self._upload(batch)
            except Exception as exc:  # noqa: BLE001 - archiving must never stop the agent
                log.warning("log archive to %s failed: %s", self.prefix, exc)
            finally:
                held = self.node_dir / "run" / "log-archive"
                for files, _ in batch:
                    for f in files:
                        if f.parent.parent == held:
                            shutil.rmtree(f.parent, ignore_errors=True)
                    self.jobs.task_done()

    def _stage(self, batch: list[tuple[list[Path], str]]) -> Path:
        """A tree laid out as under the prefix, of hard links (copies across devices)."""
        staging = self.node_dir / "run" / "log-archive-upload"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for files, dest in batch:
            target = staging / dest
            target.mkdir(parents=True, exist_ok=True)
            for f in files:
                try:
                    os.link(f, target / f.name)
                except FileExistsError:
                    continue
                except OSError:
                    try:
                        shutil.copy2(f, target / f.name)
                    except OSError:
                        continue  # e.g. a log that was rotated away meanwhile
        return staging

    def _upload(self, batch: list[tuple[list[Path], str]]) -> None:
        staging = self._stage(batch)
        try:
            tops = sorted(str(p) for p in staging.iterdir() if any(f.is_file() for f in p.rglob("*")))
            if not tops or self.prefix is None:
                return
            hadoop = str(self.node_dir / "bin" / "hadoop")
            commands = [] if self.prefix_made else [[hadoop, "fs", "-mkdir", "-p", self.prefix]]
            commands.append([hadoop, "fs", "-put", "-f", *tops, self.prefix])  # merges into what is there
            for argv in commands:
                result = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=UPLOAD_TIMEOUT)
                if result.returncode != 0:
                    reason = next((line for line in reversed(result.stderr.splitlines()) if line.strip()), "no output")
                    if not self.failed_once:  # one event, not one per attempt
                        self.failed_once = True
                        self.emit("WARN", "LOG_ARCHIVE_FAILED",
                                  f"could not copy logs to {self.prefix}: {reason[:300]}", None)
                    return
                self.prefix_made = True
        finally:
            shutil.rmtree(staging, ignore_errors=True)
