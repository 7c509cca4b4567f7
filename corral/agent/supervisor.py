"""Starts, health-checks, restarts and stops the daemons of one node.

A component goes WAITING (its ``wait_for`` probes do not answer yet) -> STARTING (process
up, health probe not yet passing) -> RUNNING. A component that exits is restarted after a
backoff, at most ``max_restarts`` times per window; beyond that it is FAILED. Every exit
and restart is an event the agent reports.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx

from corral.agent.process import ManagedProcess
from corral.agent.protocol import ComponentReport, ComponentSpec, Probe

EventSink = Callable[[str, str, str, str | None], None]  # level, code, message, component
# One client for every HTTP probe: a new one per request (httpx.get) costs ~50 ms of CPU
# building its SSL context, and a starting daemon is probed up to ten times a second.
_HTTP = httpx.Client()


def probe_ok(probe: Probe, timeout: float = 0.5) -> bool:
    if probe.kind == "tcp":
        try:
            with socket.create_connection((probe.host, probe.port), timeout=timeout):
                return True
        except OSError:
            return False
    try:
        return _HTTP.get(f"http://{probe.host}:{probe.port}{probe.path}", timeout=timeout).status_code < 500
    except httpx.HTTPError:
        return False


def tail(path: Path, lines: int = 20, max_bytes: int = 8192) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class _Component:
    spec: ComponentSpec
    status: str = "WAITING"
    process: ManagedProcess | None = None
    restarts: list[float] = field(default_factory=list)
    restart_at: float = 0.0
    message: str | None = None
    finished: bool = False  # exited 0 with restart_on_success False: not started again


class Supervisor:
    def __init__(self, node_dir: Path, emit: EventSink):
        self.node_dir = node_dir
        self.emit = emit
        self.components: dict[str, _Component] = {}

    def _pidfile(self, name: str) -> Path:
        return self.node_dir / "run" / f"{name}.pid"

    def _log(self, name: str) -> Path:
        return self.node_dir / "logs" / f"{name}.log"

    def sync(self, specs: list[ComponentSpec], env: dict[str, str]) -> None:
        """Bring the running daemons in line with ``specs`` (already placeholder-free)."""
        wanted = {s.name: s for s in specs}
        for name in list(self.components):
            if name not in wanted:
                self._stop(self.components.pop(name))
        for name, spec in wanted.items():
            comp = self.components.get(name)
            if comp is None:
                comp = self.components[name] = _Component(spec)
                adopted = ManagedProcess.adopt(self._pidfile(name))
                if adopted is not None:  # the agent restarted; its daemons kept running
                    comp.process, comp.status = adopted, "STARTING"
                    self.emit("INFO", "COMPONENT_ADOPTED", f"{name} (pid {adopted.pid}) adopted after agent restart", name)
            elif comp.spec != spec and (comp.process is not None or comp.finished):
                self.emit("INFO", "COMPONENT_RECONFIGURED", f"{name} restarts with a new configuration", name)
                self._stop(comp)
                comp.spec, comp.status, comp.finished = spec, "WAITING", False
            comp.spec = spec
            self._advance(comp, env)

    def _advance(self, comp: _Component, env: dict[str, str]) -> None:
        name, now = comp.spec.name, time.time()
        if comp.status == "FAILED" or comp.finished:
            return
        if comp.process is not None:
            code = comp.process.poll()
            if code is None:
                if comp.status == "STARTING" and (comp.spec.health is None or probe_ok(comp.spec.health)):
                    comp.status, comp.message = "RUNNING", None
                    self.emit("INFO", "COMPONENT_RUNNING", f"{name} is running (pid {comp.process.pid})", name)
                return
            self._on_exit(comp, code, now)
            return
        if comp.status == "RESTARTING" and now < comp.restart_at:
            return
        pending = [p for p in comp.spec.wait_for if not probe_ok(p)]
        if pending:
            comp.status, comp.message = "WAITING", "waiting for " + ", ".join(p.describe() for p in pending)
            return
        for directory in comp.spec.directories:
            Path(directory).mkdir(parents=True, exist_ok=True)
        full_env = {**env, **comp.spec.env}
        log = self._log(name)
        comp.process = ManagedProcess.spawn(comp.spec.argv, full_env, str(self.node_dir), log, log, self._pidfile(name))
        comp.status, comp.message = "STARTING", None

    def _on_exit(self, comp: _Component, code: int, now: float) -> None:
        name = comp.spec.name
        comp.process = None
        policy = comp.spec.restart
        comp.restarts = [t for t in comp.restarts if now - t < policy.window_seconds]
        how = "was killed or died" if code < 0 else f"exited with code {code}"
        if code == 0 and not policy.restart_on_success:
            comp.status, comp.finished = "STOPPED", True
            comp.message = f"{name} exited by itself (code 0): not restarted"
            self._pidfile(name).unlink(missing_ok=True)
            self.emit("INFO", "COMPONENT_EXITED", comp.message, name)
            return
        if len(comp.restarts) >= policy.max_restarts:
            comp.status = "FAILED"
            comp.message = f"{name} {how}; gave up after {policy.max_restarts} restarts in {policy.window_seconds}s"
            self.emit("ERROR", "COMPONENT_FAILED", comp.message + "\n" + tail(self._log(name), 10), name)
            return
        delay = min(30.0, policy.backoff_seconds * (2 ** len(comp.restarts)))
        comp.restarts.append(now)
        comp.status, comp.restart_at = "RESTARTING", now + delay
        comp.message = f"{how}; restart {len(comp.restarts)} in {delay:.0f}s"
        self.emit("WARN", "COMPONENT_CRASHED", f"{name} {how}; restarting in {delay:.1f}s", name)

    def _stop(self, comp: _Component) -> None:
        if comp.process is not None:
            comp.process.stop(comp.spec.stop_timeout)
            comp.process = None
        self._pidfile(comp.spec.name).unlink(missing_ok=True)
        comp.status = "STOPPED"

    def stop_all(self) -> None:
        # Compute daemons first, masters last, so workers do not log a lost master.
        for comp in reversed(list(self.components.values())):
            self._stop(comp)

    def all_running(self) -> bool:
        return all(c.status == "RUNNING" for c in self.components.values())

    def failed(self) -> list[str]:
        return [n for n, c in self.components.items() if c.status == "FAILED"]

    def pids(self) -> list[int]:
        """The pid of each daemon that runs, started or adopted. Read by the agent's meter
        thread: the dict is copied first (one step under the GIL) as ``sync`` may change it."""
        processes = [c.process for c in list(self.components.values())]
        return [p.pid for p in processes if p is not None]

    def report(self) -> dict[str, ComponentReport]:
        return {
            name: ComponentReport(status=c.status, pid=c.process.pid if c.process else None,  # type: ignore[arg-type]
                                  restarts=len(c.restarts), message=c.message)
            for name, c in self.components.items()
        }
