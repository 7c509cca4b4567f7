"""Runs step commands on the master node and ships their logs to the control plane.

Each step lives in ``steps/<id>/`` on the node: ``status.json`` (survives an agent
restart), ``stdout``, ``stderr`` and ``exit_code``, written by a tiny shell wrapper so the
result is known even when the agent was down while the step ended. A step's report says
``logs_flushed`` only when every byte of both logs is stored by the control plane, so a
step is never shown finished with its output missing.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from corral.agent.client import ControlPlaneClient
from corral.agent.process import ManagedProcess
from corral.agent.protocol import StepCommand, StepReport
from corral.agent.supervisor import EventSink, tail

STREAMS = ("stdout", "stderr")
CANCEL_GRACE = 10.0  # seconds between SIGTERM and SIGKILL on cancel
CHUNK = 1 << 20
# A running step's new log bytes go up at most this often: every upload is a request and a
# database write on the control plane, and Spark logs a line every few milliseconds. A
# finished step's last bytes go at once (its completion waits for them).
LOG_SHIP_INTERVAL = 1.0
# "$@" runs the command; its exit code is kept in a file the agent can read after a restart.
WRAPPER = ["/bin/sh", "-c", '"$@"; echo $? > exit_code', "corral-step"]


@dataclass
class _LocalStep:
    id: str
    status: str = "RUNNING"
    pid: int | None = None
    exit_code: int | None = None
    message: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    cancel_at: float | None = None  # when SIGTERM was sent
    shipped: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STREAMS})


class StepRunner:
    def __init__(self, node_dir: Path, client: ControlPlaneClient, emit: EventSink):
        self.root = node_dir / "steps"
        self.artifacts = node_dir / "artifacts"
        self.client = client
        self.emit = emit
        self.steps: dict[str, _LocalStep] = {}
        self.procs: dict[str, ManagedProcess] = {}
        self._shipped_at: dict[str, float] = {}
        self._load()

    # -- persistence -----------------------------------------------------------------------

    def step_dir(self, step_id: str) -> Path:
        return self.root / step_id

    def _save(self, step: _LocalStep) -> None:
        path = self.step_dir(step.id) / "status.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(step)))
        tmp.replace(path)

    def _load(self) -> None:
        if not self.root.is_dir():
            return
        for status in self.root.glob("*/status.json"):
            try:
                step = _LocalStep(**json.loads(status.read_text()))
            except (ValueError, TypeError):
                continue
            self.steps[step.id] = step
            if step.status == "RUNNING":
                proc = ManagedProcess.adopt(self.step_dir(step.id) / "pid")
                if proc is not None:
                    self.procs[step.id] = proc

    # -- plan --------------------------------------------------------------------------------

    def sync(self, commands: list[StepCommand], env: dict[str, str]) -> None:
        wanted = {c.id: c for c in commands}
        for step_id in list(self.steps):
            if step_id not in wanted:  # the control plane has recorded the outcome
                self._forget(step_id)
        for cmd in commands:
            step = self.steps.get(cmd.id)
            if step is None:
                self._start(cmd, env)
            elif cmd.cancel and step.status == "RUNNING" and step.cancel_at is None:
                step.cancel_at = time.time()
                self.procs[cmd.id].signal_group(signal.SIGTERM)
                self.emit("INFO", "STEP_CANCELLING", f"step {cmd.id}: SIGTERM sent to its process group", None)
                self._save(step)
        self._poll()

    def _artifact_path(self, sha256: str, name: str) -> Path:
        # The control plane refuses such names too: a file stays inside its artifact's directory.
        if name in ("", ".", "..") or "/" in name or "/" in sha256 or sha256 in ("", ".", ".."):
            raise OSError(f"refusing artifact name {name!r}")
        return self.artifacts / sha256 / name

    def _start(self, cmd: StepCommand, env: dict[str, str]) -> None:
        workdir = self.step_dir(cmd.id)
        workdir.mkdir(parents=True, exist_ok=True)
        for name in STREAMS:
            (workdir / name).touch()
        step = _LocalStep(id=cmd.id, started_at=time.time())
        self.steps[cmd.id] = step
        if cmd.cancel:
            step.status, step.ended_at, step.message = "CANCELLED", time.time(), "cancelled before it started"
            self._save(step)
            return
        try:
            argv = list(cmd.argv)
            for ref in cmd.artifacts:
                local = self._artifact_path(ref.sha256, ref.name)
                if not local.exists():
                    self.client.download_artifact(ref.sha256, local)
                argv = [a.replace("{artifact:" + ref.sha256 + "}", str(local.parent)) for a in argv]
            proc = ManagedProcess.spawn(WRAPPER + argv, {**env, **cmd.env}, str(workdir),
                                        workdir / "stdout", workdir / "stderr", workdir / "pid")
        except (OSError, httpx.HTTPError) as exc:
            step.status, step.ended_at, step.message = "FAILED", time.time(), f"could not start: {exc}"
            self._save(step)
            return
        self.procs[cmd.id], step.pid = proc, proc.pid
        self._save(step)
        self.emit("INFO", "STEP_STARTED", f"step {cmd.id} started (pid {proc.pid})", None)

    def _poll(self) -> None:
        now = time.time()
        for step_id, proc in list(self.procs.items()):
            step = self.steps[step_id]
            if proc.poll() is None:
                if step.cancel_at is not None and now - step.cancel_at > CANCEL_GRACE:
                    proc.signal_group(signal.SIGKILL)
                continue
            proc.signal_group(signal.SIGKILL)  # nothing of a finished step may linger
            del self.procs[step_id]
            step.ended_at = now
            code_file = self.step_dir(step_id) / "exit_code"
            step.exit_code = int(code_file.read_text().strip()) if code_file.exists() else None
            if step.cancel_at is not None:
                step.status, step.message = "CANCELLED", "cancelled by request"
            elif step.exit_code == 0:
                step.status, step.message = "COMPLETED", None
            else:
                how = f"exit code {step.exit_code}" if step.exit_code is not None else "killed"
                step.status = "FAILED"
                last = tail(self.step_dir(step_id) / "stderr", 15)
                step.message = f"{how}; last lines of stderr:\n{last}" if last.strip() else f"{how}; nothing on stderr"
            self._save(step)

    def pids(self) -> list[int]:
        """The pid of each running step's process (its wrapper shell). Read by the agent's
        meter thread: the dict is copied first (one step under the GIL)."""
        return [proc.pid for proc in list(self.procs.values())]

    def stop_all(self) -> None:
        for step_id, proc in list(self.procs.items()):
            proc.stop(CANCEL_GRACE)
        self._poll()

    def _forget(self, step_id: str) -> None:
        proc = self.procs.pop(step_id, None)
        if proc is not None:
            proc.stop(CANCEL_GRACE)
        self.steps.pop(step_id, None)
        shutil.rmtree(self.step_dir(step_id), ignore_errors=True)

    # -- logs -----------------------------------------------------------------------------------

    def ship_logs(self, force: bool = False) -> None:
        """Send new log bytes of every step (a running one's at most every
        LOG_SHIP_INTERVAL unless ``force``); on failure try again next tick."""
        now = time.monotonic()
        for step in list(self.steps.values()):
            recent = now - self._shipped_at.get(step.id, -LOG_SHIP_INTERVAL) < LOG_SHIP_INTERVAL
            if recent and step.status == "RUNNING" and not force:
                continue
            self._shipped_at[step.id] = now
            changed = False
            for stream in STREAMS:
                path = self.step_dir(step.id) / stream
                try:
                    with open(path, "rb") as handle:
                        handle.seek(step.shipped[stream])
                        data = handle.read(CHUNK)
                        while data:
                            step.shipped[stream] = self.client.upload_log(step.id, stream, step.shipped[stream], data)
                            changed = True
                            handle.seek(step.shipped[stream])
                            data = handle.read(CHUNK)
                except (OSError, httpx.HTTPError):
                    break
            if changed:
                self._save(step)

    def _flushed(self, step: _LocalStep) -> bool:
        for stream in STREAMS:
            try:
                if (self.step_dir(step.id) / stream).stat().st_size > step.shipped[stream]:
                    return False
            except OSError:
                return False
        return True

    def report(self) -> dict[str, StepReport]:
        return {
            s.id: StepReport(status=s.status, pid=s.pid, exit_code=s.exit_code, message=s.message,  # type: ignore[arg-type]
                             started_at=s.started_at, ended_at=s.ended_at,
                             logs_flushed=s.status != "RUNNING" and self._flushed(s))
            for s in self.steps.values()
        }
