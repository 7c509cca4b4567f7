"""When a step's YARN applications are "waiting", and in which words; a failed one's own
error line. Inputs are the ResourceManager's own JSON, recorded from a real Hadoop 3.5.0
cluster (1 CORE local.medium: a 3072 MB NodeManager) and trimmed of fields nobody reads."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from corral.services import yarn_diagnostics as diag
from corral.services.base import WaitMemo

RM = Path(__file__).parent / "rm"


def load(name: str) -> Any:
    return json.loads((RM / name).read_text())


@pytest.fixture
def pending_app() -> dict[str, Any]:
    """A Spark application whose AM runs and whose one 3072 MB executor never fits beside it."""
    return load("running_executor_not_granted.json")["app"]


@pytest.fixture
def nodes() -> list[dict[str, Any]]:
    return load("nodes_beside_am.json")["nodes"]["node"]


def test_an_executor_not_granted_is_a_wait_after_the_grace(pending_app: dict[str, Any], nodes: list[dict[str, Any]]) -> None:
    memo = WaitMemo()
    assert diag.waiting_reason([pending_app], nodes, memo, now=100.0) is None  # just asked: normal scheduling
    assert diag.waiting_reason([pending_app], nodes, memo, now=100.0 + diag.WAIT_GRACE_SECONDS - 1) is None
    assert diag.waiting_reason([pending_app], nodes, memo, now=145.0) == (
        "waiting for YARN: 1 container of 3072 MB, 1 vcore requested, not granted for 45 s "
        "(largest free on a NodeManager: 2048 MB, 1 vcore)")


def test_the_wait_clears_when_the_container_is_granted(pending_app: dict[str, Any], nodes: list[dict[str, Any]]) -> None:
    memo = WaitMemo()
    diag.waiting_reason([pending_app], nodes, memo, now=100.0)
    assert diag.waiting_reason([pending_app], nodes, memo, now=130.0) is not None
    granted = {**pending_app, "resourceRequests": [], "runningContainers": 2}
    assert diag.waiting_reason([granted], nodes, memo, now=135.0) is None
    # Asking again later is a new wait, timed from then.
    assert diag.waiting_reason([pending_app], nodes, memo, now=140.0) is None
    assert "not granted for 16 s" in (diag.waiting_reason([pending_app], nodes, memo, now=156.0) or "")


def test_an_application_served_slowly_is_not_waiting(pending_app: dict[str, Any], nodes: list[dict[str, Any]]) -> None:
    """Ten executors asked, granted one every few seconds: the outstanding request stays,
    but a grant since the last look restarts the wait."""
    memo = WaitMemo()
    app = copy.deepcopy(pending_app)
    for i in range(10):
        app["runningContainers"] = 1 + i
        app["resourceRequests"][0]["numContainers"] = 10 - i
        assert diag.waiting_reason([app], nodes, memo, now=100.0 + 10 * i) is None
    app["runningContainers"] = 10  # no more grants from here on
    assert diag.waiting_reason([app], nodes, memo, now=200.0) is None
    assert diag.waiting_reason([app], nodes, memo, now=220.0).startswith(  # type: ignore[union-attr]
        "waiting for YARN: 1 container of 3072 MB, 1 vcore requested, not granted for 30 s")


def test_only_the_off_switch_request_counts(pending_app: dict[str, Any]) -> None:
    """Node- and rack-local requests repeat the '*' request's containers; sizes are summed
    per capability, largest first."""
    app = copy.deepcopy(pending_app)
    request = app["resourceRequests"][0]
    app["resourceRequests"] += [{**request, "resourceName": "127.60.0.3"}, {**request, "resourceName": "/default-rack"},
                                {**request, "capability": {"memory": 1024, "vCores": 2}, "numContainers": 2},
                                {**request, "numContainers": 0, "capability": {"memory": 512, "vCores": 1}}]
    assert diag.pending_asks(app) == [(1, 3072, 1), (2, 1024, 2)]


def test_finished_and_unknown_states_are_no_wait(pending_app: dict[str, Any], nodes: list[dict[str, Any]]) -> None:
    memo = WaitMemo()
    for state in ("FINISHED", "FAILED", "KILLED"):
        assert diag.waiting_reason([{**pending_app, "state": state}], nodes, memo, now=100.0) is None
        assert diag.waiting_reason([{**pending_app, "state": state}], nodes, memo, now=1000.0) is None
    assert memo.since == {} and memo.counts == {}


def test_no_nodemanager_running_is_said(pending_app: dict[str, Any], nodes: list[dict[str, Any]]) -> None:
    memo = WaitMemo()
    lost = [{**n, "state": "LOST"} for n in nodes]
    diag.waiting_reason([pending_app], lost, memo, now=0.0)
    assert (diag.waiting_reason([pending_app], lost, memo, now=20.0) or "").endswith("(no NodeManager is RUNNING)")


@pytest.mark.parametrize(("text", "first", "last"), [
    ("Error: java.io.IOException: Relative path in absolute URI: s3a://b/a:b\n\tat org.apache.Foo.bar(Foo.java:1)\n",
     "java.io.IOException: Relative path in absolute URI: s3a://b/a:b", None),
    ("User class threw exception: java.lang.IllegalStateException: no input\n\tat Main.main(Main.java:3)",
     "java.lang.IllegalStateException: no input", None),
    ('Traceback (most recent call last):\n  File "/x/m.py", line 3, in <module>\n    raise RuntimeError("mapper broke")\n'
     "RuntimeError: mapper broke\n", "RuntimeError: mapper broke", None),
    ("Exception in thread \"main\" java.lang.RuntimeException: outer\n\tat A.b(A.java:1)\n"
     "Caused by: java.io.FileNotFoundException: /x (No such file)\n\tat C.d(C.java:2)\n... 3 more\n",
     "java.lang.RuntimeException: outer", "java.io.FileNotFoundException: /x (No such file)"),
    ("[2026-12-01 19:59:00.123]Container exited with a non-zero exit code 1. Error file: prelaunch.err.", None, None),
    ("", None, None),
])
def test_error_lines(text: str, first: str | None, last: str | None) -> None:
    assert diag.error_line(text) == first
    assert diag.error_line(text, last=True) == (last or first)


def test_a_failed_applications_reason_is_its_diagnostics(pending_app: dict[str, Any]) -> None:
    app = {**pending_app, "state": "FINISHED", "finalStatus": "FAILED",
           "diagnostics": "User class threw exception: java.lang.ArithmeticException: / by zero\n\tat X.y(X.java:9)\n"}
    assert diag.app_failure(app) == "java.lang.ArithmeticException: / by zero"
    summary = {**app, "diagnostics": "[Tue Dec 01 19:59:00 +0000 2026] Task failed task_1_0001_m_000000\n"
                                     "Job failed as tasks failed. failedMaps:1 failedReduces:0"}
    assert diag.app_failure(summary) == "Task failed task_1_0001_m_000000"
    assert diag.app_failure({**app, "finalStatus": "SUCCEEDED", "state": "FINISHED"}) is None
    assert diag.app_failure({**app, "finalStatus": "KILLED", "state": "KILLED"}) is None  # a cancel or a timeout


def test_an_am_over_the_queues_am_limit_waits_with_the_schedulers_words() -> None:
    """Recorded: a second application while a cluster-mode driver holds the queue's AM share."""
    app = load("accepted_am_limit.json")["app"]
    nodes = load("nodes_am_limit.json")["nodes"]["node"]
    memo = WaitMemo()
    assert diag.waiting_reason([app], nodes, memo, now=50.0) is None
    reason = diag.waiting_reason([app], nodes, memo, now=80.0)
    assert reason == (
        "waiting for YARN: Queue's AM resource limit exceeded (AM Resource Request = <memory:1024, vCores:1>; "
        "Queue Resource Limit for AM = <memory:1536, vCores:1>; User AM Resource Limit of the queue = "
        "<memory:1536, vCores:1>; Queue AM Resource Usage = <memory:1536, vCores:1>) "
        f"[{app['id']} ACCEPTED for 30 s, its ApplicationMaster (1024 MB, 1 vcore) not started; "
        f"largest free on a NodeManager: {diag._size(*diag.largest_free(nodes))}]")  # type: ignore[misc]
    running = {**app, "state": "RUNNING", "diagnostics": "", "resourceRequests": [], "runningContainers": 1}
    assert diag.waiting_reason([running], nodes, memo, now=85.0) is None  # its AM started: no longer waiting


