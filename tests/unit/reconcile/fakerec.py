"""What the reconciler's per-cluster passes use of ``ClusterReconciler`` (its control plane,
an injectable clock ``now`` in epoch seconds, ``_load``), for unit tests of one pass."""

from __future__ import annotations

from dataclasses import dataclass

from corral.control import clusters
from corral.control.context import ControlPlane
from corral.store.models import Cluster


@dataclass
class FakeRec:
    cp: ControlPlane
    cluster_id: str
    now: float = 1000.0

    def _load(self) -> Cluster:
        with self.cp.store.session() as s:
            return clusters.load_cluster(s, self.cluster_id)
