"""Node health: a silent node whose machine does not answer is LOST (with its reason and
an event), retried with backoff, recovered when its agent reports, and fails the cluster
only past the LOST deadline; a cluster terminated meanwhile ends with the node marked for
a later cleanup, which the loop's sweep does once the machine answers."""

from __future__ import annotations

import threading
import time
from typing import Iterator

import pytest
from sqlalchemy import select

from corral.agent.protocol import NodeReport
from corral.control import agents, clusters
from corral.control.context import ControlPlane
from corral.domain.states import ClusterState, ClusterTarget, NodeState
from corral.providers.base import Liveness, NodeBroken, NodeRequest, NodeUnreachable
from corral.reconcile import clusters as reconcile_clusters
from corral.reconcile import deadlines, health
from corral.reconcile.loop import Reconciler
from corral.reconcile.workers import KeyedPool
from corral.services.base import ReadyCheck
from corral.store.models import Cluster, Event, Node
from tests.unit.helpers import FakeProvider, make_spec

T0 = 1_000_000.0


class HostProvider(FakeProvider):
    """A provider whose machines can be taken off the network."""

    def __init__(self) -> None:
        super().__init__()
        self.unreachable: set[str] = set()
        self.broken: set[str] = set()
        self.liveness = Liveness.RUNNING
        self.cleanups: list[str] = []

    def _check(self, node_id: str) -> None:
        if node_id in self.broken:
            raise NodeBroken("host h1 (198.18.0.2): the host key changed; refusing to connect")
        if node_id in self.unreachable:
            raise NodeUnreachable("host h1 (198.18.0.2) unreachable over SSH", "no SSH answer within 10 s (timed out)")

    def query_node(self, node_id: str) -> Liveness:
        self.calls.append(("query_node", node_id))
        self._check(node_id)
        return self.liveness

    def start_node(self, request: NodeRequest):  # type: ignore[no-untyped-def]
        self._check(request.node_id)
        return super().start_node(request)

    def terminate_node(self, node_id: str, timeout: float) -> None:
        self.calls.append(("terminate_node", node_id))
        self._check(node_id)

    def pending_cleanups(self) -> list[str]:
        return list(self.cleanups)


class Ready:
    def check_ready(self, cluster: object, timeout: float) -> ReadyCheck:
        return ReadyCheck(True, "fine")

    def cancel_applications(self, cluster: object, application_ids: list[str]) -> None:
        pass


