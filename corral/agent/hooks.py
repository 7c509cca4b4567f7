"""Commands a plan attaches to files (``FileSpec.on_change``), run after the file changed.

A daemon that reads a file only when told (the ResourceManager's and NameNode's exclude
files, re-read on ``refreshNodes``) needs the command run once the new content is on
disk. Hooks run in a thread of their own, in the order queued, each once its probe
answers, retried with backoff (capped at ``MAX_BACKOFF`` s) until it exits 0. A hook
queued again while it runs runs again afterwards: the file changed after it started.
Output goes to ``logs/hooks.log``; a failure is a WARN event, a success after failures
an INFO one.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

from corral.agent.protocol import FileHook
from corral.agent.supervisor import EventSink, probe_ok

MAX_BACKOFF = 15.0


class HookRunner:
    def __init__(self, log_path: Path, emit: EventSink, clock: Callable[[], float] = time.monotonic):
        self.log_path = log_path
        self.emit = emit
        self.clock = clock
        self._queue: dict[tuple[str, ...], tuple[FileHook, dict[str, str]]] = {}
        self._lock = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="file-hooks", daemon=True)
        self._thread.start()

    def queue(self, hook: FileHook, env: dict[str, str]) -> None:
        """Run ``hook`` (argv already substituted) once more with ``env``."""
        with self._lock:
            self._queue[tuple(hook.argv)] = (hook, env)
            self._lock.notify()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def stop(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        self._thread.join(5)

    def _run(self) -> None:
        failures: dict[tuple[str, ...], int] = {}
        not_before: dict[tuple[str, ...], float] = {}
        while True:
            with self._lock:
                while not self._stop and not self._queue:
                    self._lock.wait()
                if self._stop:
                    return
                key, (hook, env) = next(iter(self._queue.items()))
                del self._queue[key]
            wait = not_before.get(key, 0.0) - self.clock()
            if wait > 0 or (hook.wait_for is not None and not probe_ok(hook.wait_for, timeout=1.0)):
                self._requeue(key, hook, env, max(wait, 1.0))
                continue
            ok, detail = self._execute(hook, env)
            if ok:
                if failures.pop(key, 0):
                    self.emit("INFO", "FILE_HOOK_SUCCEEDED", f"{' '.join(hook.argv[:3])} succeeded after retries", None)
                not_before.pop(key, None)
                continue
            count = failures[key] = failures.get(key, 0) + 1
            delay = min(MAX_BACKOFF, 2.0 ** count)
            not_before[key] = self.clock() + delay
            self.emit("WARN", "FILE_HOOK_FAILED", f"{' '.join(hook.argv[:3])} failed ({detail}); retry {count} in "
                      f"{delay:.0f}s", None)
            self._requeue(key, hook, env, 0.0)

    def _requeue(self, key: tuple[str, ...], hook: FileHook, env: dict[str, str], pause: float) -> None:
        with self._lock:
            self._queue.setdefault(key, (hook, env))  # a newer queue() of the same command wins
            if pause:
                self._lock.wait(pause)

    def _execute(self, hook: FileHook, env: dict[str, str]) -> tuple[bool, str]:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            out.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(hook.argv)}\n".encode())
            out.flush()
            try:
                done = subprocess.run(hook.argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                      timeout=hook.timeout, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return False, str(exc)
        return done.returncode == 0, f"exit {done.returncode}, see {self.log_path}"
