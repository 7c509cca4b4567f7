"""The supervisor on real processes: restarts with backoff, FAILED after max_restarts."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import psutil
import pytest

from corral.agent.protocol import ComponentSpec, Probe, RestartPolicy
from corral.agent.supervisor import Supervisor

ENV = {"PATH": "/usr/bin:/bin"}


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, str, str, str | None]] = []

    def __call__(self, level: str, code: str, message: str, component: str | None) -> None:
        self.items.append((level, code, message, component))

    def codes(self, *wanted: str) -> list[str]:
        return [code for _, code, _, _ in self.items if not wanted or code in wanted]


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def supervisor(tmp_path: Path, events: Events):  # type: ignore[no-untyped-def]
    node_dir = tmp_path / "node"
    for sub in ("logs", "run", "data"):  # what the provider prepares for an agent
        (node_dir / sub).mkdir(parents=True)
    sup = Supervisor(node_dir, events)
    yield sup
    sup.stop_all()


def drive(sup: Supervisor, specs: list[ComponentSpec], until, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sup.sync(specs, ENV)
        if until():
            return
        time.sleep(0.02)
    raise AssertionError(f"supervisor did not get there: {sup.report()}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_crashing_component_is_restarted_then_failed(supervisor: Supervisor, events: Events, tmp_path: Path) -> None:
    spec = ComponentSpec(name="crasher", service="test", argv=["/bin/sh", "-c", "echo boom; exit 3"],
                         restart=RestartPolicy(max_restarts=2, window_seconds=60, backoff_seconds=0.05))
    started = time.monotonic()
    drive(supervisor, [spec], lambda: supervisor.failed() == ["crasher"])
    assert time.monotonic() - started < 10
    assert events.codes("COMPONENT_CRASHED", "COMPONENT_FAILED") == [
        "COMPONENT_CRASHED", "COMPONENT_CRASHED", "COMPONENT_FAILED"]
    crashed = [e for e in events.items if e[1] == "COMPONENT_CRASHED"]
    assert all(level == "WARN" and comp == "crasher" and "exited with code 3" in msg for level, _, msg, comp in crashed)
    level, _, message, component = next(e for e in events.items if e[1] == "COMPONENT_FAILED")
    assert (level, component) == ("ERROR", "crasher")
    assert "gave up after 2 restarts" in message
    assert "boom" in message  # the tail of the component's log
    log = tmp_path / "node" / "logs" / "crasher.log"
    assert log.read_text().splitlines() == ["boom"] * 3  # first start + 2 restarts
    report = supervisor.report()["crasher"]
    assert (report.status, report.restarts, report.pid) == ("FAILED", 2, None)
    # a FAILED component stays down
    for _ in range(10):
        supervisor.sync([spec], ENV)
        time.sleep(0.02)
    assert log.read_text().count("boom") == 3
    assert not supervisor.all_running()


def test_a_clean_exit_stays_stopped_when_the_policy_says_so(supervisor: Supervisor, events: Events,
                                                             tmp_path: Path) -> None:
    # A NodeManager the ResourceManager decommissioned exits 0: not restarted (and refused).
    spec = ComponentSpec(name="nm", service="test", argv=["/bin/sh", "-c", "echo done; exit 0"],
                         restart=RestartPolicy(backoff_seconds=0.05, restart_on_success=False))
    drive(supervisor, [spec], lambda: supervisor.report()["nm"].status == "STOPPED")
    for _ in range(10):
        supervisor.sync([spec], ENV)
        time.sleep(0.02)
    assert (tmp_path / "node" / "logs" / "nm.log").read_text().splitlines() == ["done"]
    assert events.codes("COMPONENT_CRASHED", "COMPONENT_EXITED") == ["COMPONENT_EXITED"]
    crash = spec.model_copy(update={"argv": ["/bin/sh", "-c", "exit 3"], "restart": RestartPolicy(
        backoff_seconds=0.05, max_restarts=1, restart_on_success=False)})
    drive(supervisor, [crash], lambda: supervisor.failed() == ["nm"])  # a new spec starts it; a crash still counts


def test_restart_waits_for_the_backoff(supervisor: Supervisor, events: Events) -> None:
    spec = ComponentSpec(name="slow", service="test", argv=["/bin/sh", "-c", "exit 1"],
                         restart=RestartPolicy(max_restarts=3, window_seconds=60, backoff_seconds=30))
    drive(supervisor, [spec], lambda: supervisor.report()["slow"].status == "RESTARTING")
    for _ in range(10):
        supervisor.sync([spec], ENV)
        time.sleep(0.01)
    report = supervisor.report()["slow"]
    assert (report.status, report.restarts, report.pid) == ("RESTARTING", 1, None)
    assert events.codes("COMPONENT_CRASHED") == ["COMPONENT_CRASHED"]
    assert "restart 1 in 30s" in (report.message or "")


def test_long_running_component_runs_and_stops(supervisor: Supervisor, events: Events, tmp_path: Path) -> None:
    spec = ComponentSpec(name="sleeper", service="test", argv=["sleep", "60"],
                         directories=[str(tmp_path / "node" / "data" / "made")])
    drive(supervisor, [spec], supervisor.all_running)
    pid = supervisor.report()["sleeper"].pid
    assert pid is not None
    assert (tmp_path / "node" / "data" / "made").is_dir()
    pidfile = tmp_path / "node" / "run" / "sleeper.pid"
    assert pidfile.exists()
    assert events.codes() == ["COMPONENT_RUNNING"]
    supervisor.sync([], ENV)  # no longer wanted: stopped
    assert supervisor.components == {}
    assert not pidfile.exists()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_component_waits_for_its_probe(supervisor: Supervisor, tmp_path: Path) -> None:
    port = free_port()
    spec = ComponentSpec(name="waiter", service="test", argv=["sleep", "60"],
                         wait_for=[Probe(kind="tcp", host="127.0.0.1", port=port)])
    supervisor.sync([spec], ENV)
    report = supervisor.report()["waiter"]
    assert (report.status, report.pid) == ("WAITING", None)
    assert f"tcp 127.0.0.1:{port}" in (report.message or "")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        drive(supervisor, [spec], supervisor.all_running, timeout=5)
    assert supervisor.report()["waiter"].pid is not None


def test_health_probe_gates_running(supervisor: Supervisor) -> None:
    port = free_port()
    spec = ComponentSpec(name="served", service="test", argv=["sleep", "60"],
                         health=Probe(kind="tcp", host="127.0.0.1", port=port))
    for _ in range(3):
        supervisor.sync([spec], ENV)
    assert supervisor.report()["served"].status == "STARTING"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        drive(supervisor, [spec], supervisor.all_running, timeout=5)
