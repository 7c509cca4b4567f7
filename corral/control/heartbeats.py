"""Agent reports that only say "still here": answered without a write each.

A RUNNING agent sends the same report every 2 s (``corral.agent.agent.HEARTBEAT_SECONDS``)
while nothing on its node changes. Storing each one cost a node and a cluster row loaded,
an UPDATE and a commit, for every node of every cluster: the control plane's main load
with hundreds of nodes. Here a report identical to the one last stored for the node (all
but its measurement, which goes to the in-memory board anyway), from a RUNNING agent with
no events, is answered from one small read (the node's status and its cluster's plan
version, so a terminated node still hears 410 and the agent still learns of a new plan);
its heartbeat time is kept in memory and written for every such node in one UPDATE every
FLUSH_SECONDS by the reconcile loop's tick, before every cluster pass (which reads them),
and at the server's shutdown. A report that differs in anything goes the full way.

What a kill -9 can lose is at most FLUSH_SECONDS of heartbeat times: well inside
``AGENT_LOST_SECONDS`` (20 s), after which a silent agent is only checked, not failed.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update

from corral.agent.protocol import NodeReport, ReportAck
from corral.domain.states import NodeState
from corral.store.db import Store
from corral.store.models import Cluster, Node

FLUSH_SECONDS = 2.0
_TERMINATED = NodeState.TERMINATED.value


@dataclass
class _Stored:
    cluster_id: str
    token: str  # the cluster's agent token that the last stored report was authorized with
    digest: bytes
    last_event_seq: int


# Built once: a statement built per call leaves a reference cycle (its bound parameter's)
# for the garbage collector each time, and this one runs for every report and long poll.
_NODE_AND_PLAN = (select(Node.status, Cluster.id, Cluster.plan_version, Cluster.agent_token)
                  .join(Cluster, Cluster.id == Node.cluster_id).where(Node.id == bindparam("node_id")))


def node_and_plan(store: Store, node_id: str) -> Any:
    """The node's status with its cluster's id, plan version and agent token, in one small
    read (no row objects, nothing else of the cluster); None for an unknown node."""
    with store.session() as s:
        return s.execute(_NODE_AND_PLAN, {"node_id": node_id}).first()


def digest(report: NodeReport) -> bytes:
    return hashlib.blake2b(report.model_dump_json(exclude={"metrics"}).encode(), digest_size=16).digest()


class Heartbeats:
    """Thread-safe: report handlers run on the server's worker threads."""

    def __init__(self) -> None:
        self._stored: dict[str, _Stored] = {}
        self._pending: dict[str, tuple[float, int]] = {}  # node id -> (heartbeat time, agent pid) not yet written
        self._lock = threading.Lock()
        self._flushed_at = 0.0
        self._flushing = threading.Lock()

    def stored(self, node_id: str, cluster_id: str, token: str, report: NodeReport, last_event_seq: int) -> None:
        """The full path wrote this report: the next identical one may take the fast path."""
        with self._lock:
            self._pending.pop(node_id, None)  # that write carried a newer heartbeat
            if report.phase == "RUNNING" and not report.events:
                self._stored[node_id] = _Stored(cluster_id, token, digest(report), last_event_seq)
            else:
                self._stored.pop(node_id, None)

    def forget(self, node_id: str) -> None:
        with self._lock:
            self._stored.pop(node_id, None)
            self._pending.pop(node_id, None)

    def answer(self, store: Store, node_id: str, token: str, report: NodeReport,
               now: float) -> tuple[ReportAck, str] | None:
        """(the answer, the cluster id) when the report repeats the stored one; None: take
        the full path (it differs, or the node is not RUNNING or is terminated)."""
        if report.phase != "RUNNING" or report.events:
            return None
        with self._lock:
            known = self._stored.get(node_id)
        if known is None or not hmac.compare_digest(known.token.encode(), token.encode()) \
                or known.digest != digest(report):
            return None
        row = node_and_plan(store, node_id)
        if row is None or row.status != NodeState.RUNNING.value:
            return None  # gone (the full path says 410), LOST (its recovery), or moved on: the full path's
        with self._lock:
            self._pending[node_id] = (now, report.agent_pid)
        return ReportAck(plan_version=row.plan_version, last_event_seq=known.last_event_seq), known.cluster_id

    def flush(self, store: Store, now: float, force: bool = False, cluster_id: str | None = None) -> int:
        """Write the heartbeat times kept in memory, at most every FLUSH_SECONDS unless
        ``force``; only ``cluster_id``'s nodes when given (what its pass is about to read);
        how many were written."""
        if not force and now - self._flushed_at < FLUSH_SECONDS:
            return 0
        if cluster_id is None and not self._flushing.acquire(blocking=False):
            return 0  # another thread is writing them
        try:
            with self._lock:
                if cluster_id is None:
                    pending, self._pending = self._pending, {}
                    self._flushed_at = now
                else:
                    mine = [n for n in self._pending if (s := self._stored.get(n)) is not None and s.cluster_id == cluster_id]
                    pending = {n: self._pending.pop(n) for n in mine}
            if pending:
                with store.session() as s:
                    s.connection().execute(
                        update(Node).where(Node.id == bindparam("node_id"), Node.status != _TERMINATED,
                                           (Node.last_heartbeat.is_(None)) | (Node.last_heartbeat < bindparam("at")))
                        .values(last_heartbeat=bindparam("at"), agent_pid=bindparam("pid")),
                        [{"node_id": node, "at": at, "pid": pid} for node, (at, pid) in pending.items()])
            return len(pending)
        finally:
            if cluster_id is None:
                self._flushing.release()
