"""Which clusters a reconcile tick passes over: every cluster that is moving, each time; a
cluster at rest (WAITING, every node RUNNING, every group at its size) every
STEADY_PASS_SECONDS, or at once when something pokes it, even while a pass is in flight."""

from __future__ import annotations

import threading
import time
from typing import Iterator

import pytest

from corral.control.context import ControlPlane
from corral.reconcile import loop
from corral.store.models import Node
from tests.unit.control.test_groups import _up_cluster


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rec(cp: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[loop.Reconciler, list[str], _Clock]]:
    passes: list[str] = []
    gate = threading.Event()
    gate.set()

    class Counting:
        def __init__(self, cp: ControlPlane, cluster_id: str, clock: object, probes: object) -> None:
            self.cluster_id = cluster_id

        def run(self) -> None:
            gate.wait(10)
            passes.append(self.cluster_id)

    monkeypatch.setattr(loop, "ClusterReconciler", Counting)
    clock = _Clock()
    reconciler = loop.Reconciler(cp, clock=clock)
    reconciler.gate = gate  # type: ignore[attr-defined]
    yield reconciler, passes, clock
    gate.set()
    reconciler._pool.shutdown(wait=True)
    reconciler.sampler.stop()
    reconciler.hosts.stop()
    reconciler.probes.stop()
    reconciler.alerts.stop()


def _tick(reconciler: loop.Reconciler, clock: _Clock, seconds: float = 0.5) -> None:
    reconciler.tick()
    deadline = time.monotonic() + 10
    while reconciler._busy - {loop._SWEEP}:
        assert time.monotonic() < deadline, "a pass did not end"
        time.sleep(0.01)
    clock.now += seconds


def test_a_cluster_at_rest_is_passed_every_steady_interval_and_at_once_when_poked(
        cp: ControlPlane, rec: tuple[loop.Reconciler, list[str], _Clock]) -> None:
    reconciler, passes, clock = rec
    cid = _up_cluster(cp)
    for _ in range(8):  # 4 s of ticks: the first pass finds it at rest, then one per 2 s
        _tick(reconciler, clock)
    assert passes.count(cid) == 2
    cp.notifier.poke_reconciler(cid)
    _tick(reconciler, clock)
    assert passes.count(cid) == 3
    cp.notifier.bump(cid)  # a plan change pokes too
    _tick(reconciler, clock)
    assert passes.count(cid) == 4


def test_a_cluster_with_a_node_on_its_way_is_passed_every_tick(cp: ControlPlane,
                                                              rec: tuple[loop.Reconciler, list[str], _Clock]) -> None:
    reconciler, passes, clock = rec
    cid = _up_cluster(cp)
    with cp.store.session() as s:
        node = next(n for n in s.query(Node).filter(Node.cluster_id == cid) if n.role == "CORE")
        node.status = "STARTING"
    for _ in range(6):
        _tick(reconciler, clock)
    assert passes.count(cid) == 6


def test_a_poke_during_a_pass_is_not_lost(cp: ControlPlane, rec: tuple[loop.Reconciler, list[str], _Clock]) -> None:
    reconciler, passes, clock = rec
    cid = _up_cluster(cp)
    _tick(reconciler, clock)  # at rest from here
    reconciler.gate.clear()  # type: ignore[attr-defined]
    clock.now += 5
    reconciler.tick()  # due: a pass starts and blocks
    cp.notifier.poke_reconciler(cid)
    reconciler.tick()  # busy: the poke is kept
    reconciler.gate.set()  # type: ignore[attr-defined]
    _tick(reconciler, clock, seconds=0.0)
    _tick(reconciler, clock)
    assert passes.count(cid) == 3
