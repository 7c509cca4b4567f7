"""Each thread's count of its writes (corral.store.write_count): reads leave it, a write and
its commit move it, another thread's writes do not; a reconcile pass reuses its cluster
snapshot until it writes."""

from __future__ import annotations

import threading

from corral.control.context import ControlPlane
from corral.reconcile.clusters import ClusterReconciler
from corral.store.models import Cluster
from tests.unit.control.test_groups import _up_cluster


def test_reads_leave_the_count_and_this_threads_writes_move_it(cp: ControlPlane) -> None:
    cid = _up_cluster(cp)
    before = cp.store.writes.value
    with cp.store.session() as s:
        s.get(Cluster, cid)
    assert cp.store.writes.value == before
    with cp.store.session() as s:
        s.get(Cluster, cid).state_message = "written"  # type: ignore[union-attr]
    assert cp.store.writes.value > before


def test_another_threads_writes_are_not_this_threads(cp: ControlPlane) -> None:
    cid = _up_cluster(cp)
    before = cp.store.writes.value

    def write() -> None:
        with cp.store.session() as s:
            s.get(Cluster, cid).state_message = "from elsewhere"  # type: ignore[union-attr]

    other = threading.Thread(target=write)
    other.start()
    other.join()
    assert cp.store.writes.value == before


def test_a_pass_reuses_its_snapshot_until_it_writes(cp: ControlPlane) -> None:
    cid = _up_cluster(cp)
    rec = ClusterReconciler(cp, cid)
    first = rec._load()
    assert rec._load() is first  # nothing written since: the same snapshot
    with cp.store.session() as s:
        s.get(Cluster, cid).state_message = "moved"  # type: ignore[union-attr]
    again = rec._load()
    assert again is not first and again.state_message == "moved"
