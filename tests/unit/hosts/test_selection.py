"""Host selection over a pool (pure logic): which hosts each node group gets, in what
order, at what size, and the refusal's exact words when the pool lacks them."""

from __future__ import annotations

import random
from typing import Any

import pytest

from corral.domain.catalog import INSTANCE_TYPES, InstanceType
from corral.domain.spec import ClusterSpec
from corral.errors import ValidationFailed
from corral.hosts.check import effective_resources
from corral.hosts.selection import HostInfo, Selection, select_hosts
from corral.store.models import Host
from tests.unit.helpers import make_spec
from tests.unit.hosts.pool import info


def ssh(*groups: dict[str, Any]) -> ClusterSpec:
    return make_spec(provider="ssh", node_groups=list(groups))


MASTER: dict[str, Any] = {"role": "MASTER"}


def chosen(selection: Selection) -> dict[int, list[str]]:
    return {g: [p.host.name for p in selection.of_group(g)] for g in sorted({p.group for p in selection.picks})}


def refusal(spec: ClusterSpec, pool: list[HostInfo]) -> list[str]:
    with pytest.raises(ValidationFailed) as failed:
        select_hosts(spec, pool)
    return [str(e) for e in failed.value.errors]


# -- what is picked ------------------------------------------------------------------------------


def test_master_first_then_by_name_whatever_the_pool_order() -> None:
    pool = [info("h3"), info("h1"), info("h4"), info("h2")]
    spec = ssh({"role": "CORE", "count": 2}, MASTER, {"role": "TASK", "count": 1})
    expected = {0: ["h2", "h3"], 1: ["h1"], 2: ["h4"]}
    for _ in range(5):
        random.shuffle(pool)
        assert chosen(select_hosts(spec, pool)) == expected


def test_every_given_label_must_be_equal() -> None:
    pool = [info("a", {"rack": "r1", "disk": "ssd"}), info("b", {"rack": "r1"}), info("c", {"rack": "r2", "disk": "ssd"}),
            info("d", {"rack": "r1", "disk": "ssd", "gpu": "no"}), info("m", {"role": "master"})]
    spec = ssh({"role": "MASTER", "host_labels": {"role": "master"}},
               {"role": "CORE", "count": 2, "host_labels": {"rack": "r1", "disk": "ssd"}})
    assert chosen(select_hosts(spec, pool)) == {0: ["m"], 1: ["a", "d"]}


def test_named_hosts_are_exactly_those_in_the_order_given_and_no_other_group_takes_them() -> None:
    pool = [info("h1"), info("h2"), info("h3"), info("h4")]
    # MASTER comes first and would take h1 by name order; CORE names it, so MASTER gets h3.
    spec = ssh(MASTER, {"role": "CORE", "hosts": ["h2", "h1"]}, {"role": "TASK", "count": 1})
    assert spec.node_groups[1].count == 2  # count defaults to the number of named hosts
    assert chosen(select_hosts(spec, pool)) == {0: ["h3"], 1: ["h2", "h1"], 2: ["h4"]}


def test_named_hosts_with_labels_must_carry_them() -> None:
    pool = [info("m"), info("h1", {"rack": "r1"}), info("h2", {"rack": "r1"})]
    spec = ssh(MASTER, {"role": "CORE", "hosts": ["h1", "h2"], "host_labels": {"rack": "r1"}})
    assert chosen(select_hosts(spec, pool)) == {0: ["m"], 1: ["h1", "h2"]}


def test_a_group_of_zero_nodes_takes_nothing() -> None:
    spec = ssh(MASTER, {"role": "CORE", "count": 1}, {"role": "TASK", "count": 0, "host_labels": {"none": "such"}})
    assert chosen(select_hosts(spec, [info("h1"), info("h2")])) == {0: ["h1"], 1: ["h2"]}


def test_host_sized_nodes_get_their_hosts_own_size() -> None:
    pool = [info("m", cores=8, memory=32768), info("c1", cores=2, memory=3072), info("c2", cores=16, memory=65536)]
    selection = select_hosts(ssh({"role": "MASTER", "hosts": ["m"]}, {"role": "CORE", "count": 2}), pool)
    assert selection.sizes() == {0: [InstanceType("host:m", 8, 32768)],
                                 1: [InstanceType("host:c1", 2, 3072), InstanceType("host:c2", 16, 65536)]}


def test_an_instance_type_is_a_floor_and_the_uniform_size() -> None:
    pool = [info("m"), info("small", cores=2, memory=4096), info("big", cores=16, memory=65536),
            info("exact", cores=4, memory=8192), info("fewcores", cores=2, memory=65536)]
    spec = ssh(MASTER, {"role": "CORE", "count": 2, "instance_type": "local.large"})
    selection = select_hosts(spec, pool)
    assert chosen(selection) == {0: ["big"], 1: ["exact", "m"]}  # big sorts first, so MASTER (no floor) takes it
    assert selection.sizes()[1] == [INSTANCE_TYPES["local.large"]] * 2  # not the hosts' own


