"""One reconcile pass over one cluster: move its status toward its target.

STARTING       provider creates nodes (idempotently), agents register
BOOTSTRAPPING  agents deploy, configure, bootstrap and start daemons; services confirm readiness
WAITING/RUNNING  steps are dispatched one at a time; lost agents are restarted
TERMINATING    agents stop their daemons; the provider releases every node

Provider calls and HTTP checks run outside database transactions; each write is a short
transaction of its own, so a kill at any point leaves a state the next pass continues from.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Callable

from sqlalchemy.orm import Session

from corral.control import events
from corral.control.clusters import cluster_steps, load_cluster, request_termination
from corral.control.context import ControlPlane
from corral.control.views import cluster_view, in_service_view
from corral.domain.states import (ClusterState, ClusterTarget, NodeState, NodeTarget, StateChangeCode,
                                  StepFailureCode, StepState)
from corral.providers.base import Liveness, NodeBroken, NodeRequest, NodeUnreachable
from corral.reconcile import autoscaling, deadlines, health, idle_watch, replace, resize, sampler, step_cost, step_watch
from corral.reconcile import steps as step_queue
from corral.reconcile.workers import KeyedPool
from corral.services.registry import get_service
from corral.store.models import Cluster, Node, Step, bump_plan_version, cluster_row

log = logging.getLogger("corral.reconcile")
STATE_DEADLINES = {
    ClusterState.STARTING: deadlines.STARTING_SECONDS,
    ClusterState.BOOTSTRAPPING: deadlines.BOOTSTRAPPING_SECONDS,
    ClusterState.TERMINATING: deadlines.TERMINATING_SECONDS,
}


def transition(session: Session, cluster: Cluster, state: ClusterState, message: str | None = None) -> None:
    current = ClusterState(cluster.status)
    if current is state:
        return
    current.check_transition(state)
    now = time.time()
    cluster.status, cluster.status_changed_at = state.value, now
    limit = STATE_DEADLINES.get(state)
    cluster.deadline_at = now + limit if limit else None
    if message is not None:
        cluster.state_message = message
    if state.is_up() and cluster.ready_at is None:
        cluster.ready_at = now
    if state.is_terminal():
        cluster.ended_at = now
    events.record(session, cluster.id, "CLUSTER_STATE_CHANGED", f"{current.value} -> {state.value}"
                  + (f": {message}" if message else ""), level="ERROR" if state is ClusterState.TERMINATED_WITH_ERRORS else "INFO")


SERVICE_CHECK_SECONDS = 10.0
DEGRADED = "DEGRADED: "
_last_service_check: dict[str, float] = {}  # per process: a restart only checks once more


class ClusterReconciler:
    def __init__(self, cp: ControlPlane, cluster_id: str, clock: Callable[[], float] = time.time,
                 probes: KeyedPool | None = None):
        self.cp = cp
        self.cluster_id = cluster_id
        self.now = clock()  # epoch seconds: one reading per pass
        self.probes = probes or health.default_probes()  # silent nodes' agent checks, shared by passes
        self._loaded: tuple[int, Cluster] | None = None  # (the store's write count, what _load read then)

    # -- helpers ---------------------------------------------------------------------------------

    def _load(self) -> Cluster:
        """The cluster with its nodes and groups, detached. What this pass read before when
        the pass has written nothing since (``Store.writes``, this thread's writes): a pass
        asks for it again after each of its watches, to see what they wrote, and loading a
        cluster of many nodes was most of the work of a pass over a cluster at rest. What
        other threads write meanwhile, the next pass reads. Callers change rows only in
        sessions of their own."""
        count = self.cp.store.writes.value
        if self._loaded is not None and self._loaded[0] == count:
            return self._loaded[1]
        with self.cp.store.session() as s:
            cluster = load_cluster(s, self.cluster_id)
        self._loaded = (count, cluster)
        return cluster

    def _request(self, cluster: Cluster, node: Node) -> NodeRequest:
        return NodeRequest(node_id=node.id, cluster_id=cluster.id, role=node.role, instance_type=node.instance_type,
                           agent_token=cluster.agent_token, control_url=self.cp.settings.agent_url)

    def _fail(self, code: StateChangeCode, message: str) -> None:
        with self.cp.store.session() as s:
            cluster = load_cluster(s, self.cluster_id)
            request_termination(s, cluster, code, message, failure=True)
            events.finish_operation(s, cluster.id, "CREATE_CLUSTER", ok=False, message=message)
        self.cp.notifier.bump(self.cluster_id)

    def _node_failed(self, node: Node, message: str, said: bool = False) -> None:
        """Retry the node later, with backoff; an event says why unless ``said`` already."""
        with self.cp.store.session() as s:
            row = s.get(Node, node.id)
            assert row is not None
            row.attempts += 1
            row.next_attempt_at = self.now + deadlines.backoff(row.attempts)
            if not said:
                events.record(s, node.cluster_id, "NODE_ERROR", message, level="WARN", node_id=node.id)

    # -- entry -------------------------------------------------------------------------------------

    def run(self) -> None:
        # Heartbeats answered from memory are in the store before this pass reads its
        # nodes' last_heartbeat (a leaver's stop grace, a probe's "it reported" test).
        self.cp.heartbeats.flush(self.cp.store, self.now, force=True, cluster_id=self.cluster_id)
        cluster = self._load()
        state = ClusterState(cluster.status)
        if state.is_terminal():
            return
        if cluster.target == ClusterTarget.TERMINATED.value and state is not ClusterState.TERMINATING:
            # A step that failed the cluster (TERMINATE_CLUSTER) is diagnosed while its
            # daemons still answer: agents stop them once the plan says terminate.
            if state.is_up():
                step_watch.diagnose_failures(self.cp, cluster, cluster_view(cluster), self.now)
            self._begin_terminating(cluster)
            return
        if cluster.deadline_at is not None and self.now > cluster.deadline_at and state is not ClusterState.TERMINATING:
            self._fail(StateChangeCode.TIMEOUT, self._timeout_message(cluster))
            return
        {
            ClusterState.STARTING: self._starting,
            ClusterState.BOOTSTRAPPING: self._bootstrapping,
            ClusterState.RUNNING: self._up,
            ClusterState.WAITING: self._up,
            ClusterState.TERMINATING: self._terminating,
        }[state](cluster)

    def _timeout_message(self, cluster: Cluster) -> str:
        late = [f"{n.id} ({n.role}) {n.status}" + (f": {n.status_reason}" if n.status_reason else "")
                for n in cluster.nodes if n.status != NodeState.RUNNING.value]
        return f"cluster stayed {cluster.status} past its deadline; nodes not ready: {', '.join(late) or 'none'}" + (
            f"; last readiness check: {cluster.ready_check}" if cluster.ready_check else "")

    # -- STARTING ------------------------------------------------------------------------------------

    def provision(self, cluster: Cluster, nodes: list[Node]) -> tuple[int, tuple[Node, str] | None]:
        """Have the provider create each REQUESTED node of ``nodes`` (and again each
        PROVISIONING one whose agent never reported), idempotently by node id. Returns how
        many it created, and the first node that can never be provisioned with why (the
        provider says it is broken, or it failed MAX_PROVIDER_ATTEMPTS times): the caller
        decides what that means (at create, the cluster fails; in a resize, the resize)."""
        provider = self.cp.provider(cluster.provider)
        created = 0
        for node in nodes:
            silent = (node.status == NodeState.PROVISIONING.value and node.last_heartbeat is None
                      and self.now - (node.provider_data.get("started_at") or 0) > 15)
            if node.next_attempt_at > self.now or not (node.status == NodeState.REQUESTED.value or silent):
                continue
            if silent:
                try:
                    if provider.query_node(node.id) is Liveness.RUNNING:
                        continue
                except NodeBroken as exc:
                    return created, (node, f"node {node.id} ({node.role}) cannot be provisioned: {exc}")
                except Exception:  # noqa: BLE001 - unknown: create_node below says what is wrong, with backoff
                    log.info("query_node %s failed; creating it again", node.id, exc_info=True)
            if node.attempts >= deadlines.MAX_PROVIDER_ATTEMPTS:
                return created, (node, f"node {node.id} could not be provisioned after {node.attempts} attempts; "
                                       f"see {node.directory or 'its directory'}/logs/agent.log")
            try:
                handle = provider.create_node(self._request(cluster, node))
            except NodeBroken as exc:  # never usable: no retry
                return created, (node, f"node {node.id} ({node.role}) cannot be provisioned: {exc}")
            except Exception as exc:  # noqa: BLE001 - any provider failure is retried with backoff
                log.exception("create_node %s failed", node.id)
                self._node_failed(node, f"provisioning failed: {exc}")
                continue
            with self.cp.store.session() as s:
                row = s.get(Node, node.id)
                c = s.get(Cluster, cluster.id)
                assert row is not None and c is not None
                if row.status == NodeState.PROVISIONING.value:
                    row.attempts += 1  # a re-created agent: counts toward the limit
                row.address, row.directory = handle.address, handle.directory
                row.provider_data = {**handle.data, "started_at": self.now}
                row.agent_pid = handle.data.get("agent_pid")
                if row.status == NodeState.REQUESTED.value:
                    NodeState(row.status).check_transition(NodeState.PROVISIONING)
                    row.status = NodeState.PROVISIONING.value
                    events.record(s, cluster.id, "NODE_PROVISIONED", f"{row.role} node {row.id} at {row.address}",
                                  node_id=row.id)
                bump_plan_version(s, c)
            created += 1
        if created:
            self.cp.notifier.bump(cluster.id)
        return created, None

    def _starting(self, cluster: Cluster) -> None:
        created, broken = self.provision(cluster, list(cluster.nodes))
        if broken is not None:
            self._fail(StateChangeCode.INSTANCE_FAILURE, broken[1])
            return
        if created:
            cluster = self._load()
        provisioned = sum(1 for n in cluster.nodes if n.status != NodeState.REQUESTED.value)
        registered = sum(1 for n in cluster.nodes if n.last_heartbeat is not None)
        total = len(cluster.nodes)
        with self.cp.store.session() as s:
            c = load_cluster(s, cluster.id)
            if registered == total:
                events.progress(s, c.id, "CREATE_CLUSTER", "PROVISION_NODES", "DONE", f"{total}/{total} agents registered")
                events.progress(s, c.id, "CREATE_CLUSTER", "DEPLOY_AND_BOOTSTRAP", "RUNNING")
                transition(s, c, ClusterState.BOOTSTRAPPING, "Deploying the runtime, configuring, running bootstrap actions")
            else:
                events.progress(s, c.id, "CREATE_CLUSTER", "PROVISION_NODES", "RUNNING",
                                f"{provisioned}/{total} nodes provisioned, {registered}/{total} agents registered")

    # -- BOOTSTRAPPING -------------------------------------------------------------------------------

    def _node_problem(self, cluster: Cluster) -> tuple[StateChangeCode, str] | None:
        for node in cluster.nodes:
            if node.phase == "FAILED":
                code = (StateChangeCode.BOOTSTRAP_FAILURE if node.error_code == "BOOTSTRAP_FAILURE"
                        else StateChangeCode.INSTANCE_FAILURE)
                return code, f"node {node.id} ({node.role}, {node.address}) failed: {node.error}"
            for name, comp in (node.components or {}).items():
                if comp.get("status") == "FAILED":
                    return StateChangeCode.INSTANCE_FAILURE, f"{name} on node {node.id} ({node.address}) failed: {comp.get('message')}"
        return None

    def _bootstrapping(self, cluster: Cluster) -> None:
        problem = self._node_problem(cluster)
        if problem:
            self._fail(*problem)
            return
        self._watch_agents(cluster)
        nodes = cluster.nodes
        started = sum(1 for n in nodes if n.phase in ("STARTING", "RUNNING"))
        comps = [c for n in nodes for c in (n.components or {}).values()]
        running = sum(1 for c in comps if c.get("status") == "RUNNING")
        with self.cp.store.session() as s:
            lost = health.unhealthy(nodes)
            if started < len(nodes) or lost:
                phases = ", ".join(sorted({n.phase or "?" for n in nodes}))
                events.progress(s, cluster.id, "CREATE_CLUSTER", "DEPLOY_AND_BOOTSTRAP", "RUNNING",
                                f"{started}/{len(nodes)} nodes done (phases: {phases})"
                                + "".join(f"; {line}" for line in lost))
                return
            events.progress(s, cluster.id, "CREATE_CLUSTER", "DEPLOY_AND_BOOTSTRAP", "DONE",
                            f"{len(nodes)}/{len(nodes)} nodes deployed, configured and bootstrapped")
            events.progress(s, cluster.id, "CREATE_CLUSTER", "START_SERVICES", "RUNNING",
                            f"{running}/{len(comps)} daemons running")
        if not all(n.status == NodeState.RUNNING.value for n in nodes):
            return
        view = cluster_view(cluster)
        checks = [get_service(name).check_ready(view, timeout=1.0) for name in cluster.services]
        detail = "; ".join(c.detail for c in checks)
        with self.cp.store.session() as s:
            c = load_cluster(s, cluster.id)
            c.ready_check = detail
            events.progress(s, c.id, "CREATE_CLUSTER", "CHECK_READY", "RUNNING", detail)
            if all(ch.ready for ch in checks):
                events.finish_operation(s, c.id, "CREATE_CLUSTER", ok=True, message=detail)
                transition(s, c, ClusterState.WAITING, "Cluster ready after "
                           f"{self.now - c.created_at:.1f}s: {detail}")
        self.cp.notifier.poke_reconciler(cluster.id)

    # -- WAITING / RUNNING ---------------------------------------------------------------------------

    def _watch_agents(self, cluster: Cluster) -> None:
        """Check every node whose agent stopped reporting: restart an agent whose process
        is gone (a kill -9, a host reboot), mark LOST a node whose machine does not answer
        (``corral.reconcile.health``), fail the cluster when one is gone, broken, or LOST
        for longer than ``deadlines.NODE_LOST_SECONDS``."""
        provider = self.cp.provider(cluster.provider)
        # A node being released (TERMINATING) is stopping on purpose: not watched.
        silent = [n for n in cluster.nodes if n.status not in (NodeState.REQUESTED.value, NodeState.TERMINATING.value,
                                                               NodeState.TERMINATED.value)
                  and n.last_heartbeat is not None and self.now - n.last_heartbeat >= deadlines.AGENT_LOST_SECONDS]
        for node in silent:
            if health.lost_too_long(node, self.now) and not replace.replaceable(cluster, node):
                self._fail(StateChangeCode.INSTANCE_FAILURE,
                           f"node {node.id} ({node.role}) lost for more than {health.duration(deadlines.NODE_LOST_SECONDS)}: "
                           f"{node.status_reason}")
                return
        due = [n for n in silent if n.next_attempt_at <= self.now]
        # Every machine at once, each probe with its own deadline (corral.reconcile.health).
        probed = health.probe_all(self.probes, {n.id: functools.partial(provider.query_node, n.id) for n in due},
                                  deadlines.NODE_PROBE_SECONDS)
        for node in due:
            outcome = probed[node.id]
            if outcome.skipped:
                continue  # still being asked since an earlier pass
            try:
                if outcome.timed_out:
                    raise NodeUnreachable(f"node {node.id}'s machine unresponsive",
                                          f"no answer to the agent check within {deadlines.NODE_PROBE_SECONDS:.0f} s")
                if outcome.error is not None:
                    raise outcome.error
                liveness = outcome.value
                if liveness is Liveness.STOPPED:
                    provider.start_node(self._request(cluster, node))
            except NodeUnreachable as exc:
                self._node_lost(node, exc)
                continue
            except NodeBroken as exc:
                self._fail(StateChangeCode.INSTANCE_FAILURE, f"node {node.id} ({node.role}) failed: {exc}")
                return
            except Exception as exc:  # noqa: BLE001 - retried with backoff, as an event
                self._node_failed(node, f"agent check or restart failed: {exc}")
                continue
            if liveness is Liveness.RUNNING:
                # Alive but silent (the control plane was down, or the agent cannot reach
                # it yet): wait. A LOST node's reason says its machine answers again.
                if node.status == NodeState.LOST.value:
                    with self.cp.store.session() as s:
                        row = s.get(Node, node.id)
                        assert row is not None
                        health.note_answering(row, "its machine answers again and its agent runs; waiting for its report")
                        row.next_attempt_at = self.now + deadlines.lost_retry(row.attempts)
                continue
            if liveness is Liveness.MISSING:
                if node.role == "MASTER":
                    self._fail(StateChangeCode.INSTANCE_FAILURE, f"master node {node.id} is gone")
                else:
                    # Said once; later probes until it is replaced (or comes back) only retry.
                    self._node_failed(node, f"node {node.id} is gone: none of its processes or files is left",
                                      said=bool((node.provider_data or {}).get("missing_since")))
                    replace.note_missing(self.cp, node, self.now)
                continue
            with self.cp.store.session() as s:
                row = s.get(Node, node.id)
                assert row is not None
                row.attempts += 1
                row.next_attempt_at = self.now + deadlines.AGENT_LOST_SECONDS
                health.note_answering(row, "its machine answers again; its agent was not running and was restarted")
                events.record(s, cluster.id, "AGENT_RESTARTED",
                              f"agent of node {node.id} stopped reporting and was not running; restarted",
                              level="WARN", node_id=node.id)

    def _node_lost(self, node: Node, exc: NodeUnreachable) -> None:
        with self.cp.store.session() as s:
            row = s.get(Node, node.id)
            assert row is not None
            if row.status in (NodeState.TERMINATING.value, NodeState.TERMINATED.value):
                return
            if (row.last_heartbeat or 0) > (node.last_heartbeat or 0):
                return  # it reported while its machine was being asked: not lost
            started = health.mark_lost(s, row, exc.subject, exc.detail, self.now)
        if started:
            log.warning("node %s lost: %s", node.id, exc)

    def _up(self, cluster: Cluster) -> None:
        self._watch_agents(cluster)
        cluster = self._load()
        if ClusterState(cluster.status).is_terminal() or cluster.target != ClusterTarget.ACTIVE.value:
            return  # a node failed the cluster: the next pass terminates it
        replace.watch(self, cluster)
        cluster = self._load()
        resize.reconcile_groups(self, cluster)
        cluster = self._load()
        autoscaling.tick(self, cluster)
        if idle_watch.watch(self.cp, cluster, self.now):
            self.cp.notifier.bump(cluster.id)
            return
        self._watch_services(cluster)
        with self.cp.store.session() as s:
            timed_out = step_watch.enforce_timeouts(s, cluster.id, self.now)
        if timed_out:
            self.cp.notifier.bump(cluster.id)
        self._stop_cancelled_applications(cluster)
        view = cluster_view(cluster)
        step_watch.watch_waits(self.cp, cluster, view, self.now)
        step_watch.diagnose_failures(self.cp, cluster, view, self.now)
        step_cost.record_costs(self.cp, cluster, view, self.now)
        bumped = False
        with self.cp.store.session() as s:
            c = cluster_row(s, cluster.id)  # the row alone: nodes and groups load if a transition asks
            version = c.plan_version
            active = step_queue.schedule(s, c)
            bumped = c.plan_version != version
            if not active and c.auto_terminate and step_queue.all_steps_done(s, c):
                request_termination(s, c, StateChangeCode.ALL_STEPS_COMPLETED, "Steps completed", failure=False)
                bumped = True
            elif c.target == ClusterTarget.ACTIVE.value:
                transition(s, c, ClusterState.RUNNING if active else ClusterState.WAITING,
                           "Running step" if active else "Cluster ready to run steps")
        if bumped:
            self.cp.notifier.bump(cluster.id)

    def _watch_services(self, cluster: Cluster) -> None:
        """Agents see their own daemons; this is the services' view of the whole cluster
        (live DataNodes in the NameNode, RUNNING NodeManagers in the ResourceManager, ...),
        checked every SERVICE_CHECK_SECONDS: a change either way is an event."""
        if self.now - _last_service_check.get(cluster.id, 0.0) < SERVICE_CHECK_SECONDS:
            return
        _last_service_check[cluster.id] = self.now
        view = in_service_view(cluster)  # nodes joining or leaving are the resize's to watch
        checks = [get_service(name).check_ready(view, timeout=2.0) for name in cluster.services]
        healthy = all(c.ready for c in checks)
        detail = "; ".join(c.detail for c in checks)
        was_healthy = not (cluster.ready_check or "").startswith(DEGRADED)
        ready_check = detail if healthy else f"{DEGRADED}{detail}"
        if ready_check == cluster.ready_check:
            return  # as it was: nothing to write
        with self.cp.store.session() as s:
            c = cluster_row(s, cluster.id)
            c.ready_check = ready_check
            if was_healthy and not healthy:
                events.record(s, c.id, "SERVICES_DEGRADED", detail, level="WARN")
            elif healthy and not was_healthy:
                events.record(s, c.id, "SERVICES_HEALTHY", detail)

    def _stop_cancelled_applications(self, cluster: Cluster) -> None:
        """Killing a step's client does not stop what it submitted (a MapReduce job, a
        Spark application in cluster mode): the services stop those too, on every pass
        while the cancel is pending and for a while after it, so an application submitted
        meanwhile is caught, and so is one whose client died before any pass saw the
        step CANCEL_PENDING (a kill is a no-op for an application already ended)."""
        def cancelled(step: Step) -> bool:
            if step.status == StepState.CANCEL_PENDING.value:
                return True
            stopped = step.status == StepState.CANCELLED.value or (
                step.status == StepState.FAILED.value and step.failure_code == StepFailureCode.TIMEOUT.value)
            return stopped and step.ended_at is not None and self.now - step.ended_at < deadlines.CANCEL_SWEEP_SECONDS

        with self.cp.store.session() as s:
            apps = [app for step in cluster_steps(s, cluster.id) if cancelled(step) for app in step_watch.application_ids(step)]
        if not apps:
            return
        view = cluster_view(cluster)
        for name in cluster.services:
            get_service(name).cancel_applications(view, apps)

    # -- TERMINATING ---------------------------------------------------------------------------------

    def _begin_terminating(self, cluster: Cluster) -> None:
        with self.cp.store.session() as s:
            c = load_cluster(s, cluster.id)
            step_queue.interrupt_all(s, c, f"cluster terminating: {c.state_message}")
            for node in c.nodes:
                node.target = NodeTarget.TERMINATED.value
                if node.status != NodeState.TERMINATED.value:
                    node.status = NodeState.TERMINATING.value
            bump_plan_version(s, c)
            events.progress(s, c.id, "TERMINATE_CLUSTER", "STOP_SERVICES", "RUNNING")
            events.finish_operation(s, c.id, "CREATE_CLUSTER", ok=False, message=c.state_message)
            for group in c.groups:  # a resize in progress ends with the cluster
                events.finish_operation(s, c.id, resize.operation_kind(group), ok=False,
                                        message=f"cluster terminating: {c.state_message}")
            transition(s, c, ClusterState.TERMINATING, c.state_message)
        self.cp.notifier.bump(cluster.id)

    def _node_terminated(self, node: Node, reason: str | None, error: str | None) -> None:
        self.cp.node_metrics.forget(node.id)  # a released node has no present measurement
        with self.cp.store.session() as s:
            row = s.get(Node, node.id)
            assert row is not None
            row.status, row.ended_at = NodeState.TERMINATED.value, self.now
            replaced = (row.status_reason or "").startswith("replaced: ")  # why it went stays said
            row.status_reason = reason if reason is not None or not replaced else row.status_reason
            row.lost_at = None
            if reason is None:
                events.record(s, node.cluster_id, "NODE_TERMINATED", f"{row.role} node {row.id} released", node_id=row.id)
            else:
                events.record(s, node.cluster_id, "NODE_TERMINATED", f"{row.role} node {row.id} terminated, {reason} "
                              f"({error})", level="WARN", node_id=row.id)

    def _terminating(self, cluster: Cluster) -> None:
        provider = self.cp.provider(cluster.provider)
        # Agents copy their last logs to the LogUri after stopping their daemons.
        grace = deadlines.STOP_GRACE_SECONDS + (deadlines.LOG_ARCHIVE_GRACE_SECONDS if cluster.log_uri else 0.0)
        grace_over = self.now - cluster.status_changed_at > grace
        overdue = cluster.deadline_at is not None and self.now > cluster.deadline_at
        stuck: list[str] = []
        for node in cluster.nodes:
            if node.status == NodeState.TERMINATED.value:
                continue
            stale = node.last_heartbeat is None or self.now - node.last_heartbeat > 5
            if not (node.phase == "STOPPED" or stale or grace_over):
                continue
            if node.next_attempt_at > self.now and not overdue:
                continue
            try:
                provider.terminate_node(node.id, timeout=5.0)
            except (NodeUnreachable, NodeBroken) as exc:
                # Nothing can be cleaned now: the node is over for the cluster, and its
                # machine stays reserved until the provider has cleaned it (an unreachable
                # host when it answers again: ``pending_cleanups``; a broken one by hand).
                reason = ("host unreachable: cleaned when it returns" if isinstance(exc, NodeUnreachable)
                          else f"not cleaned: {exc}")
                self._node_terminated(node, reason, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001
                log.exception("terminate_node %s failed", node.id)
                self._node_failed(node, f"terminate failed: {exc}")
                stuck.append(f"{node.id}: {exc}")
                continue
            self._node_terminated(node, None, None)
        with self.cp.store.session() as s:
            c = load_cluster(s, cluster.id)
            remaining = [n for n in c.nodes if n.status != NodeState.TERMINATED.value]
            events.progress(s, c.id, "TERMINATE_CLUSTER", "RELEASE_NODES", "RUNNING",
                            f"{len(c.nodes) - len(remaining)}/{len(c.nodes)} nodes released")
            if remaining and not overdue:
                return
            if remaining:  # past the deadline: end the cluster anyway, and say what is left
                c.failure_code = c.failure_code or StateChangeCode.INTERNAL_ERROR.value
                c.failure_message = "could not release nodes: " + "; ".join(stuck or [n.id for n in remaining])
                c.state_message = c.failure_message
            failed = c.failure_code is not None
            events.finish_operation(s, c.id, "TERMINATE_CLUSTER", ok=not remaining)
            transition(s, c, ClusterState.TERMINATED_WITH_ERRORS if failed else ClusterState.TERMINATED,
                       c.failure_message if failed else c.state_message)
        step_watch.forget(cluster.id)
        replace.forget(cluster.id)
        idle_watch.forget(cluster.id)
        autoscaling.forget(cluster.id)
        sampler.forget(self.cp, cluster.id)
