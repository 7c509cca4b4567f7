"""What agents send and fetch: authentication, reports, plans, step logs, artifacts."""

from __future__ import annotations

import hmac
import re
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.agent.protocol import NodePlan, NodeReport, ReportAck
from corral.control import events
from corral.control.clusters import cluster_steps, load_cluster
from corral.control.context import ControlPlane
from corral.control.heartbeats import node_and_plan
from corral.control.plans import build_plan
from corral.domain import secrets
from corral.domain.states import ClusterState, NodeState, StepFailureCode, StepState
from corral.errors import CorralError, NotFound
from corral.reconcile import health
from corral.reconcile.steps import on_step_finished, set_step_state
from corral.store.models import Cluster, Node, Step, bump_plan_version


class Unauthorized(CorralError):
    status_code = 401


class Gone(CorralError):
    status_code = 410


# Agent phase -> node status while the node is being brought up.
_PHASE_TO_STATUS = {
    "DEPLOYING": NodeState.BOOTSTRAPPING,
    "CONFIGURING": NodeState.BOOTSTRAPPING,
    "BOOTSTRAPPING": NodeState.BOOTSTRAPPING,
    "STARTING": NodeState.STARTING,
    "RUNNING": NodeState.RUNNING,
}
# A LOST node's agent reporting again in a phase that maps to no status above (FAILED: its
# deploy or bootstrap failed; STOPPING/STOPPED) returns to BOOTSTRAPPING, where the
# reconciler sees the failure or the stop.
_RECOVERED_DEFAULT = NodeState.BOOTSTRAPPING
_REPORTED_FINAL = {"COMPLETED": StepState.COMPLETED, "FAILED": StepState.FAILED, "CANCELLED": StepState.CANCELLED}


def authorize(session: Session, node_id: str, token: str) -> tuple[Node, Cluster]:
    node = session.get(Node, node_id)
    if node is None:
        raise NotFound("node", node_id)
    cluster = session.get(Cluster, node.cluster_id)
    assert cluster is not None
    if not hmac.compare_digest(cluster.agent_token.encode(), token.encode()):
        raise Unauthorized("bad agent token")
    if node.status == NodeState.TERMINATED.value:
        raise Gone(f"node {node_id} is terminated")
    return node, cluster


def authorize_cluster(session: Session, token: str, cluster_id: str) -> Cluster:
    cluster = session.get(Cluster, cluster_id)
    if cluster is None or not hmac.compare_digest(cluster.agent_token.encode(), token.encode()):
        raise Unauthorized("bad agent token")
    return cluster


def authorize_any(session: Session, token: str) -> Cluster:
    """The cluster, not yet terminated, whose agent token this is: what a host needs to
    fetch from the runtime repository (the same files for every cluster)."""
    # Tokens are encrypted at rest with a random nonce (corral.secretbox): no SQL equality
    # finds one, so each live cluster's is compared, in constant time.
    ended = (ClusterState.TERMINATED.value, ClusterState.TERMINATED_WITH_ERRORS.value)
    if token:
        for cluster in session.scalars(select(Cluster).where(Cluster.status.not_in(ended))):
            if hmac.compare_digest(cluster.agent_token.encode(), token.encode()):
                return cluster
    raise Unauthorized("bad agent token")


def _apply_steps(session: Session, cluster: Cluster, report: NodeReport) -> bool:
    changed = False
    for step_id, rep in report.steps.items():
        step = session.get(Step, step_id)
        if step is None or step.cluster_id != cluster.id or StepState(step.status).is_terminal():
            continue
        if step.status == StepState.PENDING.value and rep.status in ("RUNNING", *_REPORTED_FINAL):
            set_step_state(session, step, StepState.RUNNING)
            step.started_at = rep.started_at or step.started_at
            changed = True
        final = _REPORTED_FINAL.get(rep.status)
        if final is not None and rep.logs_flushed:
            step.exit_code = rep.exit_code
            hidden = [*(step.secrets or {}).values(), *(cluster.secrets or {}).values()]
            message = secrets.scrub(rep.message, hidden) if rep.message else rep.message
            if step.failure_code == StepFailureCode.TIMEOUT.value:
                final, message = _timed_out(step, final, message)
            set_step_state(session, step, final, message)
            step.ended_at = rep.ended_at or step.ended_at
            on_step_finished(session, cluster, step)
            bump_plan_version(session, cluster)  # the step leaves the master's plan
            changed = True
    return changed


def _timed_out(step: Step, final: StepState, message: str | None) -> tuple[StepState, str | None]:
    """The outcome of a step the reconciler cancelled for its timeout: FAILED with the
    TIMEOUT reason, unless it completed before the cancel reached it."""
    if final is StepState.COMPLETED:
        step.failure_code = None
        return final, message
    reason = step.state_message or "TIMEOUT"
    return StepState.FAILED, reason if final is StepState.CANCELLED or not message else f"{reason}\n{message}"


def apply_report(cp: ControlPlane, node_id: str, token: str, report: NodeReport) -> ReportAck:
    now = time.time()
    fast = cp.heartbeats.answer(cp.store, node_id, token, report, now)  # a repeat of the stored report
    try:
        if fast is not None:
            ack, cluster_id = fast
        else:
            ack, cluster_id = _apply_report(cp, node_id, token, report, now)
            cp.heartbeats.stored(node_id, cluster_id, token, report, ack.last_event_seq)
    except Gone:
        cp.node_metrics.forget(node_id)  # its node is terminated: no current reading
        cp.heartbeats.forget(node_id)
        raise
    # The board is memory only (the sampler keeps the history): no database write per report.
    # An agent that stopped (its last report, as its node stops or goes) measures nothing
    # more, so its reading goes.
    if report.phase == "STOPPED":
        cp.node_metrics.forget(node_id)
    elif report.metrics is not None:
        cp.node_metrics.put(cluster_id, node_id, report.metrics, received_at=now)
    return ack