@pytest.fixture
def provider(cp: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> HostProvider:
    fake = HostProvider()
    cp.providers["local"] = fake
    monkeypatch.setattr(reconcile_clusters, "get_service", lambda name: Ready())
    return fake


def _up_cluster(cp: ControlPlane, heartbeat: float, cores: int = 2, replace: bool = True) -> tuple[str, list[str]]:
    cluster, _ = clusters.create_cluster(cp, make_spec(node_groups=[
        {"role": "MASTER", "instance_type": "local.small", "count": 1},
        {"role": "CORE", "instance_type": "local.medium", "count": cores}], unhealthy_node_replacement=replace))
    with cp.store.session() as s:
        c = s.get(Cluster, cluster.id)
        assert c is not None
        c.status, c.deadline_at, c.ready_at = ClusterState.WAITING.value, None, T0 - 100
        nodes = list(s.scalars(select(Node).where(Node.cluster_id == cluster.id).order_by(Node.created_at)))
        for i, n in enumerate(nodes):
            n.status, n.phase, n.address, n.last_heartbeat = NodeState.RUNNING.value, "RUNNING", f"198.18.0.{i + 2}", heartbeat
        return cluster.id, [n.id for n in nodes]


def _watch(cp: ControlPlane, cluster_id: str, now: float, probes: KeyedPool | None = None) -> None:
    r = reconcile_clusters.ClusterReconciler(cp, cluster_id, clock=lambda: now, probes=probes)
    r._watch_agents(r._load())


def _node(cp: ControlPlane, node_id: str) -> Node:
    with cp.store.session() as s:
        node = s.get(Node, node_id)
        assert node is not None
        return node


def _events(cp: ControlPlane, code: str) -> list[Event]:
    with cp.store.session() as s:
        return list(s.scalars(select(Event).where(Event.code == code).order_by(Event.id)))


def test_an_unreachable_silent_node_is_lost_with_its_reason_and_one_event(cp: ControlPlane, provider: HostProvider) -> None:
    cluster_id, (master, core, _) = _up_cluster(cp, heartbeat=T0)
    provider.unreachable.add(core)
    _watch(cp, cluster_id, T0 + 5)  # not late yet: not even asked
    assert ("query_node", core) not in provider.calls
    _watch(cp, cluster_id, T0 + deadlines.AGENT_LOST_SECONDS + 1)
    node = _node(cp, core)
    assert node.status == NodeState.LOST.value
    assert node.lost_at == T0 + deadlines.AGENT_LOST_SECONDS + 1
    since = health.clock_time(node.lost_at)
    assert node.status_reason == (f"host h1 (198.18.0.2) unreachable over SSH since {since}: "
                                  "no SSH answer within 10 s (timed out)")
    lost = _events(cp, "NODE_LOST")
    assert len(lost) == 1 and lost[0].level == "WARN" and lost[0].node_id == core
    assert _node(cp, master).status == NodeState.RUNNING.value
    # Asked again only after the backoff; still one event, the same "since".
    def asked() -> int:
        return provider.calls.count(("query_node", core))

    calls = asked()
    _watch(cp, cluster_id, node.next_attempt_at - 0.1)
    assert asked() == calls
    _watch(cp, cluster_id, node.next_attempt_at + 0.1)
    assert asked() == calls + 1
    again = _node(cp, core)
    assert again.attempts == 2 and again.next_attempt_at - (node.next_attempt_at + 0.1) == deadlines.lost_retry(2)
    assert again.status_reason == node.status_reason and len(_events(cp, "NODE_LOST")) == 1
    with cp.store.session() as s:
        assert s.get(Cluster, cluster_id).target == ClusterTarget.ACTIVE.value  # type: ignore[union-attr]


def test_retries_back_off_up_to_the_cap() -> None:
    assert [deadlines.lost_retry(n) for n in (1, 2, 3, 4, 5, 6, 20)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_report_recovers_the_node_with_the_lost_duration(cp: ControlPlane, provider: HostProvider) -> None:
    cluster_id, (_, core, _) = _up_cluster(cp, heartbeat=T0)
    provider.unreachable.add(core)
    _watch(cp, cluster_id, T0 + 30)
    assert _node(cp, core).status == NodeState.LOST.value
    with cp.store.session() as s:
        token = s.get(Cluster, cluster_id).agent_token  # type: ignore[union-attr]
    # The node's lost_at is the reconciler's clock; the report's is the wall clock.
    with cp.store.session() as s:
        s.get(Node, core).lost_at = __import__("time").time() - 135  # type: ignore[union-attr]
    agents.apply_report(cp, core, token, NodeReport(node_id=core, agent_pid=42, plan_version=1, phase="RUNNING"))
    node = _node(cp, core)
    assert node.status == NodeState.RUNNING.value
    assert node.lost_at is None and node.status_reason is None and node.next_attempt_at == 0.0
    recovered = _events(cp, "NODE_RECOVERED")
    assert len(recovered) == 1 and "re-attached after 2m15s lost" in recovered[0].message
    assert "unreachable over SSH" in recovered[0].message


def test_a_recovered_agent_still_bootstrapping_or_failed_goes_back_to_bootstrapping(
        cp: ControlPlane, provider: HostProvider) -> None:
    cluster_id, (_, core, other) = _up_cluster(cp, heartbeat=T0)
    provider.unreachable.update({core, other})
    _watch(cp, cluster_id, T0 + 30)
    with cp.store.session() as s:
        token = s.get(Cluster, cluster_id).agent_token  # type: ignore[union-attr]
    agents.apply_report(cp, core, token, NodeReport(node_id=core, agent_pid=1, plan_version=1, phase="STARTING"))
    agents.apply_report(cp, other, token, NodeReport(node_id=other, agent_pid=1, plan_version=1, phase="FAILED",
                                                     error="boom", error_code="DEPLOY_FAILURE"))
    assert _node(cp, core).status == NodeState.STARTING.value
    assert _node(cp, other).status == NodeState.BOOTSTRAPPING.value


def test_a_lost_node_past_its_deadline_fails_the_cluster_without_node_replacement(cp: ControlPlane,
                                                                                  provider: HostProvider) -> None:
    cluster_id, (_, core, _) = _up_cluster(cp, heartbeat=T0, replace=False)
    provider.unreachable.add(core)
    _watch(cp, cluster_id, T0 + 30)
    reason = _node(cp, core).status_reason
    _watch(cp, cluster_id, T0 + 30 + deadlines.NODE_LOST_SECONDS - 1)
    with cp.store.session() as s:
        assert s.get(Cluster, cluster_id).target == ClusterTarget.ACTIVE.value  # type: ignore[union-attr]
    _watch(cp, cluster_id, T0 + 31 + deadlines.NODE_LOST_SECONDS)
    with cp.store.session() as s:
        c = s.get(Cluster, cluster_id)
        assert c is not None and c.target == ClusterTarget.TERMINATED.value
        assert c.failure_code == "INSTANCE_FAILURE"
        assert c.failure_message == f"node {core} (CORE) lost for more than 15m00s: {reason}"


def test_with_node_replacement_a_lost_core_node_past_its_deadline_is_replaced(cp: ControlPlane,
                                                                             provider: HostProvider) -> None:
    from corral.reconcile import replace

    cluster_id, (_, core, _) = _up_cluster(cp, heartbeat=T0)
    provider.unreachable.add(core)
    _watch(cp, cluster_id, T0 + 30)
    now = T0 + 31 + deadlines.NODE_LOST_SECONDS
    r = reconcile_clusters.ClusterReconciler(cp, cluster_id, clock=lambda: now)
    r._watch_agents(r._load())
    replace.watch(r, r._load())
    with cp.store.session() as s:
        c = s.get(Cluster, cluster_id)
        assert c is not None and c.target == ClusterTarget.ACTIVE.value  # the cluster stays up
    assert _node(cp, core).target == "TERMINATED" and "replaced: " in (_node(cp, core).status_reason or "")


def test_a_reachable_machine_with_a_stopped_agent_gets_it_restarted(cp: ControlPlane, provider: HostProvider) -> None:
    """kill -9 of an agent: the host answers, the lock is free, the agent is started again."""
    cluster_id, (_, core, _) = _up_cluster(cp, heartbeat=T0)
    provider.liveness = Liveness.STOPPED
    _watch(cp, cluster_id, T0 + 30)
    assert ("start_node", core) in provider.calls
    assert _node(cp, core).status == NodeState.RUNNING.value  # restarted, not lost
    assert len(_events(cp, "AGENT_RESTARTED")) == 3 and not _events(cp, "NODE_LOST")


def test_a_broken_node_fails_the_cluster_with_its_reason(cp: ControlPlane, provider: HostProvider) -> None:
    cluster_id, (_, core, _) = _up_cluster(cp, heartbeat=T0)
    provider.broken.add(core)
    _watch(cp, cluster_id, T0 + 30)
    with cp.store.session() as s:
        c = s.get(Cluster, cluster_id)
        assert c is not None and c.target == ClusterTarget.TERMINATED.value
        assert "host key changed" in (c.failure_message or "")


def test_readiness_and_timeouts_name_lost_nodes(cp: ControlPlane, provider: HostProvider) -> None:
    cluster_id, (_, core, _) = _up_cluster(cp, heartbeat=T0)
    provider.unreachable.add(core)
    _watch(cp, cluster_id, T0 + 30)
    r = reconcile_clusters.ClusterReconciler(cp, cluster_id, clock=lambda: T0 + 31)
    message = r._timeout_message(r._load())
    assert f"{core} (CORE) LOST: host h1 (198.18.0.2) unreachable over SSH since" in message
    from corral.api.schemas import ClusterDetail  # noqa: PLC0415
    with cp.store.session() as s:
        detail = ClusterDetail.of(clusters.load_cluster(s, cluster_id))
    shown = next(n for n in detail.nodes if n.id == core)
    assert shown.status == "LOST" and shown.status_reason and shown.lost_at is not None


def test_terminate_while_unreachable_ends_the_node_for_a_later_cleanup(cp: ControlPlane, provider: HostProvider) -> None:
    cluster_id, (_, core, _) = _up_cluster(cp, heartbeat=T0)
    provider.unreachable.add(core)
    _watch(cp, cluster_id, T0 + 30)
    clusters.terminate_cluster(cp, cluster_id)
    for now in (T0 + 40, T0 + 41):  # begin terminating, then release (heartbeats are stale)
        reconcile_clusters.ClusterReconciler(cp, cluster_id, clock=lambda: now).run()
    with cp.store.session() as s:
        c = clusters.load_cluster(s, cluster_id)
        assert c.status == ClusterState.TERMINATED.value  # the user's request succeeded
        node = next(n for n in c.nodes if n.id == core)
        assert node.status == NodeState.TERMINATED.value
        assert node.status_reason == "host unreachable: cleaned when it returns"
    assert any(e.level == "WARN" and core == e.node_id for e in _events(cp, "NODE_TERMINATED"))
    # The sweep: nothing while the machine stays away, then cleaned.
    provider.cleanups = [core]
    loop = Reconciler(cp)
    assert loop.sweep() == 0
    provider.unreachable.clear()
    assert loop.sweep() == 1
    assert [e.node_id for e in _events(cp, "NODE_CLEANED")] == [core]


def test_a_broken_host_at_create_fails_the_cluster_at_once(cp: ControlPlane, provider: HostProvider,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cluster, _ = clusters.create_cluster(cp, make_spec())

    def broken(request: NodeRequest):  # type: ignore[no-untyped-def]
        raise NodeBroken("host h1 (198.18.0.2): the host key changed; refusing to connect")

    monkeypatch.setattr(provider, "create_node", broken)
    reconcile_clusters.ClusterReconciler(cp, cluster.id, clock=lambda: T0).run()
    with cp.store.session() as s:
        c = s.get(Cluster, cluster.id)
        assert c is not None and c.target == ClusterTarget.TERMINATED.value and c.failure_code == "INSTANCE_FAILURE"
        assert "cannot be provisioned: host h1 (198.18.0.2): the host key changed" in (c.failure_message or "")


# -- many machines at once ----------------------------------------------------------------------

PROBE = 1.0  # seconds: each probe's deadline in these tests (deadlines.NODE_PROBE_SECONDS)


class HangingProvider(HostProvider):
    """Machines whose agent check hangs (``hung``) until ``release`` is set: SSH connected,
    then nothing comes back."""

    def __init__(self) -> None:
        super().__init__()
        self.hung: set[str] = set()
        self.release = threading.Event()

    def query_node(self, node_id: str) -> Liveness:
        if node_id in self.hung:
            self.calls.append(("query_node", node_id))
            self.release.wait(30)
            raise NodeUnreachable("host h9 (198.18.0.9) unreachable over SSH", "no SSH answer within 10 s")
        return super().query_node(node_id)


@pytest.fixture
def hanging(cp: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> Iterator[HangingProvider]:
    fake = HangingProvider()
    cp.providers["local"] = fake
    monkeypatch.setattr(reconcile_clusters, "get_service", lambda name: Ready())
    monkeypatch.setattr(deadlines, "NODE_PROBE_SECONDS", PROBE)
    yield fake
    fake.release.set()  # the hung probes' threads end


@pytest.fixture
def probes() -> Iterator[KeyedPool]:
    pool = KeyedPool(16, "test-probe")
    yield pool
    pool.stop()


def test_ten_hung_machines_take_one_deadline_not_ten(cp: ControlPlane, hanging: HangingProvider,
                                                     probes: KeyedPool) -> None:
    cluster_id, nodes = _up_cluster(cp, heartbeat=T0, cores=9)
    hanging.hung.update(nodes)
    started = time.monotonic()
    _watch(cp, cluster_id, T0 + 30, probes)
    elapsed = time.monotonic() - started
    assert PROBE <= elapsed < 2 * PROBE, elapsed  # serially: 10 deadlines
    for node_id in nodes:
        node = _node(cp, node_id)
        assert node.status == NodeState.LOST.value
        assert node.status_reason == (f"node {node_id}'s machine unresponsive since {health.clock_time(T0 + 30)}: "
                                      "no answer to the agent check within 1 s")
    assert len(_events(cp, "NODE_LOST")) == 10
    # Still hanging at the next try: not asked twice, and the pass does not wait for them.
    calls = len(hanging.calls)
    started = time.monotonic()
    _watch(cp, cluster_id, T0 + 60, probes)
    assert time.monotonic() - started < PROBE / 2 and len(hanging.calls) == calls
    hanging.release.set()
    probes.wait_idle(10)
    _watch(cp, cluster_id, T0 + 90, probes)  # answered again (unreachable now): asked again
    assert len(hanging.calls) == calls + 10


def test_one_hung_machine_does_not_hold_up_the_others(cp: ControlPlane, hanging: HangingProvider,
                                                      probes: KeyedPool) -> None:
    cluster_id, (master, core, other) = _up_cluster(cp, heartbeat=T0)
    hanging.hung.add(core)
    hanging.unreachable.add(other)
    hanging.liveness = Liveness.STOPPED  # the master's machine answers: its agent is restarted
    _watch(cp, cluster_id, T0 + 30, probes)
    assert ("start_node", master) in hanging.calls and _node(cp, master).status == NodeState.RUNNING.value
    assert _node(cp, other).status_reason == (f"host h1 (198.18.0.2) unreachable over SSH since "
                                              f"{health.clock_time(T0 + 30)}: no SSH answer within 10 s (timed out)")
    assert "unresponsive" in (_node(cp, core).status_reason or "")


def test_probe_all_gives_each_outcome_and_each_probe_its_own_deadline() -> None:
    ticks: list[float] = []

    def clock() -> float:  # the pool's clock, watched: every reading is one the deadlines use
        ticks.append(time.monotonic())
        return ticks[-1]

    pool = KeyedPool(2, "test-probe", clock=clock)
    stuck = threading.Event()
    try:
        def boom() -> str:
            raise NodeUnreachable("h", "down")

        def hang() -> str:
            stuck.wait(30)
            return "late"

        started = time.monotonic()
        first = health.probe_all(pool, {"fast": lambda: "ok", "boom": boom}, deadline=0.5)
        assert first["fast"] == health.Probed(value="ok") and isinstance(first["boom"].error, NodeUnreachable)
        assert time.monotonic() - started < 0.4  # answers come as soon as they are known
        # Two workers, both taken by hung probes: the third waits its turn, then is dropped.
        started = time.monotonic()
        second = health.probe_all(pool, {"a": hang, "b": hang, "c": lambda: "never"}, deadline=0.5)
        assert (second["a"].timed_out, second["b"].timed_out, second["c"].skipped) == (True, True, True)
        assert 0.5 <= time.monotonic() - started < 1.0 and len(ticks) > 2
        assert pool.busy("a") and not pool.busy("c")  # a hung probe keeps its key until it returns
        assert health.probe_all(pool, {"a": lambda: "again"}, deadline=0.5) == {"a": health.Probed(skipped=True)}
        stuck.set()
        pool.wait_idle(5)
        assert health.probe_all(pool, {"a": lambda: "again"}, deadline=0.5) == {"a": health.Probed(value="again")}
    finally:
        stuck.set()
        pool.stop()
