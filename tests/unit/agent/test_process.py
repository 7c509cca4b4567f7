"""ManagedProcess on real processes: spawn, poll, adopt, stop (with its process group)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from corral.agent.process import ManagedProcess

ENV = {"PATH": "/usr/bin:/bin"}


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def procs() -> list[ManagedProcess]:
    """Processes a test started; killed at the end whatever happened."""
    started: list[ManagedProcess] = []
    yield started
    for proc in started:
        proc.signal_group(signal.SIGKILL)
        proc.poll()


def test_spawn_poll_and_stop_a_sleep(tmp_path: Path, procs: list[ManagedProcess]) -> None:
    log = tmp_path / "logs" / "sleep.log"
    pidfile = tmp_path / "sleep.pid"
    proc = ManagedProcess.spawn(["sleep", "60"], ENV, str(tmp_path), log, log, pidfile)
    procs.append(proc)
    assert proc.poll() is None
    assert os.getpgid(proc.pid) == proc.pid  # its own process group
    # Right after the fork the child may not have exec'd yet (its command line is then empty).
    deadline = time.monotonic() + 5
    while psutil.Process(proc.pid).cmdline() != ["sleep", "60"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert psutil.Process(proc.pid).cmdline() == ["sleep", "60"]
    adopted = ManagedProcess.adopt(pidfile)
    assert adopted is not None and adopted.pid == proc.pid and adopted.poll() is None
    started = time.monotonic()
    assert proc.stop(timeout=5) == -signal.SIGTERM
    assert time.monotonic() - started < 4  # sleep dies on SIGTERM: no wait for the timeout
    assert gone(proc.pid)
    assert ManagedProcess.adopt(pidfile) is None  # a dead process is not adopted
    assert adopted.poll() == -1  # an adopted process's exit code is unknown


def test_stop_kills_the_whole_process_group(tmp_path: Path, procs: list[ManagedProcess]) -> None:
    child_pid_file = tmp_path / "child.pid"
    # a leader that starts a background sleep (like a daemon's executors) and ignores SIGTERM
    script = f"trap '' TERM; sleep 60 & echo $! > {child_pid_file}; wait"
    log = tmp_path / "out.log"
    proc = ManagedProcess.spawn(["/bin/sh", "-c", script], ENV, str(tmp_path), log, log)
    procs.append(proc)
    assert wait_until(lambda: child_pid_file.exists() and child_pid_file.read_text().strip() != "")
    child = int(child_pid_file.read_text())
    assert psutil.Process(child).status() != psutil.STATUS_ZOMBIE
    assert os.getpgid(child) == proc.pid
    code = proc.stop(timeout=0.5)  # SIGTERM is ignored: SIGKILL after the timeout
    assert code == -signal.SIGKILL
    assert gone(proc.pid)
    assert wait_until(lambda: gone(child), 5)


def test_exit_code_and_output(tmp_path: Path, procs: list[ManagedProcess]) -> None:
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    proc = ManagedProcess.spawn(["/bin/sh", "-c", "echo to-out; echo to-err >&2; exit 7"], ENV, str(tmp_path), out, err)
    procs.append(proc)
    assert wait_until(lambda: proc.poll() is not None)
    assert proc.poll() == 7
    assert proc.stop(timeout=1) == 7  # stopping an ended process is harmless
    assert out.read_text() == "to-out\n"
    assert err.read_text() == "to-err\n"


def test_same_file_for_both_streams_appends(tmp_path: Path, procs: list[ManagedProcess]) -> None:
    log = tmp_path / "both.log"
    log.write_text("earlier run\n")
    proc = ManagedProcess.spawn(["/bin/sh", "-c", "echo a; echo b >&2"], ENV, str(tmp_path), log, log)
    procs.append(proc)
    assert wait_until(lambda: proc.poll() is not None)
    assert log.read_text().splitlines() == ["earlier run", "a", "b"]


def test_adopt_rejects_a_reused_pid(tmp_path: Path, procs: list[ManagedProcess]) -> None:
    proc = ManagedProcess.spawn(["sleep", "60"], ENV, str(tmp_path), tmp_path / "l", tmp_path / "l")
    procs.append(proc)
    pidfile = tmp_path / "stale.pid"
    pidfile.write_text(f'{{"pid": {proc.pid}, "create_time": {proc.create_time - 100}}}')
    assert ManagedProcess.adopt(pidfile) is None  # same pid, different start time: not ours
    pidfile.write_text("not json")
    assert ManagedProcess.adopt(pidfile) is None
    assert ManagedProcess.adopt(tmp_path / "missing.pid") is None
