"""The reconciler's step watch: timeouts end a step FAILED/TIMEOUT through a cancel, the
services' wait reasons become (and stop being) the step's state message, and a failed
step's container errors are asked for once. Services are fakes; the clock is the test's."""

from __future__ import annotations

from typing import Any

import pytest

from corral.agent.protocol import StepReport
from corral.control import agents, clusters, steps
from corral.control.context import ControlPlane
from corral.reconcile import clusters as reconcile_clusters
from corral.reconcile import step_watch
from corral.services.base import NotYet, ReadyCheck, StepWork, WaitMemo
from corral.store.models import Event, Step
from tests.unit.control.test_agents import report
from tests.unit.helpers import count_rows, make_spec


class FakeService:
    """A service whose answers the test sets; records what it was asked."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.details: dict[str, str] = {}
        self.works: list[StepWork] = []
        self.diagnosed: list[list[str]] = []
        self.killed: list[list[str]] = []
        self.not_yet = 0  # failure_details raises NotYet this many more times

    def check_ready(self, cluster: object, timeout: float) -> ReadyCheck:
        return ReadyCheck(True, "fine")

    def cancel_applications(self, cluster: object, application_ids: list[str]) -> None:
        self.killed.append(list(application_ids))

    def waiting_reason(self, cluster: object, work: StepWork, memo: WaitMemo, now: float) -> str | None:
        self.works.append(work)
        return self.reason

    def failure_details(self, cluster: object, application_ids: list[str]) -> dict[str, str]:
        self.diagnosed.append(list(application_ids))
        if self.not_yet:
            self.not_yet -= 1
            raise NotYet("logs still being aggregated")
        return dict(self.details)


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> FakeService:
    fake = FakeService()
    monkeypatch.setattr(step_watch, "get_service", lambda name: fake)
    monkeypatch.setattr(reconcile_clusters, "get_service", lambda name: fake)
    monkeypatch.setattr(reconcile_clusters.deadlines, "AGENT_LOST_SECONDS", 1e9)  # the fake agents report once
    step_watch._watches.clear()
    step_watch._diagnose_asked.clear()
    return fake


def running_step(cp: ControlPlane, timeout: int | None = None, action: str = "CONTINUE",
                 **columns: Any) -> tuple[str, str, str, str]:
    """A cluster whose master reports, with one RUNNING step started at t=1000."""
    step: dict[str, Any] = {"type": "shell", "args": ["sleep 1000"], "action_on_failure": action}
    if timeout is not None:
        step["timeout"] = timeout
    cluster, _ = clusters.create_cluster(cp, make_spec(steps=[step, {"type": "shell", "args": ["echo next"]}]))
    with cp.store.session() as s:
        row = clusters.load_cluster(s, cluster.id)
        row.status, row.deadline_at = "RUNNING", None
        master = next(n for n in row.nodes if n.role == "MASTER")
        master.status, master.address, master.directory = "RUNNING", "127.99.0.10", "/nodes/m"
        first = clusters.cluster_steps(s, cluster.id)[0]
        first.status, first.dispatched, first.started_at = "RUNNING", True, 1000.0
        for key, value in columns.items():
            setattr(first, key, value)
    return cluster.id, first.id, master.id, cluster.agent_token


def reconcile(cp: ControlPlane, cluster_id: str, now: float) -> None:
    reconcile_clusters.ClusterReconciler(cp, cluster_id, clock=lambda: now).run()


def test_a_step_past_its_timeout_is_cancelled_then_failed_with_reason_timeout(cp: ControlPlane, service: FakeService) -> None:
    cid, sid, master, token = running_step(cp, timeout=60, action="CANCEL_AND_WAIT",
                                           yarn_application_ids=["application_1_0001"])
    reconcile(cp, cid, 1059.0)
    assert steps.get_step(cp, cid, sid).status == "RUNNING"
    version = clusters.get_cluster(cp, cid).plan_version
    reconcile(cp, cid, 1061.0)
    step = steps.get_step(cp, cid, sid)
    assert (step.status, step.failure_code) == ("CANCEL_PENDING", "TIMEOUT")
    assert step.state_message == "TIMEOUT: the step ran longer than its timeout of 60 s and was cancelled"
    assert clusters.get_cluster(cp, cid).plan_version > version  # the master's plan now says cancel
    assert ["application_1_0001"] in service.killed  # its YARN application is killed as on cancel
    assert count_rows(cp.store, Event, code="STEP_TIMED_OUT") == 1
    # The agent stops the process group and reports CANCELLED: recorded as FAILED/TIMEOUT.
    cancelled = StepReport(status="CANCELLED", exit_code=143, message="cancelled by request", logs_flushed=True)
    agents.apply_report(cp, master, token, report(master, steps={sid: cancelled}))
    step = steps.get_step(cp, cid, sid)
    assert (step.status, step.failure_code) == ("FAILED", "TIMEOUT")
    assert step.state_message.startswith("TIMEOUT: ")
    assert steps.list_steps(cp, cid)[1].status == "CANCELLED"  # FAILED applies its ActionOnFailure
    service.killed.clear()
    reconcile(cp, cid, 1062.0)
    assert ["application_1_0001"] in service.killed  # and the sweep after the cancel goes on


def test_a_step_that_completes_as_the_timeout_strikes_is_completed(cp: ControlPlane, service: FakeService) -> None:
    cid, sid, master, token = running_step(cp, timeout=60)
    reconcile(cp, cid, 1100.0)
    done = StepReport(status="COMPLETED", exit_code=0, logs_flushed=True)
    agents.apply_report(cp, master, token, report(master, steps={sid: done}))
    step = steps.get_step(cp, cid, sid)
    assert (step.status, step.failure_code, step.state_message) == ("COMPLETED", None, None)


def test_a_step_that_fails_after_its_timeout_keeps_the_timeout_reason_and_its_own(cp: ControlPlane,
                                                                                 service: FakeService) -> None:
    cid, sid, master, token = running_step(cp, timeout=60)
    reconcile(cp, cid, 1100.0)
    failed = StepReport(status="FAILED", exit_code=1, message="exit code 1; last lines of stderr:\nboom", logs_flushed=True)
    agents.apply_report(cp, master, token, report(master, steps={sid: failed}))
    step = steps.get_step(cp, cid, sid)
    assert (step.status, step.failure_code) == ("FAILED", "TIMEOUT")
    assert step.state_message.startswith("TIMEOUT: ") and step.state_message.endswith("\nboom")


def test_the_deadline_is_the_rows_so_a_new_control_plane_process_enforces_it(cp: ControlPlane,
                                                                           service: FakeService) -> None:
    cid, sid, _, _ = running_step(cp, timeout=30)
    step_watch._watches.clear()  # nothing remembered in memory: as after a restart
    reconcile(cp, cid, 1031.0)
    assert steps.get_step(cp, cid, sid).status == "CANCEL_PENDING"


def test_steps_without_a_timeout_run_on(cp: ControlPlane, service: FakeService) -> None:
    cid, sid, _, _ = running_step(cp)
    reconcile(cp, cid, 1000.0 + 30 * 24 * 3600)
    assert steps.get_step(cp, cid, sid).status == "RUNNING"


def test_a_wait_is_shown_while_it_lasts_then_cleared(cp: ControlPlane, service: FakeService) -> None:
    cid, sid, _, _ = running_step(cp, yarn_application_ids=["application_1_0001"])
    reconcile(cp, cid, 1010.0)
    assert steps.get_step(cp, cid, sid).state_message is None
    assert service.works[-1].application_ids == ("application_1_0001",)
    service.reason = "waiting for YARN: Queue's AM resource limit exceeded"
    reconcile(cp, cid, 1011.0)  # within WAIT_CHECK_SECONDS of the last check: not asked
    assert len(service.works) == 1
    reconcile(cp, cid, 1010.0 + step_watch.WAIT_CHECK_SECONDS)
    assert steps.get_step(cp, cid, sid).state_message == "waiting for YARN: Queue's AM resource limit exceeded"
    service.reason = "waiting for YARN: 1 container of 3072 MB, 1 vcore requested, not granted for 20 s"
    reconcile(cp, cid, 1020.0)
    assert steps.get_step(cp, cid, sid).state_message == service.reason  # it changes ...
    assert count_rows(cp.store, Event, code="STEP_WAITING") == 1  # ... but the wait began once
    service.reason = None
    reconcile(cp, cid, 1030.0)
    assert steps.get_step(cp, cid, sid).state_message is None  # it runs: the message clears
    assert count_rows(cp.store, Event, code="STEP_WAIT_OVER") == 1
    assert steps.get_step(cp, cid, sid).status == "RUNNING"


def test_services_see_only_the_new_part_of_the_log(cp: ControlPlane, service: FakeService) -> None:
    cid, sid, master, token = running_step(cp)
    agents.store_log(cp, sid, token, "stderr", 0, b"first line\n")
    reconcile(cp, cid, 1010.0)
    agents.store_log(cp, sid, token, "stderr", 11, b"WARN YarnScheduler: Initial job has not accepted any resources\n")
    reconcile(cp, cid, 1020.0)
    reconcile(cp, cid, 1030.0)
    assert [w.new_log for w in service.works] == [
        "first line\n", "WARN YarnScheduler: Initial job has not accepted any resources\n", ""]


def test_a_timed_out_step_says_what_it_was_waiting_for(cp: ControlPlane, service: FakeService) -> None:
    cid, sid, _, _ = running_step(cp, timeout=60)
    service.reason = "waiting for YARN: Queue's AM resource limit exceeded"
    reconcile(cp, cid, 1030.0)
    reconcile(cp, cid, 1061.0)
    assert steps.get_step(cp, cid, sid).state_message == (
        "TIMEOUT: the step ran longer than its timeout of 60 s and was cancelled; "
        "it was waiting for YARN: Queue's AM resource limit exceeded")


def fail(cp: ControlPlane, cid: str, sid: str, master: str, token: str, message: str) -> None:
    failed = StepReport(status="FAILED", exit_code=1, message=message, logs_flushed=True)
    agents.apply_report(cp, master, token, report(master, steps={sid: failed}))


def test_a_failed_steps_container_error_goes_into_its_reason_once(cp: ControlPlane, service: FakeService) -> None:
    cid, sid, master, token = running_step(cp, yarn_application_ids=["application_1_0001", "application_1_0002"])
    fail(cp, cid, sid, master, token, "exit code 1; last lines of stderr:\nJob failed")
    service.details = {"application_1_0002": "java.io.IOException: Relative path in absolute URI: a:b"}
    now = steps.get_step(cp, cid, sid).ended_at or 0.0
    reconcile(cp, cid, now + 1)
    reconcile(cp, cid, now + 2)
    assert service.diagnosed == [["application_1_0001", "application_1_0002"]]  # asked once
    assert steps.get_step(cp, cid, sid).state_message == (
        "exit code 1; container error: java.io.IOException: Relative path in absolute URI: a:b; "
        "last lines of stderr:\nJob failed")


def test_a_service_not_ready_to_say_is_asked_again_then_given_up_on(cp: ControlPlane, service: FakeService) -> None:
    cid, sid, master, token = running_step(cp, yarn_application_ids=["application_1_0001"])
    fail(cp, cid, sid, master, token, "exit code 1")
    ended = steps.get_step(cp, cid, sid).ended_at or 0.0
    service.not_yet, service.details = 1, {"application_1_0001": "java.io.IOException: disk full"}
    reconcile(cp, cid, ended + 1)
    assert steps.get_step(cp, cid, sid).state_message == "exit code 1"  # logs still being aggregated
    reconcile(cp, cid, ended + 2)
    assert len(service.diagnosed) == 1  # not asked again before DIAGNOSE_RETRY_SECONDS
    reconcile(cp, cid, ended + 1 + step_watch.DIAGNOSE_RETRY_SECONDS)
    assert steps.get_step(cp, cid, sid).state_message == "exit code 1; container error: java.io.IOException: disk full"
    # A service that never gets ready: after the patience, the step keeps what it has.
    cid, sid, master, token = running_step(cp, yarn_application_ids=["application_1_0002"])
    fail(cp, cid, sid, master, token, "exit code 1")
    ended = steps.get_step(cp, cid, sid).ended_at or 0.0
    service.not_yet, calls = 10**6, len(service.diagnosed)
    for t in range(0, int(step_watch.DIAGNOSE_PATIENCE_SECONDS) + 10, 5):
        reconcile(cp, cid, ended + t)
    with cp.store.session() as s:
        row = s.get(Step, sid)
        assert row is not None and row.diagnosed and row.state_message == "exit code 1"
    asked = len(service.diagnosed) - calls
    reconcile(cp, cid, ended + step_watch.DIAGNOSE_PATIENCE_SECONDS + 60)
    assert len(service.diagnosed) - calls == asked  # done with it


def test_secrets_are_starred_out_of_container_errors(cp: ControlPlane, service: FakeService) -> None:
    cid, sid, master, token = running_step(cp, yarn_application_ids=["application_1_0001"],
                                           secrets={"CORRAL_DB_PASSWORD": "hunter2-secret"})
    fail(cp, cid, sid, master, token, "exit code 1")
    service.details = {"application_1_0001": "java.sql.SQLException: bad password hunter2-secret"}
    reconcile(cp, cid, (steps.get_step(cp, cid, sid).ended_at or 0.0) + 1)
    message = steps.get_step(cp, cid, sid).state_message
    assert "hunter2-secret" not in message and message.startswith("exit code 1; container error: java.sql.SQLException")


def test_steps_without_applications_or_failed_long_ago_are_not_diagnosed(cp: ControlPlane, service: FakeService) -> None:
    cid, sid, master, token = running_step(cp)
    fail(cp, cid, sid, master, token, "exit code 1")
    reconcile(cp, cid, (steps.get_step(cp, cid, sid).ended_at or 0.0) + 1)
    assert service.diagnosed == []
    cid, sid, master, token = running_step(cp, yarn_application_ids=["application_1_0001"])
    fail(cp, cid, sid, master, token, "exit code 1")
    reconcile(cp, cid, (steps.get_step(cp, cid, sid).ended_at or 0.0) + step_watch.DIAGNOSE_WITHIN_SECONDS + 1)
    assert service.diagnosed == []
    with cp.store.session() as s:
        row = s.get(Step, sid)
        assert row is not None and row.diagnosed


def test_a_step_that_terminates_its_cluster_is_diagnosed_before_daemons_stop(cp: ControlPlane,
                                                                            service: FakeService) -> None:
    cid, sid, master, token = running_step(cp, action="TERMINATE_CLUSTER", yarn_application_ids=["application_1_0001"])
    fail(cp, cid, sid, master, token, "exit code 1")
    service.details = {"application_1_0001": "java.lang.OutOfMemoryError: Java heap space"}
    reconcile(cp, cid, (steps.get_step(cp, cid, sid).ended_at or 0.0) + 1)
    assert clusters.get_cluster(cp, cid).status == "TERMINATING"
    assert "container error: java.lang.OutOfMemoryError" in steps.get_step(cp, cid, sid).state_message


@pytest.mark.parametrize(("message", "expected"), [
    (None, "container error: E"),
    ("", "container error: E"),
    ("killed", "killed; container error: E"),
    ("exit code 2; last lines of stderr:\na\nb", "exit code 2; container error: E; last lines of stderr:\na\nb"),
    ("TIMEOUT: ran too long", "TIMEOUT: ran too long; container error: E"),
])
def test_container_errors_join_the_first_line(message: str | None, expected: str) -> None:
    assert step_watch.with_container_errors(message, ["E"]) == expected
