"""A finished step's cost: the services' answers merged per application (AM attempts plus
task containers), recorded once, retried while a service says NotYet within the patience,
then recorded with what is known."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from corral.control.context import ControlPlane
from corral.metrics.cost import step_cost
from corral.reconcile import step_cost as recorder
from corral.services.base import NotYet
from corral.store.models import Step
from tests.unit.control.test_groups import _up_cluster

APP, OTHER = "application_1_0001", "application_1_0002"


def test_answers_merge_into_per_application_figures_and_totals() -> None:
    rm = {APP: {"type": "MAPREDUCE", "memory_seconds": 1000, "vcore_seconds": 10, "elapsed_seconds": 5.5, "attempts": 1},
          OTHER: {"type": "SPARK", "memory_seconds": 500, "vcore_seconds": 4, "elapsed_seconds": 2.0, "attempts": 2}}
    history = {APP: {"task_containers": 6}, "application_9_9": {"task_containers": 99}}  # not the step's: ignored
    cost = step_cost([APP, OTHER, "application_1_0003"], [rm, history], now=7.0)
    assert cost["applications"][APP]["containers"] == 7  # 6 tasks + 1 AM
    assert cost["applications"][OTHER]["containers"] == 2  # its two AM attempts, no task figure
    assert "task_containers" not in cost["applications"][APP]
    assert cost["total"] == {"applications": 2, "containers": 9, "memory_seconds": 1500, "vcore_seconds": 14,
                             "elapsed_seconds": 7.5}
    assert cost["missing"] == ["application_1_0003"] and cost["recorded_at"] == 7.0


@dataclass
class _Usage:
    not_yet: int = 0  # answers NotYet this many times first
    calls: list[list[str]] = field(default_factory=list)
    growing: int = 0  # then answers memory_seconds still growing this many times (the RM counting its last releases)

    def application_usage(self, cluster: Any, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        self.calls.append(list(ids))
        if len(self.calls) <= self.not_yet:
            raise NotYet("history server behind")
        grown = min(len(self.calls) - self.not_yet, self.growing)
        return {APP: {"memory_seconds": 42 + grown, "attempts": 1, "task_containers": 2}}


@pytest.fixture
def usage(monkeypatch: pytest.MonkeyPatch) -> _Usage:
    fake = _Usage()
    monkeypatch.setattr(recorder, "get_service", lambda name: fake)
    recorder._asked.clear()
    recorder._last.clear()
    return fake


def _ended_step(cp: ControlPlane, cid: str, ended_at: float, apps: list[str]) -> str:
    with cp.store.session() as s:
        step = Step(id="s-cost", cluster_id=cid, seq=1, name="job", type="HADOOP_JAR", args=[], action_on_failure="CONTINUE",
                    status="COMPLETED", created_at=ended_at - 10, started_at=ended_at - 9, ended_at=ended_at,
                    yarn_application_ids=apps)
        s.add(step)
    return step.id


def _cost(cp: ControlPlane, step_id: str) -> dict[str, Any] | None:
    with cp.store.session() as s:
        return s.get(Step, step_id).cost  # type: ignore[union-attr]


def _record(cp: ControlPlane, cid: str, now: float) -> None:
    from corral.control.clusters import load_cluster
    from corral.control.views import cluster_view

    with cp.store.session() as s:
        cluster = load_cluster(s, cid)
    recorder.record_costs(cp, cluster, cluster_view(cluster), now)


def test_a_step_is_costed_once_after_its_history_catches_up(cp: ControlPlane, usage: _Usage) -> None:
    cid = _up_cluster(cp)
    usage.not_yet = 2 * 4  # four services in the cluster, each says NotYet twice
    t0 = time.time()
    step = _ended_step(cp, cid, t0, [APP])
    _record(cp, cid, t0 + 1)
    assert _cost(cp, step) is None
    _record(cp, cid, t0 + 2)  # within RETRY_SECONDS: not asked again
    assert len(usage.calls) == 4
    _record(cp, cid, t0 + 5)
    assert _cost(cp, step) is None
    _record(cp, cid, t0 + 9)
    assert _cost(cp, step) is None  # answered: recorded once a second ask agrees
    _record(cp, cid, t0 + 13)
    cost = _cost(cp, step)
    assert cost is not None and cost["applications"][APP] == {"memory_seconds": 42, "attempts": 1, "containers": 3}
    asked = len(usage.calls)
    _record(cp, cid, t0 + 20)
    assert len(usage.calls) == asked  # recorded: never asked again


def test_figures_still_growing_are_recorded_only_once_two_asks_agree(cp: ControlPlane, usage: _Usage) -> None:
    cid = _up_cluster(cp)
    usage.growing = 3 * 4  # four services; the figures grow over three asks, then hold
    t0 = time.time()
    step = _ended_step(cp, cid, t0, [APP])
    for i in range(4):
        _record(cp, cid, t0 + 1 + 4 * i)
        assert _cost(cp, step) is None, i
    _record(cp, cid, t0 + 17)
    cost = _cost(cp, step)
    assert cost is not None and cost["applications"][APP]["memory_seconds"] == 42 + 3 * 4


def test_past_the_patience_what_is_known_is_recorded(cp: ControlPlane, usage: _Usage) -> None:
    cid = _up_cluster(cp)
    usage.not_yet = 10_000
    t0 = time.time()
    step = _ended_step(cp, cid, t0, [APP])
    _record(cp, cid, t0 + recorder.PATIENCE_SECONDS + 1)
    cost = _cost(cp, step)
    assert cost is not None and cost["applications"] == {} and cost["missing"] == [APP]


def test_a_step_without_applications_costs_nothing_to_ask(cp: ControlPlane, usage: _Usage) -> None:
    cid = _up_cluster(cp)
    step = _ended_step(cp, cid, time.time(), [])
    _record(cp, cid, time.time())
    assert usage.calls == [] and _cost(cp, step) is None


def test_a_resourcemanager_that_does_not_answer_is_asked_again_not_taken_as_forgotten() -> None:
    import socket

    from corral.services import app_usage

    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        rm = f"http://127.0.0.1:{closed.getsockname()[1]}/ws/v1/cluster"
        with pytest.raises(NotYet, match="does not answer"):
            app_usage.rm_usage(rm, [APP], timeout=1.0)
