"""The log archiver's own logic, with a stand-in ``bin/hadoop`` that records its calls
(the copy to a real object store is tested in tests/integration/test_data.py)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from corral.agent.logarchive import LogArchiver


def fake_node(tmp_path: Path, fail: bool = False) -> Path:
    """A node whose ``bin/hadoop`` records each call, and for each local directory it is
    given, the files under it (the staging tree is gone after the call)."""
    node = tmp_path / "node"
    (node / "bin").mkdir(parents=True)
    (node / "logs").mkdir()
    (node / "logs" / "namenode.log").write_text("nn\n")
    calls = tmp_path / "calls.txt"
    script = node / "bin" / "hadoop"
    script.write_text("#!/bin/bash\n"
                      f"echo \"$* | conf=${{HADOOP_CONF_DIR:-node}} | opts=$HADOOP_CLIENT_OPTS\" >> {calls}\n"
                      f'for a in "$@"; do [ -d "$a" ] && (cd "$a/.." && find "$(basename "$a")" -type f | sort '
                      f'| sed "s/^/  file /") >> {calls}; done; true\n'
                      + ("echo 'put: s3a://lake/x: Forbidden' >&2; exit 1\n" if fail else ""))
    script.chmod(0o755)
    return node


def test_step_and_node_logs_are_copied_in_one_merge_even_after_the_step_directory_is_gone(tmp_path: Path) -> None:
    node = fake_node(tmp_path)
    events: list[tuple[str, str, str]] = []
    archiver = LogArchiver(node, "n-1", lambda lvl, code, msg, comp: events.append((lvl, code, msg)))
    archiver.configure("s3a://lake/logs/c-1/", {"HADOOP_CONF_DIR": "/master/conf", "PATH": "/usr/bin:/bin"})
    for step in ("s-1", "s-2"):
        step_dir = node / "steps" / step
        step_dir.mkdir(parents=True)
        (step_dir / "stdout").write_text("out\n")
        (step_dir / "stderr").write_text("err\n")
        archiver.step_finished(step, step_dir)
        archiver.step_finished(step, step_dir)  # once per step
        shutil.rmtree(step_dir)  # the agent forgets the step; the held links remain
    archiver.flush(timeout=20)
    lines = (tmp_path / "calls.txt").read_text().splitlines()
    calls = [line for line in lines if not line.startswith("  file ")]
    uploaded = {line.split()[1] for line in lines if line.startswith("  file ")}
    assert calls[0].startswith("fs -mkdir -p s3a://lake/logs/c-1 | conf=node")  # the node's own conf, once
    assert all(c.startswith("fs -put -f ") and c.split(" | ")[0].endswith(" s3a://lake/logs/c-1") for c in calls[1:])
    assert "opts=-XX:TieredStopAtLevel=1" in calls[0]  # a short-lived client JVM
    assert uploaded == {"steps/s-1/stdout", "steps/s-1/stderr", "steps/s-2/stdout", "steps/s-2/stderr", "node/n-1/namenode.log"}
    assert 2 <= len(calls) <= 4 and events == []  # batched: never one JVM per file or per directory
    assert not (node / "run" / "log-archive" / "s-1").exists()  # the held copies are released
    assert not (node / "run" / "log-archive-upload").exists()


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
