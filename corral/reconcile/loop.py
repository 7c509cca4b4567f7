"""The reconcile loop: a thread that runs a pass over every live cluster, twice a second
or as soon as something changes, with at most one pass per cluster in flight; the
registered hosts' checks and liveness probes (``corral.reconcile.hosts``, its own pool);
and, every CLEANUP_SECONDS, a sweep of the machines providers still have to clean (a node
terminated while its host was unreachable: ``corral.providers.base.CleaningProvider``)."""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from corral.alerts.engine import AlertEngine
from corral.control import events
from corral.control.context import ControlPlane
from corral.domain.states import ClusterState, ClusterTarget, GroupState, NodeState, NodeTarget
from corral.providers.base import NodeUnreachable, pending_cleanups
from corral.reconcile import deadlines
from corral.reconcile.clusters import ClusterReconciler
from corral.reconcile.health import PROBE_WORKERS
from corral.reconcile.hosts import HostReconciler
from corral.reconcile.sampler import MetricsSampler
from corral.reconcile.workers import KeyedPool
from corral.store.models import Cluster, Node, NodeGroup

log = logging.getLogger("corral.reconcile")
TERMINAL = [s.value for s in ClusterState if s.is_terminal()]
INTERVAL = 0.5
# A cluster at rest (WAITING, no node or group on its way anywhere) gets a pass
# every STEADY_PASS_SECONDS unless something pokes it (a report that changes a node, a
# request, a new sample): its watches' periods (idle 10 s, waits 5 s, timeouts) are longer,
# and a pass over every node of every such cluster twice a second is what a control plane
# with hundreds of nodes would spend its time on.
STEADY_PASS_SECONDS = 2.0
# RUNNING (a step active) is not at rest: its waits, timeouts and cancels are watched every tick.
_STEADY_STATES = (ClusterState.WAITING.value,)
CLEANUP_SECONDS = 30.0  # how often hosts left to clean are tried again
_SWEEP = "__cleanup__"  # the sweep's slot among the busy passes


def at_rest(session: Session, cluster: Cluster) -> bool:
    """WAITING (no step active) with every node RUNNING (or gone) and staying, and every
    group at its size: nothing a pass has to move along soon."""
    if cluster.status not in _STEADY_STATES or cluster.target != ClusterTarget.ACTIVE.value:
        return False
    moving_node = session.scalar(select(Node.id).where(
        Node.cluster_id == cluster.id, Node.status != NodeState.TERMINATED.value,
        or_(Node.status != NodeState.RUNNING.value, Node.target != NodeTarget.RUNNING.value,
            Node.decommission_state.is_not(None))).limit(1))
    if moving_node is not None:
        return False
    moving_group = session.scalar(select(NodeGroup.id).where(
        NodeGroup.cluster_id == cluster.id,
        NodeGroup.status.not_in((GroupState.RUNNING.value, GroupState.TERMINATED.value))).limit(1))
    return moving_group is None


