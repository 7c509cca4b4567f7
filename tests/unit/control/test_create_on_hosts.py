"""Creating a cluster on registered hosts (``provider: ssh``): selection before anything is
written, the rows and reservations of one transaction, sizes from the hosts, refusals
that leave nothing behind, and two creates racing for the same host on both backends."""

from __future__ import annotations

import threading
from xml.etree import ElementTree
from typing import Any, Callable

import pytest
from sqlalchemy import select

from corral.control import clusters, events, steps
from corral.control.context import ControlPlane
from corral.control.views import shape_view
from corral.domain.spec import ClusterSpec, StepRequest
from corral.errors import Conflict, ValidationFailed
from corral.hosts import selection
from corral.services.registry import SERVICES, effective_properties
from corral.store.models import Cluster, Event, Host, Node, NodeGroup, Operation, OperationStep, Step
from tests.unit.helpers import count_rows, make_spec
from tests.unit.hosts.pool import add_host, host_row, register_ssh_provider

ROWS = (Cluster, NodeGroup, Node, Step, Operation, OperationStep, Event)
HADOOP = ["hdfs", "yarn", "spark"]


@pytest.fixture(autouse=True)
def _ssh_provider(request: pytest.FixtureRequest) -> None:
    register_ssh_provider(request)


def ssh(*groups: dict[str, Any], **extra: Any) -> ClusterSpec:
    return make_spec(provider="ssh", services=extra.pop("services", HADOOP), node_groups=list(groups), **extra)


def nothing_written(cp: ControlPlane) -> bool:
    return all(count_rows(cp.store, model) == 0 for model in ROWS)


def hosts_state(cp: ControlPlane) -> dict[str, tuple[str, str | None, str | None]]:
    with cp.store.session() as s:
        return {h.name: (h.status, h.node_id, h.cluster_id) for h in s.scalars(select(Host))}


def refused(cp: ControlPlane, spec: ClusterSpec) -> list[str]:
    with pytest.raises(ValidationFailed) as failed:
        clusters.create_cluster(cp, spec)
    return [str(e) for e in failed.value.errors]


def test_create_selects_reserves_and_writes_the_nodes_on_their_hosts(cp: ControlPlane) -> None:
    add_host(cp.store, "m1", {"role": "master"}, cores=8, memory=32768, address="198.18.0.10")
    add_host(cp.store, "w1", {"rack": "r1"}, cores=4, memory=16384, address="198.18.0.11")
    add_host(cp.store, "w2", {"rack": "r1"}, cores=6, memory=12288, address="worker-2.lab.example")
    add_host(cp.store, "w3", {"rack": "r2"})
    spec = ssh({"role": "CORE", "count": 2, "host_labels": {"rack": "r1"}}, {"role": "MASTER", "hosts": ["m1"]})
    cluster, created = clusters.create_cluster(cp, spec)
    assert created
    with cp.store.session() as s:
        row = clusters.load_cluster(s, cluster.id)
        assert row.provider == "ssh"
        assert sorted((g.role, g.instance_type, g.target_count, g.host_labels, g.host_names) for g in row.groups) == [
            ("CORE", "host", 2, {"rack": "r1"}, []), ("MASTER", "host", 1, {}, ["m1"])]
        nodes = {n.host_name: n for n in row.nodes}
        assert {name: (n.role, n.instance_type, n.address, n.vcpus, n.memory_mib, n.status)
                for name, n in nodes.items()} == {
            "m1": ("MASTER", "host", "198.18.0.10", 8, 32768, "REQUESTED"),
            "w1": ("CORE", "host", "198.18.0.11", 4, 16384, "REQUESTED"),
            "w2": ("CORE", "host", "worker-2.lab.example", 6, 12288, "REQUESTED")}
        assert {n.host_id for n in row.nodes} == {"hst-m1", "hst-w1", "hst-w2"}
        (created_event,) = s.scalars(select(Event).where(Event.cluster_id == cluster.id)).all()
        assert created_event.message == "cluster 'unit' requested: hdfs, yarn, spark; 2 x CORE on w1, w2, 1 x MASTER on m1"
    assert hosts_state(cp) == {"m1": ("ALLOCATED", nodes["m1"].id, cluster.id),
                               "w1": ("ALLOCATED", nodes["w1"].id, cluster.id),
                               "w2": ("ALLOCATED", nodes["w2"].id, cluster.id), "w3": ("READY", None, None)}
    assert host_row(cp.store, "w1").status_changed_at >= host_row(cp.store, "w3").status_changed_at
    assert cp.providers["local"].calls == []  # nothing started: the ssh provider does that