def test_hosts_not_ready_or_reserved_are_never_picked() -> None:
    pool = [info("a", status="ALLOCATED", node_id="n-1", cluster_id="c-1"), info("b", status="CHECKING"),
            info("c", status="DRAINED"), info("d", node_id="n-2"), info("e", status="FAILED_CHECK"), info("f")]
    assert chosen(select_hosts(ssh(MASTER), pool)) == {0: ["f"]}


# -- refusals, word for word ---------------------------------------------------------------------


def test_the_issues_example() -> None:
    pool = [info("h1", {"rack": "r2"}), info("h2", {"rack": "r1"}), info("h3", {"rack": "r1"})]
    spec = ssh(MASTER, {"role": "CORE", "count": 3, "host_labels": {"rack": "r1"}})
    assert refusal(spec, pool) == ["node_groups[1]: CORE needs 3 READY hosts with label rack=r1; 2 match: h2, h3"]


def test_hosts_going_to_another_group_are_named() -> None:
    pool = [info("h1", {"rack": "r1"}), info("h2", {"rack": "r1"})]
    spec = ssh(MASTER, {"role": "CORE", "count": 2, "host_labels": {"rack": "r1"}})
    assert refusal(spec, pool) == [
        "node_groups[1]: CORE needs 2 READY hosts with label rack=r1; 1 matches: h2; "
        "given to other groups: h1 (node_groups[0])"]


def test_matching_hosts_that_are_not_ready_say_their_state() -> None:
    pool = [info("m"), info("h1", {"rack": "r1"}, status="ALLOCATED", node_id="n-1", cluster_id="c-7"),
            info("h2", {"rack": "r1"}, status="UNREACHABLE"), info("h3", {"rack": "r1"}, node_id="n-9"),
            info("h4", {"rack": "r2"}, status="UNREACHABLE")]
    spec = ssh(MASTER, {"role": "CORE", "count": 1, "host_labels": {"rack": "r1"}})
    assert refusal(spec, pool) == [
        "node_groups[1]: CORE needs 1 READY host with label rack=r1; none match; "
        "not READY: h1 (ALLOCATED, cluster c-7), h2 (UNREACHABLE), h3 (reserved)"]


def test_hosts_below_the_floor_are_named_with_their_size() -> None:
    pool = [info("m"), info("h1", {"rack": "r1"}, cores=2, memory=16384), info("h2", {"rack": "r1"}, cores=8, memory=4096),
            info("h3", {"rack": "r1"}, cores=4, memory=8192)]
    spec = ssh({"role": "MASTER", "hosts": ["m"]},
               {"role": "CORE", "count": 2, "host_labels": {"rack": "r1"}, "instance_type": "local.large"})
    assert refusal(spec, pool) == [
        "node_groups[1]: CORE needs 2 READY hosts with label rack=r1, at least 4 vcpus and 8192 MiB (local.large); "
        "1 matches: h3; too small: h1 (2 vcpus, 16384 MiB), h2 (8 vcpus, 4096 MiB)"]


def test_hosts_of_unknown_size_cannot_size_a_node() -> None:
    pool = [info("m"), info("h1", cores=None, memory=None)]
    assert refusal(ssh(MASTER, {"role": "CORE", "count": 1}), pool) == [
        "node_groups[1]: CORE needs 1 READY host; none match; given to other groups: m (node_groups[0]); "
        "size unknown: h1 (cores and memory unknown: check it again, or give host add --cores/--memory)"]


def test_named_hosts_say_which_are_not_ready_and_why() -> None:
    pool = [info("m"), info("h1"), info("h2", status="FAILED_CHECK", reason="java: no Java 17 found\nmore"),
            info("h3", status="ALLOCATED", node_id="n-1", cluster_id="c-9"), info("h4", status="REMOVED"),
            info("h5", node_id="n-3")]
    spec = ssh(MASTER, {"role": "CORE", "hosts": ["h1", "h2", "h3", "h4", "h5", "h9"]})
    assert refusal(spec, pool) == [
        "node_groups[1]: CORE needs 6 READY hosts named h1, h2, h3, h4, h5, h9; 1 matches: h1; "
        "h2 is FAILED_CHECK (java: no Java 17 found), h3 is ALLOCATED (cluster c-9), h4 is REMOVED, "
        "h5 is reserved (node n-3), h9 is not registered"]


def test_named_hosts_must_carry_the_labels_and_reach_the_floor() -> None:
    pool = [info("m"), info("h1", {"rack": "r2"}), info("h2", {"rack": "r1"}, cores=2, memory=4096),
            info("h3", {"rack": "r1"}, cores=None, memory=None)]
    spec = ssh(MASTER, {"role": "CORE", "hosts": ["h1", "h2", "h3"], "host_labels": {"rack": "r1"},
                        "instance_type": "local.large"})
    assert refusal(spec, pool) == [
        "node_groups[1]: CORE needs 3 READY hosts named h1, h2, h3 with label rack=r1, at least 4 vcpus and 8192 MiB "
        "(local.large); none match; h1 lacks label rack=r1, h2 is too small for local.large (2 vcpus, 4096 MiB), "
        "h3 has cores and memory unknown: check it again, or give host add --cores/--memory"]


