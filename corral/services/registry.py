"""The services Corral knows, by name, and checks across them."""

from __future__ import annotations

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


def effective_properties(view: ClusterView) -> dict[str, dict[str, str]]:
    """Each classification's properties: the services' defaults, the user's over them."""
    merged: dict[str, dict[str, str]] = {}
    for name in view.services:
        for classification, values in SERVICES[name].default_properties(view).items():
            merged.setdefault(classification, {}).update(values)
    for classification, values in view.user_configurations.items():
        merged.setdefault(classification, {}).update(values)
    return merged


def get_service(name: str) -> Service:
    return SERVICES[name]


def validate_services(spec: ClusterSpec, shape_ok: bool = True) -> list[FieldError]:
    """Service requirements (only once groups and service names are valid: they rely on
    them) and configuration classifications (always): each known, each property one its
    file's format can carry (``corral.formats``), errors at
    ``configurations[i].properties.<name>``."""
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
    if shape_ok and not errors:  # sizes are read from the values: only once they are well-formed
        errors.extend(validate_fit(spec))
    return errors


def spec_view(spec: ClusterSpec) -> ClusterView:
    """The cluster a spec describes, before it has addresses (sizes do not depend on them)."""
    nodes = []
    for g, group in enumerate(spec.node_groups):
        for i in range(group.count):
            node_id = f"{group.role.value.lower()}-{g}-{i}"
            nodes.append(NodeView(node_id=node_id, role=group.role, address="0.0.0.0", directory=f"/{node_id}",
                                  instance_type=group.instance_type))
    user: dict[str, dict[str, str]] = {}
    for conf in spec.configurations:
        user.setdefault(conf.classification, {}).update(conf.properties)
    return ClusterView(cluster_id="spec", release=spec.release, services=tuple(spec.services_in_order()),
                       nodes=tuple(nodes), user_configurations=user,
                       object_storage={} if spec.object_storage else None)


def validate_fit(spec: ClusterSpec) -> list[FieldError]:
    """Refuse a spec on which some step type could never be scheduled
    (``corral.services.sizing``): at the property the user set that decides it, else at the
    instance type of the smallest NodeManager's group."""
    view = spec_view(spec)
    derived = sizing.derive(view)
    props = effective_properties(view)
    problems = [sizing.Problem(p, sizing.YARN_KEYS) for p in derived.problems] or sizing.check(view, props)
    errors = []
    for problem in problems:
        loc = _user_property(spec, problem.properties) or _smallest_group(spec)
        hint = "" if loc[0] == "configurations" else ": use a larger instance type or more CORE/TASK nodes"
        errors.append(FieldError(loc, problem.message + hint))
    return errors


def _user_property(spec: ClusterSpec, keys: tuple[tuple[str, str], ...]) -> tuple[str | int, ...] | None:
    for classification, key in keys:
        for i, conf in enumerate(spec.configurations):
            if conf.classification == classification and key in conf.properties:
                return ("configurations", i, "properties", key)
    return None


def _smallest_group(spec: ClusterSpec) -> tuple[str | int, ...]:
    from corral.domain.catalog import INSTANCE_TYPES  # noqa: PLC0415

    workers = [(INSTANCE_TYPES[g.instance_type].memory_mib, i) for i, g in enumerate(spec.node_groups)
               if g.role in (NodeRole.CORE, NodeRole.TASK) and g.count > 0]
    return ("node_groups", min(workers)[1], "instance_type") if workers else ("node_groups",)