def _nodemanager(site_xml: str) -> tuple[str | None, str | None]:
    """(memory-mb, cpu-vcores) a yarn-site.xml gives its NodeManager."""
    props = {p.findtext("name"): p.findtext("value") for p in ElementTree.fromstring(site_xml).iter("property")}
    return props["yarn.nodemanager.resource.memory-mb"], props["yarn.nodemanager.resource.cpu-vcores"]


def test_daemons_are_sized_from_each_host(cp: ControlPlane) -> None:
    add_host(cp.store, "m", cores=8, memory=32768)
    add_host(cp.store, "w1", cores=4, memory=16384)
    add_host(cp.store, "w2", cores=6, memory=12288)
    cluster, _ = clusters.create_cluster(cp, ssh({"role": "MASTER", "hosts": ["m"]}, {"role": "CORE", "count": 2}))
    view = shape_view(clusters.get_cluster(cp, cluster.id))
    props = effective_properties(view)
    yarn = props["yarn-site"]
    # Each NodeManager offers its own host's usable memory (3/4 of it) and its cores.
    offered = {n.itype.name: _nodemanager(SERVICES["yarn"].config_files(view, n, props)[0].content)
               for n in view.nodes if n.role.value == "CORE"}
    assert offered == {"host:w1": ("12288", "4"), "host:w2": ("9216", "6")}
    assert (yarn["yarn.scheduler.maximum-allocation-mb"], yarn["yarn.scheduler.maximum-allocation-vcores"]) == ("12288", "6")
    spark = props["spark-defaults"]
    assert spark["spark.executor.cores"] == "4"  # the smallest worker's cores
    assert spark["spark.driver.memory"] == "2048m"  # the master's 24 GiB usable, capped


def test_an_instance_type_sizes_every_host_of_its_group_alike(cp: ControlPlane) -> None:
    add_host(cp.store, "m", cores=8, memory=32768)
    add_host(cp.store, "w1", cores=16, memory=65536)
    add_host(cp.store, "w2", cores=4, memory=8192)
    add_host(cp.store, "tiny", cores=1, memory=2048)
    cluster, _ = clusters.create_cluster(cp, ssh({"role": "MASTER", "hosts": ["m"]},
                                                 {"role": "CORE", "count": 2, "instance_type": "local.medium"}))
    with cp.store.session() as s:
        row = clusters.load_cluster(s, cluster.id)
        assert sorted((n.host_name, n.instance_type, n.vcpus, n.memory_mib) for n in row.nodes if n.role == "CORE") == [
            ("w1", "local.medium", 2, 4096), ("w2", "local.medium", 2, 4096)]  # tiny is below the floor
    yarn = effective_properties(shape_view(clusters.get_cluster(cp, cluster.id)))["yarn-site"]
    assert (yarn["yarn.nodemanager.resource.memory-mb"], yarn["yarn.nodemanager.resource.cpu-vcores"]) == ("3072", "2")


def test_too_few_matching_hosts_refuses_and_writes_nothing(cp: ControlPlane) -> None:
    add_host(cp.store, "h1", {"rack": "r2"})
    add_host(cp.store, "h2", {"rack": "r1"})
    add_host(cp.store, "h3", {"rack": "r1"})
    before = hosts_state(cp)
    assert refused(cp, ssh({"role": "MASTER"}, {"role": "CORE", "count": 3, "host_labels": {"rack": "r1"}})) == [
        "node_groups[1]: CORE needs 3 READY hosts with label rack=r1; 2 match: h2, h3"]
    assert nothing_written(cp) and hosts_state(cp) == before