def test_every_group_short_of_hosts_is_reported_in_spec_order() -> None:
    pool = [info("h1", {"rack": "r1"})]
    spec = ssh({"role": "TASK", "count": 2, "host_labels": {"rack": "r1", "disk": "ssd"}},
               {"role": "MASTER", "host_labels": {"rack": "r1"}}, {"role": "CORE", "count": 1})
    assert refusal(spec, pool) == [
        "node_groups[0]: TASK needs 2 READY hosts with labels rack=r1, disk=ssd; none match",
        "node_groups[2]: CORE needs 1 READY host; none match; given to other groups: h1 (node_groups[1])"]


def test_an_empty_pool_says_so() -> None:
    assert refusal(ssh(MASTER, {"role": "CORE", "count": 1}), []) == [
        "node_groups[0]: MASTER needs 1 READY host; none match; no host is registered (corral host add)",
        "node_groups[1]: CORE needs 1 READY host; none match; no host is registered (corral host add)"]


def test_long_lists_are_cut_short() -> None:
    pool = [info("m")] + [info(f"h{i:02}", status="UNREACHABLE") for i in range(13)]
    (message,) = refusal(ssh(MASTER, {"role": "CORE", "count": 1}), pool)
    assert message.endswith("not READY: " + ", ".join(f"h{i:02} (UNREACHABLE)" for i in range(10)) + " and 3 more")


# -- a host's effective size ---------------------------------------------------------------------


def _host(**columns: Any) -> Host:
    return Host(id="hst-x", name="x", address="198.18.1.9", status="READY", labels={}, **columns)


@pytest.mark.parametrize(("columns", "size"), [
    ({"facts": {"cores": 8, "memory_mb": 32768}}, (8, 32768)),  # what the host check stores
    ({"facts": {"cores": "8", "memory_mb": "16005"}}, (8, 16005)),
    ({"facts": {"cores": 8, "memory_mb": 32768}, "cores_override": 4, "memory_mb_override": 6144}, (4, 6144)),
    ({"facts": {}, "cores_override": 2}, (2, None)),
    ({"facts": {"cores": 0, "memory_mb": "lots"}}, (None, None)),
    ({"facts": {"cores": True, "memory_mb": -1}}, (None, None)),
])
def test_overrides_win_over_what_the_check_found(columns: dict[str, Any], size: tuple[int | None, int | None]) -> None:
    host = _host(**columns)
    assert effective_resources(host.facts, host.cores_override, host.memory_mb_override) == size
    assert (HostInfo.of(_host(**columns)).cores, HostInfo.of(_host(**columns)).memory_mib) == size


def test_a_grow_takes_the_first_free_matching_hosts_by_name() -> None:
    from corral.hosts.selection import hosts_for_growth

    pool = [info("h4", {"rack": "r1"}), info("h2", {"rack": "r1"}, node_id="n-1", status="ALLOCATED"),
            info("h3", {"rack": "r2"}), info("h1", {"rack": "r1"}), info("h5", {"rack": "r1"}, cores=1)]
    picks = hosts_for_growth(pool, "TASK", "local.medium", {"rack": "r1"}, [], 2)
    assert [(p.host.name, p.size.name) for p in picks] == [("h1", "local.medium"), ("h4", "local.medium")]
    sized = hosts_for_growth(pool, "TASK", "host", {"rack": "r2"}, [], 1)  # host-sized: the host's own
    assert [(p.host.name, p.size.vcpus, p.size.memory_mib) for p in sized] == [("h3", 4, 8192)]
    assert hosts_for_growth(pool, "CORE", "host", {}, ["h3", "h4"], 2)[1].host.name == "h4"  # named: only those
    assert hosts_for_growth(pool, "CORE", "host", {}, [], 0) == []


def test_a_grow_short_of_hosts_is_refused_at_count_saying_what_matched() -> None:
    from corral.hosts.selection import hosts_for_growth

    pool = [info("h1", {"rack": "r1"}), info("h2", {"rack": "r1"}, node_id="n-1", status="ALLOCATED", cluster_id="c-9"),
            info("h3", {"rack": "r1"}, cores=1)]
    with pytest.raises(ValidationFailed) as refused:
        hosts_for_growth(pool, "TASK", "local.medium", {"rack": "r1"}, [], 3)
    (error,) = refused.value.errors
    assert error.loc == ("count",)
    assert error.msg == ("TASK needs 3 more READY hosts with label rack=r1, at least 2 vcpus and 4096 MiB "
                             "(local.medium); 1 matches: h1; not READY: h2 (ALLOCATED, cluster c-9); "
                             "too small: h3 (1 vcpus, 8192 MiB)")
    with pytest.raises(ValidationFailed, match="among those it names"):
        hosts_for_growth(pool, "CORE", "host", {}, ["h1"], 2)
    with pytest.raises(ValidationFailed, match="no host is registered"):
        hosts_for_growth([], "CORE", "host", {}, [], 1)
