"""Standalone Spark: a step's application WAITING at the Master (or granted no cores) is a
wait; and on any cluster manager, the driver's own "Initial job has not accepted any
resources" while it keeps repeating. The Master's /json/ fields are Spark's JsonProtocol's
(writeApplicationInfo, writeWorkerInfo)."""

from __future__ import annotations

from typing import Any

from corral.services.base import StepWork, WaitMemo
from corral.services.spark import STARVED, standalone_waiting_reason, starved_reason

APP = "app-20261201203000-0000"


def master_state(app_state: str = "WAITING", cores: int = 0) -> dict[str, Any]:
    worker = {"id": "worker-1", "host": "127.61.0.3", "cores": 2, "coresused": 0, "coresfree": 2,
              "memory": 3072, "memoryused": 0, "memoryfree": 3072, "state": "ALIVE"}
    return {"url": "spark://127.61.0.2:7077", "status": "ALIVE",
            "workers": [worker, {**worker, "id": "worker-2", "host": "127.61.0.4", "memoryfree": 1024, "coresfree": 1},
                        {**worker, "id": "worker-3", "memoryfree": 99999, "state": "DEAD"}],
            "activeapps": [{"id": APP, "name": "big.py", "cores": cores, "memoryperexecutor": 4096,
                            "memoryperslave": 4096, "state": app_state, "starttime": 1796157000000},
                           {"id": "app-20261201202000-0009", "cores": 0, "memoryperexecutor": 512,
                            "state": "WAITING"}]}


def test_a_waiting_application_is_said_after_the_grace_with_the_largest_free_worker() -> None:
    memo = WaitMemo()
    assert standalone_waiting_reason(master_state(), {APP}, memo, now=0.0) is None
    assert standalone_waiting_reason(master_state(), {APP}, memo, now=10.0) is None
    assert standalone_waiting_reason(master_state(), {APP}, memo, now=40.0) == (
        f"waiting for Spark: application {APP} WAITING for 40 s without executors; "
        "each needs 4096 MB (largest free on a Worker: 3072 MB, 2 cores)")  # the DEAD worker does not count


def test_an_application_with_executors_is_not_waiting_and_a_new_wait_starts_over() -> None:
    memo = WaitMemo()
    standalone_waiting_reason(master_state(), {APP}, memo, now=0.0)
    assert standalone_waiting_reason(master_state("RUNNING", cores=4), {APP}, memo, now=30.0) is None
    assert standalone_waiting_reason(master_state("RUNNING", cores=0), {APP}, memo, now=31.0) is None  # lost them
    assert "RUNNING for 15 s without executors" in (
        standalone_waiting_reason(master_state("RUNNING", cores=0), {APP}, memo, now=46.0) or "")


def test_other_steps_applications_are_not_this_steps_wait() -> None:
    memo = WaitMemo()
    standalone_waiting_reason(master_state(), {"app-other"}, memo, now=0.0)
    assert standalone_waiting_reason(master_state(), {"app-other"}, memo, now=100.0) is None


def test_the_drivers_starvation_warning_counts_while_it_repeats() -> None:
    memo = WaitMemo()
    line = f"26/12/01 19:58:30 WARN YarnScheduler: {STARVED}; check your cluster UI to ensure ...\n"
    assert starved_reason(StepWork("s-1", (), "INFO starting\n"), memo, now=0.0) is None
    assert (starved_reason(StepWork("s-1", (), line), memo, now=15.0) or "").startswith(
        f"waiting for Spark executors: {STARVED}")
    assert starved_reason(StepWork("s-1", (), ""), memo, now=30.0) is not None  # repeats every 15 s
    assert starved_reason(StepWork("s-1", (), line), memo, now=31.0) is not None
    assert starved_reason(StepWork("s-1", (), "INFO Starting task 0.0\n"), memo, now=60.0) is None  # it got executors