def test_hosts_too_small_for_every_step_type_are_refused_naming_them(cp: ControlPlane) -> None:
    add_host(cp.store, "m", cores=4, memory=8192)
    add_host(cp.store, "w1", {"rack": "r1"}, cores=1, memory=2048)
    before = hosts_state(cp)
    spec = ssh({"role": "MASTER", "hosts": ["m"]}, {"role": "CORE", "host_labels": {"rack": "r1"}},
               services=["hdfs", "yarn", "spark", "hive"])
    (error,) = refused(cp, spec)
    assert error.startswith("node_groups[1].host_labels: SPARK steps could never run: ")
    assert error.endswith("on NodeManagers of 1536 MiB: its hosts are too small (w1: 1 vcpus, 2048 MiB): "
                          "select larger hosts or more CORE/TASK nodes")
    assert nothing_written(cp) and hosts_state(cp) == before


def test_a_host_given_more_memory_fits_and_a_too_small_floor_is_named(cp: ControlPlane) -> None:
    add_host(cp.store, "m", cores=4, memory=8192)
    add_host(cp.store, "w1", cores=1, memory=2048, memory_mb_override=8192)  # host add --memory 8g
    spec = ssh({"role": "MASTER", "hosts": ["m"]}, {"role": "CORE", "hosts": ["w1"]}, services=["hdfs", "yarn", "spark", "hive"])
    cluster, _ = clusters.create_cluster(cp, spec)
    with cp.store.session() as s:
        assert [(n.vcpus, n.memory_mib) for n in clusters.load_cluster(s, cluster.id).nodes if n.role == "CORE"] == [(1, 8192)]
    add_host(cp.store, "m2", cores=4, memory=8192)
    add_host(cp.store, "w2", cores=8, memory=32768)
    (error,) = refused(cp, ssh({"role": "MASTER", "hosts": ["m2"]},
                               {"role": "CORE", "hosts": ["w2"], "instance_type": "local.small"},
                               services=["hdfs", "yarn", "spark", "hive"]))
    assert error.startswith("node_groups[1].instance_type: SPARK steps could never run: ")
    assert error.endswith(": use a larger instance type or more CORE/TASK nodes")


def test_steps_added_later_are_checked_against_the_sizes_kept_at_create(cp: ControlPlane) -> None:
    add_host(cp.store, "m", cores=4, memory=8192)
    add_host(cp.store, "w1", cores=8, memory=32768)
    cluster, _ = clusters.create_cluster(cp, ssh({"role": "MASTER", "hosts": ["m"]}, {"role": "CORE", "hosts": ["w1"]}))
    # 24 GiB offered: far more than any catalog type of the same name would give.
    big = StepRequest(type="SPARK", args=["--executor-memory", "16g", "/jobs/job.py"], files={"/jobs/job.py": "0" * 64})
    with pytest.raises(ValidationFailed) as failed:
        steps.add_steps(cp, cluster.id, [big])
    assert all("could never run" not in str(e) for e in failed.value.errors)  # only the file is missing
    with cp.store.session() as s:  # the host is re-sized afterwards: the running cluster is not
        s.get(Host, "hst-w1").memory_mb_override = 1024 * 1024
    huge = StepRequest(type="SPARK", args=["--executor-memory", "64g", "/jobs/job.py"])
    with pytest.raises(ValidationFailed) as failed:
        steps.add_steps(cp, cluster.id, [huge])
    assert [str(e) for e in failed.value.errors if "could never run" in str(e)][0].startswith(
        "args[1]: this SPARK step could never run: its executor (")


def test_initial_steps_are_checked_against_the_selected_hosts(cp: ControlPlane) -> None:
    add_host(cp.store, "m", cores=4, memory=8192)
    add_host(cp.store, "w1", cores=2, memory=4096)
    spec = ssh({"role": "MASTER", "hosts": ["m"]}, {"role": "CORE", "hosts": ["w1"]},
               steps=[{"type": "SPARK", "args": ["--executor-memory", "6g", "/jobs/job.py"]}])
    errors = refused(cp, spec)
    assert any(e.startswith("steps[0].args[1]: this SPARK step could never run") for e in errors)
    assert hosts_state(cp)["w1"] == ("READY", None, None) and nothing_written(cp)