class Reconciler:
    def __init__(self, cp: ControlPlane, workers: int = 8, clock: Callable[[], float] = time.time):
        self.cp = cp
        self.clock = clock  # epoch seconds; tests pass their own
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reconcile")
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reconciler", daemon=True)
        self._last_sweep = 0.0
        self.hosts = HostReconciler(cp, clock=clock)  # host checks and liveness, in a pool of their own
        self.probes = KeyedPool(PROBE_WORKERS, "node-probe")  # silent nodes' agent checks (reconcile.health)
        self.sampler = MetricsSampler(cp, clock=clock, tick_seconds=INTERVAL)  # the one metrics sampler, on its own pool
        self._at_rest: set[str] = set()  # clusters whose last pass found them at rest (STEADY_PASS_SECONDS)
        self._last_pass: dict[str, float] = {}
        self._poked_while_busy: set[str] = set()
        # Alert rules on samples and events, and their webhook deliveries (on a pool of their own).
        self.alerts = AlertEngine(cp.store, cp.settings.agent_url, clock=clock)
        self.sampler.listeners.append(self.alerts.on_sample)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.cp.notifier.poke_reconciler()
        self._thread.join(10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.hosts.stop()
        self.probes.stop()
        self.sampler.stop()
        self.alerts.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the loop must survive e.g. a database hiccup
                log.exception("reconcile tick failed")
            self.cp.notifier.reconcile_now.wait(INTERVAL)
            self.cp.notifier.reconcile_now.clear()

    def tick(self) -> None:
        try:
            self.hosts.tick()
        except Exception:  # noqa: BLE001 - the clusters' pass goes on
            log.exception("host pass failed")
        try:
            self.sampler.tick()
        except Exception:  # noqa: BLE001 - the clusters' pass goes on
            log.exception("metrics sampler tick failed")
        try:
            self.alerts.tick()
        except Exception:  # noqa: BLE001 - the clusters' pass goes on
            log.exception("alerts tick failed")
        now = self.clock()
        try:
            self.cp.heartbeats.flush(self.cp.store, time.time())  # heartbeat times answered from memory
        except Exception:  # noqa: BLE001 - the next tick or report writes them
            log.exception("heartbeat flush failed")
        every, poked = self.cp.notifier.take_pokes()
        poked |= self._poked_while_busy
        self._poked_while_busy = set()
        with self.cp.store.session() as s:
            ids = list(s.scalars(select(Cluster.id).where(Cluster.status.not_in(TERMINAL), Cluster.next_attempt_at <= now)))
            live = set(s.scalars(select(Cluster.id).where(Cluster.status.not_in(TERMINAL))))
        for ended in [c for c in self._last_pass if c not in live]:
            self._last_pass.pop(ended, None)
            self._at_rest.discard(ended)
        # Clusters at rest take turns: at most their share of the steady interval per tick,
        # the longest waiting first, so their passes spread out instead of all landing on
        # the same tick (a burst that held agent reports up for a quarter of a second).
        resting_due = sorted((c for c in ids if c in self._at_rest and not (every or c in poked)
                              and now - self._last_pass.get(c, 0.0) >= STEADY_PASS_SECONDS),
                             key=lambda c: self._last_pass.get(c, 0.0))
        share = max(1, math.ceil(len(self._at_rest) * INTERVAL / STEADY_PASS_SECONDS))
        resting_now = set(resting_due[:share])
        for cluster_id in ids:
            wanted = every or cluster_id in poked
            if not wanted and cluster_id in self._at_rest and cluster_id not in resting_now:
                continue
            with self._lock:
                if cluster_id in self._busy:
                    if wanted:  # taken now, so it is not lost: the pass after this one
                        self._poked_while_busy.add(cluster_id)
                    continue
                self._busy.add(cluster_id)
            self._last_pass[cluster_id] = now
            self._pool.submit(self._pass, cluster_id)
        if now - self._last_sweep >= CLEANUP_SECONDS:
            with self._lock:
                if _SWEEP in self._busy:
                    return
                self._busy.add(_SWEEP)
            self._last_sweep = now
            self._pool.submit(self._sweep)

    def sweep(self) -> int:
        """Clean what providers have left to clean; returns how many nodes were cleaned. A
        machine that still does not answer is tried again on the next sweep."""
        cleaned = 0
        for name, provider in self.cp.providers.items():
            try:
                pending = pending_cleanups(provider)
            except Exception:  # noqa: BLE001 - e.g. a database hiccup; next sweep
                log.exception("cannot list the nodes provider %s has to clean", name)
                continue
            for node_id in pending:
                try:
                    provider.terminate_node(node_id, timeout=5.0)
                except NodeUnreachable:
                    continue
                except Exception as exc:  # noqa: BLE001 - recorded, tried again
                    log.warning("cleaning node %s (provider %s) failed: %s", node_id, name, exc)
                    continue
                cleaned += 1
                with self.cp.store.session() as s:
                    node = s.get(Node, node_id)
                    if node is not None:
                        events.record(s, node.cluster_id, "NODE_CLEANED",
                                      f"node {node_id}'s machine answers again: cleaned and released", node_id=node_id)
        return cleaned

    def _sweep(self) -> None:
        try:
            self.sweep()
        except Exception:  # noqa: BLE001
            log.exception("cleanup sweep failed")
        finally:
            with self._lock:
                self._busy.discard(_SWEEP)

    def _pass(self, cluster_id: str) -> None:
        started, ok = time.perf_counter(), True  # a duration: the monotonic clock, not self.clock
        try:
            ClusterReconciler(self.cp, cluster_id, self.clock, probes=self.probes).run()
            with self.cp.store.session() as s:
                cluster = s.get(Cluster, cluster_id)
                if cluster is not None and cluster.attempts:
                    cluster.attempts = 0
                resting = cluster is not None and at_rest(s, cluster)
            (self._at_rest.add if resting else self._at_rest.discard)(cluster_id)
        except Exception as exc:  # noqa: BLE001 - retried with backoff, recorded as an event
            ok = False
            log.exception("reconcile pass for %s failed", cluster_id)
            try:
                with self.cp.store.session() as s:
                    cluster = s.get(Cluster, cluster_id)
                    if cluster is not None:
                        cluster.attempts += 1
                        cluster.next_attempt_at = self.clock() + deadlines.backoff(cluster.attempts)
                        events.record(s, cluster_id, "RECONCILE_ERROR", f"{type(exc).__name__}: {exc}", level="WARN")
            except Exception:  # noqa: BLE001
                log.exception("could not record the failure of %s", cluster_id)
        finally:
            self.cp.telemetry.reconcile_pass(time.perf_counter() - started, ok)
            with self._lock:
                self._busy.discard(cluster_id)
