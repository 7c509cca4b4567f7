"""Services size a node on a host from the host's cores and memory (``NodeView.size``), as
they size a local node from its instance type; the create-time fit check uses them."""

from __future__ import annotations

import pytest

from corral.domain.catalog import INSTANCE_TYPES, InstanceType, host_instance_type
from corral.domain.states import NodeRole
from corral.services.base import NodeView
from corral.services.registry import SERVICES, effective_properties, spec_view, validate_fit
from tests.unit.helpers import make_spec


def host_spec(services: list[str], cores: int = 2):
    return make_spec(provider="ssh", services=services,
                     node_groups=[{"role": "MASTER"}, {"role": "CORE", "count": cores}])


def test_a_node_with_its_own_size_is_sized_by_it() -> None:
    own = NodeView(node_id="n", role=NodeRole.CORE, address="198.18.0.2", directory="/n", instance_type="host",
                   size=host_instance_type("h1", 12, 49152))
    catalog = NodeView(node_id="n", role=NodeRole.CORE, address="198.18.0.2", directory="/n", instance_type="local.large")
    assert (own.itype.name, own.itype.vcpus, own.itype.usable_mib) == ("host:h1", 12, 36864)
    assert catalog.itype is INSTANCE_TYPES["local.large"]


def test_a_spec_sized_by_its_hosts_needs_their_sizes() -> None:
    with pytest.raises(ValueError, match=r"node_groups\[0\] is sized by its hosts"):
        spec_view(host_spec(["spark"]))


def test_standalone_workers_offer_their_hosts_cores_and_memory() -> None:
    spec = host_spec(["spark"])
    sizes = {0: [host_instance_type("m", 4, 8192)],
             1: [host_instance_type("w1", 6, 12288), host_instance_type("w2", 3, 24576)]}
    view = spec_view(spec, sizes)
    props = effective_properties(view)
    workers = {n.itype.name: SERVICES["spark"].components(view, n, props)[0].argv for n in view.nodes
               if n.role is NodeRole.CORE}
    for name, cores, memory in (("host:w1", "6", "9216m"), ("host:w2", "3", "18432m")):
        argv = workers[name]
        assert argv[argv.index("--cores") + 1] == cores and argv[argv.index("--memory") + 1] == memory
    # One executor per worker, as large as the smallest allows.
    assert (props["spark-defaults"]["spark.executor.cores"], props["spark-defaults"]["spark.executor.memory"]) == ("3", "9216m")


def test_the_fit_check_names_the_smallest_hosts_group() -> None:
    spec = make_spec(provider="ssh", services=["hdfs", "yarn", "spark", "hive"],
                     node_groups=[{"role": "MASTER", "hosts": ["m"]}, {"role": "CORE", "count": 1},
                                  {"role": "TASK", "hosts": ["t1", "t2"]}])
    big, small = host_instance_type("c1", 8, 32768), InstanceType("host:t1", 1, 1024)
    sizes = {0: [host_instance_type("m", 4, 8192)], 1: [big], 2: [small, InstanceType("host:t2", 1, 1536)]}
    (error,) = validate_fit(spec, sizes)
    assert error.loc == ("node_groups", 2, "hosts")
    assert error.msg.endswith(": its hosts are too small (t1: 1 vcpus, 1024 MiB; t2: 1 vcpus, 1536 MiB): "
                              "select larger hosts or more CORE/TASK nodes")
    assert validate_fit(spec, {**sizes, 2: [big, big]}) == []
