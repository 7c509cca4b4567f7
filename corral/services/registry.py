"""The services Corral knows, by name, and checks across them."""

from __future__ import annotations

from typing import Mapping, Sequence

from corral.domain.catalog import HOST_SIZED, InstanceType
from corral.domain.spec import ClusterSpec
from corral.domain.states import NodeRole
from corral.errors import FieldError
from corral.services import sizing
from corral.services.base import ClusterView, NodeView, Service
from corral.services.hdfs import HdfsService
from corral.services.hive import HiveService
from corral.services.mapreduce import MapReduceService
from corral.services.spark import SparkService
from corral.services.yarn import YarnService

# In dependency order: plans, readiness checks and start-up follow it.
SERVICES: dict[str, Service] = {s.name: s for s in (HdfsService(), YarnService(), MapReduceService(), SparkService(), HiveService())}


# Defaults derived from how many nodes a cluster has, kept as they were at create: a
# resize does not re-derive them (EMR keeps dfs.replication and executor counts as
# configured at launch), a user's configuration still overrides them.
COUNT_DERIVED: dict[str, tuple[str, ...]] = {
    "hdfs-site": ("dfs.replication",),
    "spark-defaults": ("spark.dynamicAllocation.initialExecutors",),
}


def default_properties(view: ClusterView) -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for name in view.services:
        for classification, values in SERVICES[name].default_properties(view).items():
            merged.setdefault(classification, {}).update(values)
    return merged


def count_derived_properties(view: ClusterView) -> dict[str, dict[str, str]]:
    """Of ``view``'s defaults, those in ``COUNT_DERIVED``: what a cluster keeps from create."""
    defaults = default_properties(view)
    kept = {c: {k: defaults[c][k] for k in keys if k in defaults.get(c, {})} for c, keys in COUNT_DERIVED.items()}
    return {c: values for c, values in kept.items() if values}


def effective_properties(view: ClusterView) -> dict[str, dict[str, str]]:
    """Each classification's properties: the services' defaults, the values kept from
    create over them (``COUNT_DERIVED``), the user's over both."""
    merged = default_properties(view)
    for layer in (view.derived_configurations, view.user_configurations):
        for classification, values in layer.items():
            merged.setdefault(classification, {}).update(values)
    return merged


def get_service(name: str) -> Service:
    return SERVICES[name]


def validate_services(spec: ClusterSpec, shape_ok: bool = True, fit: bool = True) -> list[FieldError]:
    """Service requirements (only once groups and service names are valid: they rely on
    them) and configuration classifications (always): each known, each property one its
    file's format can carry (``corral.formats``), errors at
    ``configurations[i].properties.<name>``; with ``fit``, then ``validate_fit`` on the
    spec's instance types (an ssh spec's is run once its hosts are selected)."""
    errors: list[FieldError] = []
    known = [name for name in spec.services if name in SERVICES]
    chosen = set(known)
    for i, name in enumerate(spec.services):
        if name not in SERVICES or not shape_ok:
            continue
        service = SERVICES[name]
        for needed in service.requires:
            if needed not in chosen:
                errors.append(FieldError(("services", i), f"{name} requires {needed}"))
        errors.extend(service.validate(spec))
    owned = {c: fmt for s in known for c, fmt in SERVICES[s].classifications.items()}
    for i, conf in enumerate(spec.configurations):
        if conf.classification not in owned:
            known = ", ".join(sorted(owned)) or "none"
            errors.append(
                FieldError(("configurations", i, "classification"),
                           f"unknown classification {conf.classification!r} for services {', '.join(spec.services)} (known: {known})")
            )
            continue
        # Each value must reach its reader as given: refuse what the file's format cannot hold.
        for key, value in conf.properties.items():
            errors += [FieldError(("configurations", i, "properties", key), problem)
                       for problem in owned[conf.classification].problems(key, value)]
    if fit and shape_ok and not errors:  # sizes are read from the values: only once they are well-formed
        errors.extend(validate_fit(spec))
    return errors


