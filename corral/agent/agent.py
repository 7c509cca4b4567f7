"""The node agent: pulls its node's plan from the control plane and makes it true.

Four threads: the plan poller (long-polls the plan), the reporter (sends a report on
every change and a heartbeat every couple of seconds), the meter (measures the node every
``MetricsSpec.interval_seconds`` when the plan asks for it, ``corral.agent.nodemetrics``)
and the main loop (deploys the runtime, writes config files, runs bootstrap actions,
supervises daemons, runs steps).
The control plane may be down at any time: the agent keeps its node running, retries,
and re-attaches when it is back.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

import httpx

from corral.agent.bootstrap import BootstrapFailed, run_bootstrap_actions
from corral.agent.client import ControlPlaneClient
from corral.agent.hooks import HookRunner
from corral.agent.logarchive import LogArchiver
from corral.agent.nodemetrics import NodeMeter
from corral.agent import selfclean
from corral.agent.protocol import AgentEvent, NodeMetrics, NodePlan, NodeReport
from corral.agent.runtime import DeployError, deploy, substitute, substitute_all
from corral.agent.steps import StepRunner
from corral.agent.supervisor import EventSink, Supervisor
from corral.formats import LITERAL

log = logging.getLogger("corral.agent")
HEARTBEAT_SECONDS = 2.0
PLAN_WAIT_SECONDS = 20.0
LOG_ARCHIVE_SECONDS = 45.0  # at shutdown, for the last copies to the LogUri
GONE_GRACE = 3  # consecutive "this node does not exist" answers before the agent stops
METER_IDLE_SECONDS = 1.0  # how soon the meter looks again while the plan asks for no metrics
MIN_METER_SECONDS = 1.0  # a plan's interval is never shorter: measuring costs CPU on every node


def warn_if_root(emit: EventSink, euid: int | None = None) -> bool:
    """Daemons, steps and YARN containers all run as the agent's own OS user: without
    Hadoop's native container-executor (not on Maven Central) a NodeManager runs every
    container as itself, so one user for all is what Hadoop allows. Their Hadoop identity
    is ``hadoop`` (HDFS's superuser, as on EMR) whatever that OS user is. An agent running
    as root says so once, as a warning event: run Corral as an unprivileged user."""
    if (os.geteuid() if euid is None else euid) != 0:
        return False
    emit("WARN", "NODE_RUNS_AS_ROOT", "the node agent runs as root, so its daemons and steps do too (Hadoop's "
         "container-executor is not available to run them as other users): run Corral as an unprivileged user", None)
    return True


class Agent:
    def __init__(self, config_path: Path):
        cfg = json.loads(config_path.read_text())
        self.node_id: str = cfg["node_id"]
        self.dir = Path(cfg["directory"])
        self.runtime_dir = Path(cfg["runtime_dir"])
        self.self_clean: dict[str, object] | None = cfg.get("self_clean")  # corral.agent.selfclean
        self.gone = False  # the control plane said this node no longer exists
        token = (self.dir / "run" / "agent.token").read_text().strip()
        self.client = ControlPlaneClient(cfg["control_url"], cfg["cluster_id"], self.node_id, token)
        self.plan: NodePlan | None = None
        self.values: dict[str, str] | None = None  # runtime placeholders, once deployed
        self.applied_version = 0
        self.phase = "DEPLOYING"
        self.error: str | None = None
        self.error_code: str | None = None
        self._events: list[AgentEvent] = []
        self._events_lock = threading.Lock()
        self._seq_file = self.dir / "run" / "event.seq"
        self._seq = int(self._seq_file.read_text()) if self._seq_file.exists() else 0
        self.supervisor = Supervisor(self.dir, self.emit)
        self.steps = StepRunner(self.dir, self.client, self.emit)
        self.archiver = LogArchiver(self.dir, self.node_id, self.emit)
        self.hooks = HookRunner(self.dir / "logs" / "hooks.log", self.emit)
        self.stop_requested = threading.Event()
        # Heartbeats go on while the agent shuts down (stopping daemons, copying the last
        # logs to the LogUri): without them the control plane takes a silent agent for a
        # dead one and kills it halfway through.
        self.stopped = threading.Event()
        self._reporter_thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._report_now = threading.Event()
        self._snapshot: NodeReport | None = None
        self._snapshot_dump: dict[str, object] | None = None
        self._gone = 0
        # The newest measurement of the node, attached to every report as it is sent (never
        # part of the snapshot: a new measurement alone does not make a report urgent).
        self._meter: NodeMeter | None = None
        self._metrics: NodeMetrics | None = None
        self._meter_error: str | None = None

    # -- events and reports -------------------------------------------------------------------

    def emit(self, level: str, code: str, message: str, component: str | None) -> None:
        with self._events_lock:
            self._seq += 1
            self._seq_file.write_text(str(self._seq))
            self._events.append(AgentEvent(seq=self._seq, time=time.time(), level=level, code=code,  # type: ignore[arg-type]
                                           message=message, component=component))
        self._report_now.set()

    def _take_snapshot(self) -> None:
        snap = NodeReport(
            node_id=self.node_id, agent_pid=os.getpid(), plan_version=self.applied_version,
            phase=self.phase, error=self.error, error_code=self.error_code,  # type: ignore[arg-type]
            runtime={k: v for k, v in (self.values or {}).items()},
            components=self.supervisor.report(), steps=self.steps.report(),
        )
        dump = snap.model_dump()
        if dump != self._snapshot_dump:  # the previous dump is kept: this runs every 0.1 s when busy
            self._report_now.set()
        self._snapshot, self._snapshot_dump = snap, dump

    def _send_report(self) -> bool:
        if self._snapshot is None:
            return False
        with self._events_lock:
            events = list(self._events)
        plan = self.plan
        metrics = self._metrics if plan is not None and plan.metrics is not None else None
        report = self._snapshot.model_copy(update={"events": events, "metrics": metrics})
        try:
            ack = self.client.report(report)
        except httpx.HTTPStatusError as exc:
            self._note_gone(exc.response.status_code)
            return False
        except httpx.HTTPError:
            return False
        self._gone = 0
        with self._events_lock:
            self._events = [e for e in self._events if e.seq > ack.last_event_seq]
        return True

    def _note_gone(self, status: int) -> None:
        """410: the node was terminated; 401/404: the control plane does not know it. Either
        stops the agent; 410 and 404 (never a refused token) also have it clean up after
        itself (``corral.agent.selfclean``)."""
        if status in (401, 404):
            self._gone += 1
        if status == 410 or self._gone >= GONE_GRACE:
            log.warning("control plane answered %s for this node: stopping", status)
            self.gone = self.gone or status in (404, 410)
            self.stop_requested.set()
            self._wake.set()

    def _reporter(self) -> None:
        while not self.stopped.is_set():
            self._report_now.wait(HEARTBEAT_SECONDS)
            self._report_now.clear()
            if not self._send_report():
                time.sleep(0.5)

    # -- node metrics ---------------------------------------------------------------------------

    def _meter_roots(self) -> list[int]:
        """The pids whose process trees are the node: the agent, its daemons (an adopted
        one is no child of this agent) and its running steps."""
        return [os.getpid(), *self.supervisor.pids(), *self.steps.pids()]

    def measure(self) -> float:
        """Take a measurement if the plan asks for them; the seconds until the next one.
        A failure is logged (once per distinct error) and leaves no measurement: it never
        stops the reports."""
        plan = self.plan
        spec = plan.metrics if plan is not None else None
        if spec is None:
            self._meter, self._metrics = None, None
            return METER_IDLE_SECONDS
        try:
            if self._meter is None or self._meter.spec != spec:  # a new spec starts without rates
                self._meter = NodeMeter(spec, self.dir, self._meter_roots)
            self._metrics = self._meter.measure()
            self._meter_error = None
        except Exception as exc:  # noqa: BLE001 - metrics are never worth a report
            self._metrics = None
            if repr(exc) != self._meter_error:
                log.exception("measuring the node failed")
            self._meter_error = repr(exc)
        return max(MIN_METER_SECONDS, spec.interval_seconds)

    def _meter_loop(self) -> None:
        while not self.stopped.is_set():
            self.stopped.wait(self.measure())

    def _plan_poller(self) -> None:
        backoff = 0.2
        while not self.stop_requested.is_set():
            after = self.plan.version if self.plan else 0
            try:
                plan = self.client.fetch_plan(after, PLAN_WAIT_SECONDS)
                backoff = 0.2
                self._gone = 0
            except httpx.HTTPStatusError as exc:
                self._note_gone(exc.response.status_code)
                time.sleep(backoff)
                continue
            except httpx.HTTPError:
                time.sleep(backoff)
                backoff = min(2.0, backoff * 2)
                continue
            if plan is not None:
                self.plan = plan
                self._wake.set()

    # -- applying the plan ------------------------------------------------------------------

    def _set_phase(self, phase: str) -> None:
        if phase != self.phase:
            self.phase = phase
            self._take_snapshot()

    def _write_files(self, plan: NodePlan) -> None:
        """Write the plan's files that differ from what is on disk, then queue the hooks of
        those that changed; after an agent start, every hook once (``FileHook``)."""
        assert self.values is not None
        first = self.applied_version == 0
        hooks = []
        for spec in plan.files:
            path = Path(spec.path)
            # Runtime paths are escaped as the file's format escapes values (corral.formats).
            content = substitute(spec.content, self.values, LITERAL.get(spec.format, str)).encode("utf-8")
            if path.exists() and path.read_bytes() == content:
                if first:
                    hooks += spec.on_change
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(content)
            tmp.chmod(spec.mode)
            tmp.replace(path)
            hooks += spec.on_change
        if hooks:
            env = self._env(plan)
            for hook in hooks:
                self.hooks.queue(hook.model_copy(update={"argv": substitute_all(hook.argv, self.values)}), env)

    def _env(self, plan: NodePlan) -> dict[str, str]:
        assert self.values is not None
        values = {**self.values, "PATH": os.environ.get("PATH", "")}
        env = dict(os.environ)
        env.update({k: v for k, v in self.values.items() if k in ("JAVA_HOME", "PYTHONPATH")})
        env.update({k: substitute(v, values).replace("${PATH}", values["PATH"]) for k, v in plan.base_env.items()})
        return env

    def tick(self) -> None:
        plan = self.plan
        if plan is None or self.phase == "FAILED":
            return
        if plan.terminate:
            self.stop_requested.set()
            return
        try:
            if self.values is None:
                self._set_phase("DEPLOYING")
                self.values = deploy(plan.runtime, self.runtime_dir, self.client, self.emit)
            if plan.version != self.applied_version:
                if self.phase == "DEPLOYING":
                    self._set_phase("CONFIGURING")
                self._write_files(plan)
                self.applied_version = plan.version
            env = self._env(plan)
            if plan.log_archive_uri and self.archiver.prefix is None:
                self.archiver.last_node_upload = time.time()
            self.archiver.configure(plan.log_archive_uri, env)
            if plan.bootstrap and self.phase in ("DEPLOYING", "CONFIGURING", "BOOTSTRAPPING"):
                self._set_phase("BOOTSTRAPPING")
                run_bootstrap_actions(plan.bootstrap, self.dir, self.client, env, self.stop_requested, self.emit)
            components = [c.model_copy(update={"argv": substitute_all(c.argv, self.values),
                                               "env": substitute_all(c.env, self.values)}) for c in plan.components]
            self.supervisor.sync(components, env)
            self._set_phase("RUNNING" if self.supervisor.all_running() else "STARTING")
            steps = [s.model_copy(update={"argv": substitute_all(s.argv, self.values),
                                          "env": substitute_all(s.env, self.values)}) for s in plan.steps]
            self.steps.sync(steps, env)
            self.steps.ship_logs()
            self._archive_logs()
        except (DeployError, BootstrapFailed) as exc:
            self.error = str(exc)
            self.error_code = "BOOTSTRAP_FAILURE" if isinstance(exc, BootstrapFailed) else "DEPLOY_FAILURE"
            self.emit("ERROR", "NODE_FAILED", self.error, None)
            self._set_phase("FAILED")
        self._take_snapshot()

    def _archive_logs(self) -> None:
        if self.archiver.prefix is None:  # no LogUri: nothing to do on every tick
            return
        for step_id, report in self.steps.report().items():
            if report.status != "RUNNING":
                self.archiver.step_finished(step_id, self.steps.step_dir(step_id))
        self.archiver.tick(time.time())

    def shutdown(self) -> None:
        self._set_phase("STOPPING")
        self.hooks.stop()
        self.steps.stop_all()
        self.supervisor.stop_all()
        self.steps.ship_logs(force=True)
        self._archive_logs()
        self.archiver.flush(timeout=LOG_ARCHIVE_SECONDS)
        self._set_phase("STOPPED")
        self._take_snapshot()
        self.stopped.set()
        self._report_now.set()
        if self._reporter_thread is not None:
            self._reporter_thread.join(timeout=5)
        for _ in range(3):
            if self._send_report():
                break
            time.sleep(0.3)
        self.client.close()

    def run(self) -> None:
        def _on_signal(signum: int, _frame: object) -> None:
            self.stop_requested.set()
            self._wake.set()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        warn_if_root(self.emit)
        self._take_snapshot()
        threading.Thread(target=self._plan_poller, daemon=True, name="plan-poller").start()
        self._reporter_thread = threading.Thread(target=self._reporter, daemon=True, name="reporter")
        self._reporter_thread.start()
        threading.Thread(target=self._meter_loop, daemon=True, name="meter").start()
        while not self.stop_requested.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the agent must outlive any single failure
                log.exception("agent tick failed")
            # Tight while something changes (daemons starting, steps running), lazy when idle.
            busy = self.phase != "RUNNING" or bool(self.steps.procs)
            self._wake.wait(0.1 if busy else 0.5)
            self._wake.clear()
        self.shutdown()
        if self.gone and selfclean.clean_up(self.dir, self.self_clean):  # type: ignore[arg-type]
            log.warning("node %s no longer exists: its crontab line and directory are removed", self.node_id)
