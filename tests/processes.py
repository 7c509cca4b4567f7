"""Stopping the servers the tests start (control planes, s3proxy, MariaDB)."""

from __future__ import annotations

import subprocess


def stop_child(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM ``proc``, SIGKILL it if it is still there after ``grace`` seconds, and reap it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