def test_a_failure_after_the_reservation_releases_it_in_the_same_rollback(cp: ControlPlane,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    add_host(cp.store, "m")
    add_host(cp.store, "w")

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the store went away")

    monkeypatch.setattr(events, "start_operation", broken)  # runs after the hosts' UPDATEs
    with pytest.raises(RuntimeError):
        clusters.create_cluster(cp, ssh({"role": "MASTER"}, {"role": "CORE"}))
    assert nothing_written(cp)
    assert hosts_state(cp) == {"m": ("READY", None, None), "w": ("READY", None, None)}


def test_the_same_client_token_never_reserves_twice(cp: ControlPlane) -> None:
    add_host(cp.store, "m")
    add_host(cp.store, "w")
    spec = ssh({"role": "MASTER"}, {"role": "CORE"}, client_token="tok-hosts")
    first, created = clusters.create_cluster(cp, spec)
    again, created_again = clusters.create_cluster(cp, spec)  # the pool is empty now: still the same answer
    assert (created, created_again, again.id) == (True, False, first.id)
    assert count_rows(cp.store, Node) == 2
    assert {state[2] for state in hosts_state(cp).values()} == {first.id}


def test_a_lost_reservation_is_rolled_back_and_selection_runs_again(cp: ControlPlane,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    add_host(cp.store, "a")
    add_host(cp.store, "b")
    add_host(cp.store, "c")
    real_load = selection.load_pool
    calls: list[int] = []

    def racing_load(session: Any) -> list[selection.HostInfo]:
        pool = real_load(session)
        if not calls:  # another create takes "b" between this one's selection and its write
            with cp.store.session() as s:
                host = s.get(Host, "hst-b")
                host.status, host.node_id, host.cluster_id = "ALLOCATED", "n-other", "c-other"
        calls.append(1)
        return pool

    monkeypatch.setattr(selection, "load_pool", racing_load)
    cluster, _ = clusters.create_cluster(cp, ssh({"role": "MASTER"}, {"role": "CORE"}))
    assert len(calls) == 2
    with cp.store.session() as s:
        assert sorted(n.host_name for n in clusters.load_cluster(s, cluster.id).nodes) == ["a", "c"]
    assert count_rows(cp.store, Cluster) == 1 and count_rows(cp.store, Node) == 2


def test_creates_that_keep_losing_their_hosts_give_up(cp: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    add_host(cp.store, "a")
    add_host(cp.store, "b")

    def always_taken(*args: Any, **kwargs: Any) -> None:
        raise selection.HostTaken("a")

    monkeypatch.setattr(selection, "reserve", always_taken)
    with pytest.raises(Conflict) as conflict:
        clusters.create_cluster(cp, ssh({"role": "MASTER"}, {"role": "CORE"}))
    assert "reserved by concurrent creates 5 times in a row" in str(conflict.value)
    assert nothing_written(cp)


# -- two creates at once, on SQLite and PostgreSQL -------------------------------------------------


def _race(cp: ControlPlane, specs: list[ClusterSpec], monkeypatch: pytest.MonkeyPatch,
          taken: list[str] | None = None) -> list[Any]:
    """Run the creates in threads, each having read the pool (so both selected the same
    hosts) before either writes; each outcome is (cluster, created) or the exception.
    ``taken`` collects the hosts a reservation found reserved by the other create."""
    barrier = threading.Barrier(len(specs))
    real_load: Callable[[Any], list[selection.HostInfo]] = selection.load_pool
    real_reserve = selection.reserve
    first = threading.local()

    def reserve(*args: Any, **kwargs: Any) -> None:
        try:
            real_reserve(*args, **kwargs)
        except selection.HostTaken as exc:
            (taken if taken is not None else []).append(exc.host_name)
            raise

    monkeypatch.setattr(selection, "reserve", reserve)

    def load_then_wait(session: Any) -> list[selection.HostInfo]:
        pool = real_load(session)
        if not getattr(first, "done", False):
            first.done = True
            barrier.wait(30)
        return pool

    monkeypatch.setattr(selection, "load_pool", load_then_wait)
    outcomes: list[Any] = [None] * len(specs)

    def run(i: int) -> None:
        try:
            outcomes[i] = clusters.create_cluster(cp, specs[i])
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(specs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not any(t.is_alive() for t in threads)
    return outcomes


def test_two_creates_for_the_last_free_host_one_wins_the_other_leaves_nothing(cp_any: ControlPlane,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cp = cp_any
    # Each has its own master host, reserved before the shared one (host ids in order), so
    # the loser's master reservation must be undone by its rollback.
    add_host(cp.store, "m-a", host_id="hst-1a")
    add_host(cp.store, "m-b", host_id="hst-1b")
    add_host(cp.store, "last", host_id="hst-9")
    add_host(cp.store, "gone", host_id="hst-8", status="ALLOCATED", node_id="n-old", cluster_id="c-old")
    specs = [ssh({"role": "MASTER", "hosts": [m]}, {"role": "CORE", "count": 1}, name=f"race-{m}") for m in ("m-a", "m-b")]
    taken: list[str] = []
    outcomes = _race(cp, specs, monkeypatch, taken)
    assert taken == ["last"]  # the loser's UPDATE found it reserved: rolled back, selected again, refused
    won = [o for o in outcomes if isinstance(o, tuple)]
    lost = [o for o in outcomes if isinstance(o, ValidationFailed)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    (winner, created), (loser,) = won[0], lost
    assert created
    winner_master = "m-a" if outcomes[0] is won[0] else "m-b"
    loser_master = "m-b" if winner_master == "m-a" else "m-a"
    assert [str(e) for e in loser.errors] == [
        f"node_groups[1]: CORE needs 1 READY host; none match; given to other groups: {loser_master} (node_groups[0]); "
        f"not READY: gone (ALLOCATED, cluster c-old), last (ALLOCATED, cluster {winner.id}), "
        f"{winner_master} (ALLOCATED, cluster {winner.id})"]
    state = hosts_state(cp)
    assert state[loser_master] == ("READY", None, None)
    assert state["last"][0::2] == ("ALLOCATED", winner.id) and state[winner_master][0::2] == ("ALLOCATED", winner.id)
    assert count_rows(cp.store, Cluster) == 1 and count_rows(cp.store, Node) == 2
    assert count_rows(cp.store, NodeGroup) == 2 and count_rows(cp.store, Operation) == 1
    assert count_rows(cp.store, Event) == 1
    with cp.store.session() as s:
        assert sorted(n.host_name for n in s.scalars(select(Node))) == sorted([winner_master, "last"])


def test_two_creates_with_the_same_token_get_one_cluster_and_one_reservation(cp_any: ControlPlane,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cp = cp_any
    add_host(cp.store, "m")
    add_host(cp.store, "w")
    spec = ssh({"role": "MASTER"}, {"role": "CORE"}, client_token="same-token")
    outcomes = _race(cp, [spec, spec], monkeypatch)
    assert all(isinstance(o, tuple) for o in outcomes), outcomes
    assert outcomes[0][0].id == outcomes[1][0].id
    assert sorted(created for _, created in outcomes) == [False, True]
    assert count_rows(cp.store, Cluster) == 1 and count_rows(cp.store, Node) == 2
    assert {state[2] for state in hosts_state(cp).values()} == {outcomes[0][0].id}


def test_without_an_ssh_provider_the_create_is_refused_before_selection(cp: ControlPlane) -> None:
    del cp.providers["ssh"]
    add_host(cp.store, "m")
    add_host(cp.store, "w")
    assert refused(cp, ssh({"role": "MASTER"}, {"role": "CORE"})) == [
        "provider: provider 'ssh' is not set up on this control plane (set up: local)"]
    assert nothing_written(cp) and hosts_state(cp) == {"m": ("READY", None, None), "w": ("READY", None, None)}
