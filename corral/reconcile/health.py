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
"""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from corral.control import events
from corral.domain.states import NodeState
from corral.reconcile import deadlines
from corral.store.models import Node


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
