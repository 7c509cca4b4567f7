"""The log archiver's own logic, with a stand-in ``bin/hadoop`` that records its calls
(the copy to a real object store is tested in tests/integration/test_data.py)."""

from __future__ import annotations

import time
from pathlib import Path

from corral.agent.logarchive import LogArchiver


def fake_node(tmp_path: Path, fail: bool = False) -> Path:
    node = tmp_path / "node"
    (node / "bin").mkdir(parents=True)
    (node / "logs").mkdir()
    (node / "logs" / "namenode.log").write_text("nn\n")
    calls = tmp_path / "calls.txt"
    script = node / "bin" / "hadoop"
    script.write_text("#!/bin/bash\n"
                      f"echo \"$* | conf=${{HADOOP_CONF_DIR:-node}} | ls=$(ls \"${{@: -2:1}}\" 2>&1 | head -1)\" >> {calls}\n"
                      + ("echo 'put: s3a://lake/x: Forbidden' >&2; exit 1\n" if fail else ""))
    script.chmod(0o755)
    return node


def test_step_logs_are_copied_even_after_the_step_directory_is_gone(tmp_path: Path) -> None:
    node = fake_node(tmp_path)
    events: list[tuple[str, str, str]] = []
    archiver = LogArchiver(node, "n-1", lambda lvl, code, msg, comp: events.append((lvl, code, msg)))
    archiver.configure("s3a://lake/logs/c-1/", {"HADOOP_CONF_DIR": "/master/conf", "PATH": "/usr/bin:/bin"})
    step_dir = node / "steps" / "s-1"
    step_dir.mkdir(parents=True)
    (step_dir / "stdout").write_text("out\n")
    (step_dir / "stderr").write_text("err\n")
    archiver.step_finished("s-1", step_dir)
    archiver.step_finished("s-1", step_dir)  # once per step
    archiver.flush(timeout=20)
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert calls[0].startswith("fs -mkdir -p s3a://lake/logs/c-1/steps/s-1 | conf=node")  # the node's own conf
    assert calls[1].startswith("fs -put -f ") and calls[1].split(" | ")[0].endswith("stderr s3a://lake/logs/c-1/steps/s-1")
    assert any(c.startswith("fs -put -f ") and "namenode.log s3a://lake/logs/c-1/node/n-1" in c for c in calls)
    assert sum(1 for c in calls if "steps/s-1" in c) == 2 and events == []
    assert not (node / "run" / "log-archive" / "s-1").exists()  # the held copies are released


def test_a_failing_store_is_one_warning_and_never_blocks(tmp_path: Path) -> None:
    node = fake_node(tmp_path, fail=True)
    events: list[tuple[str, str, str]] = []
    archiver = LogArchiver(node, "n-1", lambda lvl, code, msg, comp: events.append((lvl, code, msg)))
    archiver.configure("s3a://lake/logs/c-1", {"PATH": "/usr/bin:/bin"})
    archiver.last_node_upload = 0.0
    archiver.tick(time.time())
    archiver.tick(time.time())  # within the interval: nothing more
    archiver.flush(timeout=20)
    assert [(lvl, code) for lvl, code, _ in events] == [("WARN", "LOG_ARCHIVE_FAILED")]
    assert "Forbidden" in events[0][2]


def test_without_a_log_uri_nothing_happens(tmp_path: Path) -> None:
    node = fake_node(tmp_path)
    archiver = LogArchiver(node, "n-1", lambda *a: None)
    archiver.configure(None, {})
    archiver.step_finished("s-1", node)
    archiver.tick(time.time())
    archiver.flush(timeout=1)
    assert not (tmp_path / "calls.txt").exists()