def _apply_report(cp: ControlPlane, node_id: str, token: str, report: NodeReport, now: float) -> tuple[ReportAck, str]:
    """The report into the store; (the answer, the node's cluster id)."""
    bump = False
    with cp.store.session() as s:
        node, cluster = authorize(s, node_id, token)
        cluster_id = cluster.id
        previous_phase = node.phase
        node.last_heartbeat, node.agent_pid = now, report.agent_pid
        node.phase, node.error, node.error_code = report.phase, report.error, report.error_code
        node.plan_version = report.plan_version
        node.components = {k: v.model_dump() for k, v in report.components.items()}
        for event in report.events:
            if event.seq > node.last_event_seq:
                events.record(s, cluster.id, event.code, event.message, level=event.level, node_id=node.id,
                              component=event.component, at=event.time)
        node.last_event_seq = max([node.last_event_seq, *(e.seq for e in report.events)])
        target = _PHASE_TO_STATUS.get(report.phase)
        recovered = node.status == NodeState.LOST.value
        if recovered:
            health.mark_recovered(s, node, target or _RECOVERED_DEFAULT, now)
        elif target is not None and node.status != NodeState.TERMINATING.value and node.status != target.value:
            if NodeState(node.status).can_become(target):
                node.status = target.value
                if target is NodeState.RUNNING and node.ready_at is None:
                    node.ready_at = now
        bump = _apply_steps(s, cluster, report)
        ack = ReportAck(plan_version=cluster.plan_version, last_event_seq=node.last_event_seq)
        phase_changed = previous_phase != report.phase
    if bump:
        cp.notifier.bump(cluster_id)
    elif phase_changed or report.events or recovered:
        cp.notifier.poke_reconciler(cluster_id)
    return ack, cluster_id


def plan_version(cp: ControlPlane, node_id: str, token: str) -> tuple[str, int]:
    """(cluster id, the cluster's plan version): what a long poll checks before it builds
    the plan, which costs a whole cluster's load and rendering."""
    row = node_and_plan(cp.store, node_id)
    if row is None:
        raise NotFound("node", node_id)
    if not hmac.compare_digest(row.agent_token.encode(), token.encode()):
        raise Unauthorized("bad agent token")
    if row.status == NodeState.TERMINATED.value:
        raise Gone(f"node {node_id} is terminated")
    return row.id, row.plan_version


def current_plan(cp: ControlPlane, node_id: str, token: str) -> tuple[str, NodePlan | None]:
    """(cluster id, the node's plan or None while there is nothing to render yet)."""
    with cp.store.session() as s:
        node, _ = authorize(s, node_id, token)
        cluster = load_cluster(s, node.cluster_id)
        node = next(n for n in cluster.nodes if n.id == node_id)
        shares = cp.providers[cluster.provider].shares_machine if cluster.provider in cp.providers else False
        return cluster.id, build_plan(cluster, node, cluster_steps(s, cluster.id), shares_machine=shares)


def store_log(cp: ControlPlane, step_id: str, token: str, stream: str, offset: int, data: bytes) -> int:
    with cp.store.session() as s:
        step = s.get(Step, step_id)
        if step is None:
            raise NotFound("step", step_id)
        cluster = authorize_cluster(s, token, step.cluster_id)
        cluster_id = step.cluster_id
        hidden = [*(step.secrets or {}).values(), *(cluster.secrets or {}).values()]
    size = cp.logs.append(cluster_id, step_id, stream, offset, mask_secrets(data, hidden))
    if size == offset + len(data) and data:  # these bytes are in the log (a retry re-scans; ids dedupe)
        _record_applications(cp, cluster_id, step_id, stream, offset, data)
    return size


def mask_secrets(data: bytes, values: list[str]) -> bytes:
    """Secrets a step's program printed, starred out byte for byte: the agent resumes
    uploads by offset, so the stored log keeps the length it sent."""
    for value in values:
        if len(value) >= 4:
            raw = value.encode()
            data = data.replace(raw, b"*" * len(raw))
    return data


# Logged by YARN's client (YarnClientImpl) for every submission: MapReduce, Spark, any.
_SUBMITTED = re.compile(rb"Submitted application (application_\d+_\d+)")
# Logged by a driver that registered with a standalone Spark Master
# (StandaloneSchedulerBackend: "Connected to Spark cluster with app ID app-...").
_SPARK_CONNECTED = re.compile(rb"Connected to Spark cluster with app ID (app-\d+-\d+)", re.IGNORECASE)


def _record_applications(cp: ControlPlane, cluster_id: str, step_id: str, stream: str, offset: int, data: bytes) -> None:
    """Note YARN and standalone Spark application ids in the newly stored bytes, with the
    200 stored before them, so an id split across two uploads is still found."""
    start = max(0, offset - 200)
    text = cp.logs.read(cluster_id, step_id, stream, start, offset - start) + data
    yarn = [m.decode() for m in _SUBMITTED.findall(text)]
    spark = [m.decode() for m in _SPARK_CONNECTED.findall(text)]
    if not yarn and not spark:
        return
    with cp.store.session() as s:
        step = s.get(Step, step_id)
        if step is None:
            return
        for column, found, what in (("yarn_application_ids", yarn, "YARN_APPLICATION"),
                                    ("spark_application_ids", spark, "SPARK_APPLICATION")):
            known = list(getattr(step, column) or [])
            new = [app for app in dict.fromkeys(found) if app not in known]
            if new:
                setattr(step, column, known + new)
                events.record(s, cluster_id, f"STEP_{what}", f"step {step_id} submitted {', '.join(new)}", step_id=step_id)
