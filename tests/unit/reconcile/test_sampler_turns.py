"""The metrics sampler's turns (corral.reconcile.sampler.MetricsSampler.tick): due clusters
are sampled at most their share of the interval per tick, the longest waiting first, so
many clusters are not all sampled (and their passes poked) in the same instant."""

from __future__ import annotations

import math

from corral.control.context import ControlPlane
from corral.reconcile.sampler import MetricsSampler
from tests.unit.control.test_groups import _up_cluster


class _Recorder:
    """Stands in for the sampler's pool: what was submitted, in order, and nothing run."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def submit(self, key: str, fn: object) -> object:
        if key != "__sweep__":  # the history's sweep shares the pool
            self.keys.append(key)
        return object()

    def stop(self) -> None:
        pass


def test_due_clusters_take_turns_of_their_share_per_tick(cp: ControlPlane) -> None:
    ids = {_up_cluster(cp) for _ in range(6)}
    now = [1_000_000.0]
    sampler = MetricsSampler(cp, clock=lambda: now[0], tick_seconds=0.5)
    sampler.pool.stop()
    pool = _Recorder()
    sampler.pool = pool  # type: ignore[assignment]
    share = max(1, math.ceil(len(ids) * 0.5 / sampler.interval))
    ticks = math.ceil(len(ids) / share)
    for i in range(ticks):
        sampler.tick()
        assert len(pool.keys) == min(len(ids), (i + 1) * share)  # never more than the share in one tick
        now[0] += 0.5
    assert set(pool.keys) == ids and len(pool.keys) == len(ids)  # each once within the interval
    first_round = list(pool.keys)
    now[0] = 1_000_000.0 + sampler.interval + ticks * 0.5  # every cluster due again
    for _ in range(ticks):
        sampler.tick()
        now[0] += 0.5
    assert pool.keys[len(ids):] == first_round  # the longest waiting first: the same staggered order