# Per node group (its index in ``spec.node_groups``), each node's size in order: what an
# ssh spec's selected hosts give (``corral.hosts.selection.Selection.sizes``).
GroupSizes = Mapping[int, Sequence[InstanceType]]


def spec_view(spec: ClusterSpec, sizes: GroupSizes | None = None) -> ClusterView:
    """The cluster a spec describes, before it has addresses (sizes do not depend on them).
    ``sizes`` gives nodes their own size (ssh); without it a node is its group's instance
    type. Raises ValueError for a host-sized group (ssh, no instance type) without sizes."""
    nodes = []
    for g, group in enumerate(spec.node_groups):
        own = list(sizes.get(g, ())) if sizes is not None else []
        if group.instance_type is None and len(own) < group.count:
            raise ValueError(f"node_groups[{g}] is sized by its hosts: select them first")
        for i in range(group.count):
            node_id = f"{group.role.value.lower()}-{g}-{i}"
            nodes.append(NodeView(node_id=node_id, role=group.role, address="0.0.0.0", directory=f"/{node_id}",
                                  instance_type=group.instance_type or HOST_SIZED, size=own[i] if i < len(own) else None))
    user: dict[str, dict[str, str]] = {}
    for conf in spec.configurations:
        user.setdefault(conf.classification, {}).update(conf.properties)
    return ClusterView(cluster_id="spec", release=spec.release, services=tuple(spec.services_in_order()),
                       nodes=tuple(nodes), user_configurations=user,
                       object_storage={} if spec.object_storage else None)


def validate_fit(spec: ClusterSpec, sizes: GroupSizes | None = None) -> list[FieldError]:
    """Refuse a spec on which some step type could never be scheduled
    (``corral.services.sizing``): at the property the user set that decides it, else at the
    smallest NodeManager's group: its instance type, or (sized by its hosts, ``sizes``) its
    host selection, naming the hosts."""
    view = spec_view(spec, sizes)
    derived = sizing.derive(view)
    props = effective_properties(view)
    problems = [sizing.Problem(p, sizing.YARN_KEYS) for p in derived.problems] or sizing.check(view, props)
    errors = []
    for problem in problems:
        loc = _user_property(spec, problem.properties)
        if loc is not None:
            errors.append(FieldError(loc, problem.message))
            continue
        loc, hint = _smallest_group(spec, view)
        errors.append(FieldError(loc, problem.message + hint))
    return errors


def _user_property(spec: ClusterSpec, keys: tuple[tuple[str, str], ...]) -> tuple[str | int, ...] | None:
    for classification, key in keys:
        for i, conf in enumerate(spec.configurations):
            if conf.classification == classification and key in conf.properties:
                return ("configurations", i, "properties", key)
    return None


def _smallest_group(spec: ClusterSpec, view: ClusterView) -> tuple[tuple[str | int, ...], str]:
    """(where, what to do) for the group of the smallest CORE/TASK node of ``view``."""
    groups = [g for g, group in enumerate(spec.node_groups) for _ in range(group.count)]  # spec_view's node order
    workers = [(n.itype.memory_mib, g, n) for g, n in zip(groups, view.nodes) if n.role in (NodeRole.CORE, NodeRole.TASK)]
    if not workers:
        return ("node_groups",), ": use a larger instance type or more CORE/TASK nodes"
    _, index, _ = min(workers, key=lambda w: (w[0], w[1]))
    group = spec.node_groups[index]
    if group.instance_type is not None:
        return ("node_groups", index, "instance_type"), ": use a larger instance type or more CORE/TASK nodes"
    hosts = "; ".join(f"{n.itype.name.removeprefix('host:')}: {n.itype.vcpus} vcpus, {n.itype.memory_mib} MiB"
                      for _, i, n in sorted(workers, key=lambda w: (w[0], w[1])) if i == index)
    field = "hosts" if group.hosts is not None else "host_labels" if group.host_labels is not None else None
    loc: tuple[str | int, ...] = ("node_groups", index, field) if field else ("node_groups", index)
    return loc, f": its hosts are too small ({hosts}): select larger hosts or more CORE/TASK nodes"
