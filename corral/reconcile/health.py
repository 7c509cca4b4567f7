"""Node health: the one notion of a node being LOST, shared by the reconciler (which finds
it), agent reports (which end it), readiness and ``cluster describe`` (which show it), and
later resize, node replacement and monitoring (which act on it).

A node is LOST when its agent stopped reporting (``deadlines.AGENT_LOST_SECONDS``) and its
provider says its machine does not answer (``NodeUnreachable``) — YARN's word for a silent
NodeManager. The row keeps:

- ``status`` LOST (``NodeState``: from any live state; back to what the agent reports),
- ``lost_at``: when the reconciler found the machine unreachable,
- ``status_reason``: ``<subject> since HH:MM:SS: <error>``, e.g. ``host h2 (198.18.3.12)
  unreachable over SSH since 10:02:13: no SSH answer within 10 s (timed out)``.

Events: NODE_LOST (WARN) once when it starts, NODE_RECOVERED (INFO) with how long it
lasted when the agent reports again. The cluster stays up while a node is LOST, up to
``deadlines.NODE_LOST_SECONDS`` (15 min by default); then the cluster fails as for a node
that is gone (INSTANCE_FAILURE).

The machines of silent nodes are asked in parallel (``probe_all``, on the reconciler's
``KeyedPool`` of node probes): with many hosts down, one pass waits about one probe's
deadline (``deadlines.NODE_PROBE_SECONDS``), not one per host, and a host that hangs past
its deadline counts as not answering without holding up the others' results. Its probe
keeps its worker until it returns, and the node is not asked again meanwhile.
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from typing import Callable, Generic, Mapping, TypeVar

from sqlalchemy.orm import Session

from corral.control import events
from corral.domain.states import NodeState
from corral.reconcile import deadlines
from corral.reconcile.workers import Job, KeyedPool
from corral.store.models import Node

T = TypeVar("T")
PROBE_WORKERS = 16  # node probes wait on the network, not the CPU


def clock_time(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def mark_lost(session: Session, node: Node, subject: str, detail: str, now: float) -> bool:
    """Record that ``node``'s machine did not answer; returns True when this starts a LOST
    spell (an event is recorded), False when it only refreshes the reason. The next
    attempt is ``deadlines.lost_retry`` away."""
    node.attempts += 1
    node.next_attempt_at = now + deadlines.lost_retry(node.attempts)
    starts = node.status != NodeState.LOST.value
    if starts:
        NodeState(node.status).check_transition(NodeState.LOST)
        node.status, node.lost_at = NodeState.LOST.value, now
    node.status_reason = f"{subject} since {clock_time(node.lost_at or now)}: {detail}"
    if starts:
        silent = f"; last report {clock_time(node.last_heartbeat)}" if node.last_heartbeat else ""
        events.record(session, node.cluster_id, "NODE_LOST",
                      f"{node.role} node {node.id} is lost: {node.status_reason}{silent}", level="WARN", node_id=node.id)
    return starts


def note_answering(node: Node, detail: str) -> None:
    """The machine of a LOST node answers again but its agent has not reported yet."""
    if node.status == NodeState.LOST.value:
        node.status_reason = f"{detail} (lost since {clock_time(node.lost_at or 0)})"


def mark_recovered(session: Session, node: Node, status: NodeState, now: float) -> None:
    """A LOST node's agent reported: back to ``status``, with a NODE_RECOVERED event."""
    lost_for = now - (node.lost_at or now)
    was = node.status_reason
    NodeState(node.status).check_transition(status)
    node.status = status.value
    node.lost_at, node.status_reason = None, None
    node.attempts, node.next_attempt_at = 0, 0.0
    events.record(session, node.cluster_id, "NODE_RECOVERED",
                  f"{node.role} node {node.id} re-attached after {duration(lost_for)} lost"
                  + (f" ({was})" if was else ""), node_id=node.id)


def lost_too_long(node: Node, now: float) -> bool:
    return (node.status == NodeState.LOST.value and node.lost_at is not None
            and now - node.lost_at > deadlines.NODE_LOST_SECONDS)


def unhealthy(nodes: list[Node]) -> list[str]:
    """``<node> (<role>) LOST: <reason>`` for each LOST node, for readiness and timeout messages."""
    return [f"{n.id} ({n.role}) LOST: {n.status_reason}" for n in nodes if n.status == NodeState.LOST.value]


# -- asking many machines at once ---------------------------------------------------------------


@dataclass(frozen=True)
class Probed(Generic[T]):
    """One probe's outcome: its ``value``, the ``error`` it raised, ``timed_out`` (it ran
    past its deadline: its machine counts as not answering), or ``skipped`` (not asked
    now: an earlier probe of it still runs, or no worker took it up within the deadline)."""

    value: T | None = None
    error: BaseException | None = None
    timed_out: bool = False
    skipped: bool = False


@functools.lru_cache(maxsize=1)
def default_probes() -> KeyedPool:
    """The process's pool of node probes when the caller brings none (the reconcile loop does)."""
    return KeyedPool(PROBE_WORKERS, "node-probe")


def probe_all(pool: KeyedPool, probes: Mapping[str, Callable[[], T]], deadline: float) -> dict[str, Probed[T]]:
    """Run every probe (key -> call) on ``pool`` at once and return each outcome as soon as
    it is known: each probe gets ``deadline`` seconds (the pool's clock) from when a
    worker takes it up, so this returns within about one deadline (two when the pool was
    full), however many probes hang."""
    started = pool.clock()
    results: dict[str, Probed[T]] = {}
    jobs: dict[str, Job[T]] = {}
    for key, call in probes.items():
        job = pool.submit(key, call)
        if job is None:
            results[key] = Probed(skipped=True)
        else:
            jobs[key] = job
    while jobs:
        now = pool.clock()
        for key, job in list(jobs.items()):
            if job.future.done():
                error = job.future.exception()
                results[key] = Probed(error=error) if error is not None else Probed(value=job.future.result())
            elif job.started is not None and now - job.started >= deadline:
                results[key] = Probed(timed_out=True)
            elif job.started is None and now - started >= deadline and pool.cancel(job):
                results[key] = Probed(skipped=True)
            else:
                continue
            del jobs[key]
        if jobs:
            due = min((j.started if j.started is not None else started) + deadline for j in jobs.values())
            wait([j.future for j in jobs.values()], timeout=min(max(0.01, due - now), deadline),
                 return_when=FIRST_COMPLETED)
    return results
