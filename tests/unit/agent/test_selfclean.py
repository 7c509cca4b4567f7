"""An agent told that its node is gone (410, or 404 repeatedly) stops, and where its
provider asked for it (``self_clean``), removes its crontab line and node directory,
keeping its logs aside for the provider; a refused token or a plan that says terminate
(the provider cleans then) leaves everything in place."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from corral.agent import agent as agent_module
from corral.agent import selfclean
from corral.agent.protocol import NodePlan, NodeReport, ReportAck

FAKE_CRONTAB = """#!/bin/bash
if [ "$1" = "-l" ]; then [ -f "$CRON_TABLE" ] || exit 1; cat "$CRON_TABLE"; exit 0; fi
if [ "$1" = "-" ]; then cat > "$CRON_TABLE"; exit 0; fi
exit 2
"""


@pytest.fixture
def crontab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "crontab").write_text(FAKE_CRONTAB)
    (bin_dir / "crontab").chmod(0o755)
    table = tmp_path / "crontab.txt"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("CRON_TABLE", str(table))
    return table


def _node(tmp_path: Path, node_id: str = "n-gone0001") -> tuple[Path, dict[str, object]]:
    root = tmp_path / "nodes" / "c-1" / node_id
    for sub in ("run", "logs", "data"):
        (root / sub).mkdir(parents=True)
    (root / "run" / "agent.token").write_text("t")
    (root / "logs" / "agent.log").write_text("agent said things\n")
    section = {"cron_tag": f"# corral-node {node_id}", "crontab_lock": str(tmp_path / "locks" / "crontab.lock"),
               "orphaned_logs": str(tmp_path / "orphaned-logs" / "c-1" / node_id)}
    return root, section


def test_clean_up_removes_the_line_and_directory_and_keeps_the_logs(tmp_path: Path, crontab: Path) -> None:
    root, section = _node(tmp_path)
    crontab.write_text("0 3 * * * backup\n@reboot /bin/sh x/agent-start.sh # corral-node n-gone0001\n"
                       "@reboot /bin/sh y/agent-start.sh # corral-node n-other001\n")
    assert selfclean.clean_up(root, section) is True
    assert crontab.read_text() == "0 3 * * * backup\n@reboot /bin/sh y/agent-start.sh # corral-node n-other001\n"
    assert not root.exists() and not root.parent.exists()
    assert (Path(str(section["orphaned_logs"])) / "agent.log").read_text() == "agent said things\n"


def test_without_a_section_nothing_is_removed(tmp_path: Path, crontab: Path) -> None:
    root, _ = _node(tmp_path)
    assert selfclean.clean_up(root, None) is False
    assert root.exists()


class GoneControlPlane:
    def __init__(self, status: int) -> None:
        self.status = status

    def _gone(self) -> None:
        request = httpx.Request("POST", "http://cp/agent/v1/nodes/n/report")
        raise httpx.HTTPStatusError("gone", request=request, response=httpx.Response(self.status, request=request))

    def fetch_plan(self, after: int, wait: float) -> NodePlan | None:
        time.sleep(0.05)
        self._gone()
        return None

    def report(self, report: NodeReport) -> ReportAck:
        self._gone()
        raise AssertionError

    def close(self) -> None:
        pass


def _run_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int) -> Path:
    monkeypatch.setattr(agent_module, "HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(agent_module.signal, "signal", lambda *_: None)
    root, section = _node(tmp_path)
    config = root / "agent.json"
    config.write_text(json.dumps({"node_id": "n-gone0001", "directory": str(root), "runtime_dir": str(tmp_path / "rt"),
                                  "control_url": "http://127.0.0.1:9", "cluster_id": "c-1", "self_clean": section}))
    agent = agent_module.Agent(config)
    agent.client = GoneControlPlane(status)  # type: ignore[assignment]
    monkeypatch.setattr(agent.archiver, "flush", lambda timeout: None)
    runner = threading.Thread(target=agent.run)
    runner.start()
    runner.join(20)
    assert not runner.is_alive()
    return root


@pytest.mark.parametrize("status", [410, 404])
def test_an_agent_whose_node_is_gone_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crontab: Path,
                                               status: int) -> None:
    crontab.write_text("@reboot /bin/sh x # corral-node n-gone0001\n")
    root = _run_agent(tmp_path, monkeypatch, status)
    assert not root.exists()
    assert crontab.read_text() == ""


def test_a_refused_token_stops_the_agent_but_removes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             crontab: Path) -> None:
    crontab.write_text("@reboot /bin/sh x # corral-node n-gone0001\n")
    root = _run_agent(tmp_path, monkeypatch, 401)
    assert root.exists() and "n-gone0001" in crontab.read_text()