@pytest.mark.parametrize(("diagnostics", "expected"), [
    ("[Tue Dec 01 20:20:19 +0000 2026] Application is added to the scheduler and is not yet activated. "
     "Queue's AM resource limit exceeded.  Details : AM Partition = <DEFAULT_PARTITION>; AM Resource Request = "
     "<memory:1024, vCores:1>; ", "Queue's AM resource limit exceeded (AM Resource Request = <memory:1024, vCores:1>)"),
    ("[Tue Dec 01 20:20:19 +0000 2026] Application is added to the scheduler and is not yet activated. "
     "User's AM resource limit exceeded.  Details : AM Partition = <DEFAULT_PARTITION>; User AM Resource Limit of "
     "the queue = <memory:1536, vCores:1>; ", "User's AM resource limit exceeded (User AM Resource Limit of the "
                                              "queue = <memory:1536, vCores:1>)"),
    ("AM container is launched, waiting for AM container to Register with RM",
     "AM container is launched, waiting for AM container to Register with RM"),
    ("", ""),
])
def test_scheduler_diagnostics_are_shortened_not_changed(diagnostics: str, expected: str) -> None:
    assert diag.scheduler_diagnostic(diagnostics) == expected


def test_an_accepted_application_without_diagnostics_still_says_what_it_waits_for() -> None:
    app = {**load("accepted_am_limit.json")["app"], "diagnostics": ""}
    memo = WaitMemo()
    diag.waiting_reason([app], [], memo, now=0.0)
    assert diag.waiting_reason([app], [], memo, now=20.0) == (
        f"waiting for YARN: {app['id']} ACCEPTED for 20 s, its ApplicationMaster (1024 MB, 1 vcore) not started; "
        "no NodeManager is RUNNING")


