"""A failed MapReduce job's own error: the failed task attempt the JobHistory Server
recorded and that attempt container's aggregated stderr. Inputs recorded from a real
Hadoop 3.5.0 streaming job whose Python mapper raised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from corral.services.mapreduce import attempt_error, failed_attempt

RM = Path(__file__).parent / "rm"


def load(name: str) -> Any:
    return json.loads((RM / name).read_text())


def attempts_of(task: str) -> Any:
    return load("jhs_streaming_map_attempts.json" if "_m_" in task else "jhs_streaming_reduce_attempts.json")


def test_the_failed_map_tasks_last_attempt_is_the_jobs_error() -> None:
    """The reduce task is FAILED too, but only because the job was (its attempts were KILLED)."""
    attempt = failed_attempt(load("jhs_streaming_tasks.json"), attempts_of)
    assert attempt is not None
    assert (attempt["id"], attempt["state"]) == ("attempt_1796156377631_0003_m_000000_3", "FAILED")


def test_the_containers_own_line_comes_first_and_the_diagnostic_follows() -> None:
    attempt = failed_attempt(load("jhs_streaming_tasks.json"), attempts_of)
    assert attempt is not None
    stderr = (RM / "streaming_attempt_stderr.txt").read_text()
    assert attempt_error(attempt, stderr) == (
        "RuntimeError: mapper broke on a (task attempt attempt_1796156377631_0003_m_000000_3: "
        "java.lang.RuntimeException: PipeMapRed.waitOutputThreads(): subprocess failed with code 1)")
    # A Java task (DistCp, a HADOOP_JAR job) writes nothing to stderr: the diagnostics say it.
    assert attempt_error(attempt, "") == (
        "java.lang.RuntimeException: PipeMapRed.waitOutputThreads(): subprocess failed with code 1")


def test_a_job_without_failed_attempts_has_no_error() -> None:
    tasks = {"tasks": {"task": [{"id": "task_1_0001_m_000000", "state": "SUCCEEDED"}]}}
    assert failed_attempt(tasks, attempts_of) is None
    assert failed_attempt({"tasks": None}, attempts_of) is None
