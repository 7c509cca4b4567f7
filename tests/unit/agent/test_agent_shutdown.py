"""An agent that is shutting down (stopping daemons, copying its last logs to the LogUri)
keeps reporting, so the control plane does not take it for dead and kill it halfway."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from corral.agent import agent as agent_module
from corral.agent.protocol import NodePlan, NodeReport, ReportAck


class FakeControlPlane:
    def __init__(self) -> None:
        self.reports: list[tuple[float, str]] = []
        self.closed = False

    def fetch_plan(self, after: int, wait: float) -> NodePlan | None:
        time.sleep(min(wait, 0.2))
        return None

    def report(self, report: NodeReport) -> ReportAck:
        assert not self.closed, "reported through a closed client"
        self.reports.append((time.monotonic(), report.phase))
        return ReportAck(plan_version=0, last_event_seq=0)

    def close(self) -> None:
        self.closed = True


def test_heartbeats_continue_while_the_agent_shuts_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_module, "HEARTBEAT_SECONDS", 0.2)
    monkeypatch.setattr(agent_module.signal, "signal", lambda *_: None)  # run() is on a thread here
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "agent.token").write_text("t")
    config = tmp_path / "agent.json"
    config.write_text(json.dumps({"node_id": "n-1", "directory": str(tmp_path), "runtime_dir": str(tmp_path / "rt"),
                                  "control_url": "http://127.0.0.1:9", "cluster_id": "c-1"}))
    agent = agent_module.Agent(config)
    fake = FakeControlPlane()
    agent.client = fake  # type: ignore[assignment]
    flushing = threading.Event()

    def slow_flush(timeout: float) -> None:  # the last copies to the LogUri take a while
        flushing.set()
        time.sleep(1.5)

    monkeypatch.setattr(agent.archiver, "flush", slow_flush)
    runner = threading.Thread(target=agent.run)
    runner.start()
    time.sleep(0.5)
    agent.stop_requested.set()
    assert flushing.wait(5)
    started = time.monotonic()
    runner.join(10)
    assert not runner.is_alive()
    during = [t for t, phase in fake.reports if t >= started and phase == "STOPPING"]
    assert len(during) >= 3, fake.reports  # about one per 0.2 s of the 1.5 s flush
    assert fake.reports[-1][1] == "STOPPED" and fake.closed


def test_an_agent_running_as_root_warns_once_and_others_do_not() -> None:
    from corral.agent.agent import warn_if_root

    events: list[tuple[str, str, str, str | None]] = []
    assert warn_if_root(lambda *e: events.append(e), euid=1000) is False and events == []
    assert warn_if_root(lambda *e: events.append(e), euid=0) is True
    [(level, code, message, _)] = events
    assert (level, code) == ("WARN", "NODE_RUNS_AS_ROOT") and "unprivileged user" in message