def test_recorded_failures_read_from_the_rm() -> None:
    streaming = load("failed_streaming_job.json")["app"]
    assert diag.app_failure(streaming) == "Task failed task_1796156377631_0003_m_000000"  # the JHS knows better
    spark = load("failed_spark_cluster_app.json")["app"]
    assert diag.app_failure(spark) == "User application exited with status 1"
    assert diag.error_line(spark["diagnostics"]) is None  # so its ApplicationMaster's logs are read


def test_the_yarn_hooks_ask_the_rm_for_the_steps_own_applications(monkeypatch: pytest.MonkeyPatch,
                                                                  pending_app: dict[str, Any]) -> None:
    import httpx

    from corral.domain.states import NodeRole
    from corral.services import yarn
    from corral.services.base import ClusterView, NodeView, StepWork

    apps = {pending_app["id"]: {"app": pending_app}}
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path == "/ws/v1/cluster/nodes":
            return httpx.Response(200, json=load("nodes_beside_am.json"))
        app = apps.get(request.url.path.rsplit("/", 1)[-1])
        return httpx.Response(200, json=app) if app else httpx.Response(404)

    monkeypatch.setattr(yarn, "HTTP", httpx.Client(transport=httpx.MockTransport(handler)))
    view = ClusterView(cluster_id="c-1", release="corral-1.0", services=("hdfs", "yarn"),
                       nodes=(NodeView("n-m", NodeRole.MASTER, "127.60.0.2", "/m", "local.small"),))
    work = StepWork("s-1", (pending_app["id"], "application_1796155039859_0099", "app-20261201-0001"))
    service, memo = yarn.YarnService(), WaitMemo()
    assert service.waiting_reason(view, work, memo, now=0.0) is None
    assert (service.waiting_reason(view, work, memo, now=30.0) or "").startswith(
        "waiting for YARN: 1 container of 3072 MB, 1 vcore requested, not granted for 30 s")
    assert not any("app-2026" in path for path in asked)  # a standalone Master's id is not the RM's
    apps[pending_app["id"]] = {"app": {**pending_app, "state": "FINISHED", "finalStatus": "SUCCEEDED"}}
    assert service.waiting_reason(view, work, memo, now=35.0) is None
    asked.clear()
    assert service.waiting_reason(view, work, memo, now=40.0) is None
    assert f"/ws/v1/cluster/apps/{pending_app['id']}" not in asked  # a finished application is not asked again
    assert service.failure_details(view, [pending_app["id"]]) == {}  # it succeeded
