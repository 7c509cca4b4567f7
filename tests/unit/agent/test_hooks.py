"""File hooks: run after a change, retried until they succeed, again when queued meanwhile."""

from __future__ import annotations

import time
from pathlib import Path

from corral.agent.hooks import HookRunner
from corral.agent.protocol import FileHook, Probe


def _wait(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_failing_hook_is_retried_until_it_succeeds(tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    runs = tmp_path / "runs"
    script = f"echo x >> {runs}; test $(wc -l < {runs}) -ge 2"  # fails once, then succeeds
    runner = HookRunner(tmp_path / "hooks.log", lambda level, code, msg, comp: events.append((level, code)))
    try:
        runner.queue(FileHook(argv=["/bin/sh", "-c", script]), {"PATH": "/usr/bin:/bin"})
        _wait(lambda: ("INFO", "FILE_HOOK_SUCCEEDED") in events)
    finally:
        runner.stop()
    assert runs.read_text().count("x") == 2
    assert events == [("WARN", "FILE_HOOK_FAILED"), ("INFO", "FILE_HOOK_SUCCEEDED")]
    assert "/bin/sh -c" in (tmp_path / "hooks.log").read_text()


def test_a_hook_waits_for_its_probe(tmp_path: Path) -> None:
    out = tmp_path / "out"
    runner = HookRunner(tmp_path / "hooks.log", lambda *a: None)
    try:
        # Nothing listens on the port: the hook does not run (no failure either).
        runner.queue(FileHook(argv=["/bin/sh", "-c", f"touch {out}"],
                              wait_for=Probe(kind="tcp", host="127.0.0.1", port=1)), {"PATH": "/usr/bin:/bin"})
        time.sleep(1.5)
        assert not out.exists() and runner.pending() == 1
    finally:
        runner.stop()


def test_a_hook_queued_again_runs_again(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runner = HookRunner(tmp_path / "hooks.log", lambda *a: None)
    hook = FileHook(argv=["/bin/sh", "-c", f"echo x >> {runs}; sleep 0.3"])
    try:
        runner.queue(hook, {"PATH": "/usr/bin:/bin"})
        _wait(lambda: runs.exists())
        runner.queue(hook, {"PATH": "/usr/bin:/bin"})  # while it runs: the file changed again
        runner.queue(hook, {"PATH": "/usr/bin:/bin"})  # still one pending run, not two
        _wait(lambda: runs.read_text().count("x") == 2 and runner.pending() == 0)
        time.sleep(0.5)
    finally:
        runner.stop()
    assert runs.read_text().count("x") == 2
