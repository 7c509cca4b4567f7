"""A running step's logs go to the control plane at most once a second; a finished step's
last bytes at once."""

from __future__ import annotations

import time
from pathlib import Path

from corral.agent import steps as steps_module
from corral.agent.steps import StepRunner, _LocalStep


class CountingClient:
    def __init__(self) -> None:
        self.uploads: list[tuple[str, str, int, bytes]] = []

    def upload_log(self, step_id: str, stream: str, offset: int, data: bytes) -> int:
        self.uploads.append((step_id, stream, offset, data))
        return offset + len(data)


def running_step(tmp_path: Path) -> tuple[CountingClient, StepRunner, _LocalStep, Path]:
    """A runner with one RUNNING step whose logs are empty files; (client, runner, step, dir)."""
    client = CountingClient()
    runner = StepRunner(tmp_path, client, lambda *_: None)  # type: ignore[arg-type]
    step = _LocalStep(id="s-1")
    runner.steps[step.id] = step
    out = runner.step_dir(step.id)
    out.mkdir(parents=True)
    for stream in ("stdout", "stderr"):
        (out / stream).write_bytes(b"")
    return client, runner, step, out


def test_running_logs_are_batched_and_finished_ones_flushed(tmp_path: Path) -> None:
    client, runner, step, out = running_step(tmp_path)
    log = out / "stdout"
    for i in range(10):  # ten ticks 0.02 s apart, a line each
        with open(log, "ab") as handle:
            handle.write(f"line {i}\n".encode())
        runner.ship_logs()
        time.sleep(0.02)
    assert len(client.uploads) == 1  # the first tick's line; the rest wait for the interval
    step.status = "COMPLETED"
    runner.ship_logs()
    assert b"".join(u[3] for u in client.uploads) == log.read_bytes()
    assert step.shipped["stdout"] == log.stat().st_size


def test_forced_shipping_ignores_the_interval(tmp_path: Path) -> None:
    _, runner, step, out = running_step(tmp_path)
    (out / "stdout").write_bytes(b"a\n")
    runner.ship_logs()
    (out / "stdout").write_bytes(b"a\nb\n")
    runner.ship_logs(force=True)
    assert step.shipped["stdout"] == 4 and steps_module.LOG_SHIP_INTERVAL >= 1.0
