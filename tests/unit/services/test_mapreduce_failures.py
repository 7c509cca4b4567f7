"""A failed MapReduce job's own error: the failed task attempt the JobHistory Server
recorded and that attempt container's aggregated stderr. Inputs recorded from a real
Hadoop 3.5.0 streaming job whose Python mapper raised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.services import mapreduce
from corral.services.base import NotYet
from corral.services.mapreduce import MapReduceService, attempt_error, failed_attempt

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


# -- the hook against recorded REST answers (an httpx transport serving them) -------------

MASTER = "127.60.0.2"


def view() -> Any:
    from corral.domain.states import NodeRole
    from corral.services.base import ClusterView, NodeView

    return ClusterView(cluster_id="c-1", release="corral-1.0", services=("hdfs", "yarn", "mapreduce"),
                       nodes=(NodeView("n-m", NodeRole.MASTER, MASTER, "/m", "local.small"),
                              NodeView("n-c", NodeRole.CORE, "127.60.0.3", "/c", "local.medium")))


def serve(monkeypatch: pytest.MonkeyPatch, answers: dict[str, Any]) -> list[str]:
    """Point the services' HTTP client at ``answers`` (path -> JSON or text; missing: 404)."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        body = answers.get(request.url.path)
        if body is None:
            return httpx.Response(404, text="not found")
        return httpx.Response(200, text=body) if isinstance(body, str) else httpx.Response(200, json=body)

    monkeypatch.setattr(mapreduce, "HTTP", httpx.Client(transport=httpx.MockTransport(handler)))
    return asked


STREAMING = "application_1796156377631_0003"
SPARK = "application_1796156377631_0004"
JOB = "/ws/v1/history/mapreduce/jobs/job_1796156377631_0003"


def recorded(aggregation: str = "SUCCEEDED", history: bool = True) -> dict[str, Any]:
    streaming, spark = load("failed_streaming_job.json"), load("failed_spark_cluster_app.json")
    streaming["app"]["logAggregationStatus"] = spark["app"]["logAggregationStatus"] = aggregation
    answers: dict[str, Any] = {
        f"/ws/v1/cluster/apps/{STREAMING}": streaming, f"/ws/v1/cluster/apps/{SPARK}": spark,
        f"/ws/v1/cluster/apps/{SPARK}/appattempts": load("failed_spark_cluster_attempts.json"),
        "/ws/v1/history/containerlogs/container_1796156377631_0003_01_000008/stderr":
            (RM / "streaming_attempt_stderr.txt").read_text(),
        "/ws/v1/history/containerlogs/container_1796156377631_0004_02_000001/stdout":
            (RM / "spark_cluster_driver_stdout.txt").read_text(),
    }
    if history:
        answers.update({f"{JOB}/tasks": load("jhs_streaming_tasks.json"),
                        f"{JOB}/tasks/task_1796156377631_0003_m_000000/attempts": load("jhs_streaming_map_attempts.json"),
                        f"{JOB}/tasks/task_1796156377631_0003_r_000000/attempts": load("jhs_streaming_reduce_attempts.json")})
    return answers


def test_each_failed_applications_own_error_from_the_history_server(monkeypatch: pytest.MonkeyPatch) -> None:
    serve(monkeypatch, recorded())
    details = MapReduceService().failure_details(view(), [STREAMING, SPARK, "app-20261201-0001"])
    assert details == {
        STREAMING: "RuntimeError: mapper broke on a (task attempt attempt_1796156377631_0003_m_000000_3: "
                   "java.lang.RuntimeException: PipeMapRed.waitOutputThreads(): subprocess failed with code 1)",
        SPARK: "ValueError: boom: bad input row 7",  # the PySpark driver's traceback, from its container's stdout
    }


def test_not_yet_while_logs_are_aggregated_or_the_history_is_not_there(monkeypatch: pytest.MonkeyPatch) -> None:
    serve(monkeypatch, recorded(aggregation="NOT_START"))
    with pytest.raises(NotYet):
        MapReduceService().failure_details(view(), [STREAMING])
    serve(monkeypatch, recorded(history=False))
    with pytest.raises(NotYet):
        MapReduceService().failure_details(view(), [STREAMING])
    # An ApplicationMaster that died wrote no history: its own container's logs are read instead.
    answers = recorded(history=False)
    answers[f"/ws/v1/cluster/apps/{STREAMING}"]["app"]["state"] = "FAILED"
    asked = serve(monkeypatch, answers)
    assert MapReduceService().failure_details(view(), [STREAMING]) == {}
    assert f"/ws/v1/cluster/apps/{STREAMING}/appattempts" in asked


def test_applications_that_did_not_fail_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = recorded()
    answers[f"/ws/v1/cluster/apps/{SPARK}"]["app"].update(finalStatus="KILLED", state="KILLED")
    asked = serve(monkeypatch, answers)
    assert MapReduceService().failure_details(view(), [SPARK]) == {}
    assert asked == [f"/ws/v1/cluster/apps/{SPARK}"]


def test_a_one_task_job_as_the_history_server_writes_it() -> None:
    """Recorded from a DistCp job with one (uber) map: a list of one is the element itself."""
    tasks = {"tasks": {"task": {"id": "task_1796160543418_0001_m_000000", "state": "FAILED", "type": "MAP",
                                "finishTime": 1796160575415, "successfulAttempt": ""}}}
    attempt = {"id": "attempt_1796160543418_0001_m_000000_0", "state": "FAILED", "startTime": 1796160573134,
               "diagnostics": "Error: java.io.IOException: x\n\tat A.b(A.java:1)\n", "assignedContainerId": "c"}
    found = failed_attempt(tasks, lambda task: {"taskAttempts": {"taskAttempt": attempt}})
    assert found == attempt
    assert attempt_error(attempt, "") == "java.io.IOException: x"
