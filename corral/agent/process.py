"""A process the agent started or adopted after its own restart, in its own process group
(so stopping it also stops what it spawned: executors, Python workers, drivers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

from corral import pidfile


class ManagedProcess:
    def __init__(self, pid: int, create_time: float, popen: subprocess.Popen[bytes] | None = None):
        self.pid = pid
        self.create_time = create_time
        self._popen = popen
        self._exit_code: int | None = None

    @classmethod
    def spawn(cls, argv: list[str], env: dict[str, str], cwd: str, stdout: Path, stderr: Path,
              record: Path | None = None) -> "ManagedProcess":
        stdout.parent.mkdir(parents=True, exist_ok=True)
        with open(stdout, "ab") as out, open(stderr, "ab") if stderr != stdout else open(os.devnull, "wb") as err:
            popen = subprocess.Popen(
                argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                stderr=err if stderr != stdout else subprocess.STDOUT, start_new_session=True,
            )
        try:
            create_time = psutil.Process(popen.pid).create_time()
        except psutil.Error:  # already gone; poll() will say how it ended
            create_time = time.time()
        proc = cls(popen.pid, create_time, popen)
        if record is not None:
            try:
                record.write_text(json.dumps({"pid": proc.pid, "create_time": create_time}))
            except OSError:
                proc.stop(0)  # an untracked process is worse than none
                raise
        return proc

    @classmethod
    def adopt(cls, record: Path) -> "ManagedProcess | None":
        """The process recorded in ``record`` (a pid file) if it still runs."""
        info = pidfile.read_live(record)
        return cls(info["pid"], info["create_time"]) if info else None

    def poll(self) -> int | None:
        """The exit code once the process has ended (-1 if it was adopted: unknown)."""
        if self._exit_code is not None:
            return self._exit_code
        if self._popen is not None:
            self._exit_code = self._popen.poll()
            return self._exit_code
        if pidfile.is_same_process(self.pid, self.create_time):
            return None
        self._exit_code = -1
        return self._exit_code

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout: float) -> int | None:
        """SIGTERM the group, SIGKILL it after ``timeout``; returns the exit code."""
        if self.poll() is None:
            self.signal_group(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
        # Group members (executors, python workers) may outlive the leader.
        self.signal_group(signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.poll()
