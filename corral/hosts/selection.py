"""Which registered hosts a cluster's node groups get (``provider: ssh``), and their
reservation in the store.

A node is a whole host (as an EMR node is a machine): one node per host. ``select_hosts``
is pure: over snapshots of the host rows (``HostInfo``) it picks, for each group, hosts
that are READY, free (no ``node_id``), carry every label of ``host_labels``, are one of
``hosts`` when the group names them, and are at least the group's instance type when it
gives one (a floor). Groups that name hosts get them first (nobody else may take a named
host); then the others in role order (MASTER, CORE, TASK, then spec order), each taking
the first free matching hosts by name, so a pool gives the same answer every time. When
some group cannot be served, the whole selection is refused with one line per such group
naming its need, its filter, what matched and why the rest did not, e.g.
``node_groups[1]: CORE needs 3 READY hosts with label rack=r1; 2 match: h2, h3``.

``reserve`` takes the picks in the caller's transaction, one conditional UPDATE per host
(``status='READY' AND node_id IS NULL``): a concurrent create that took one first makes it
match no row, and the caller rolls everything back and selects again (``HostTaken``).
Releasing a host when its node is gone is the ssh provider's (``HostState`` ALLOCATED ->
READY).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from corral.domain.catalog import INSTANCE_TYPES, InstanceType, host_instance_type
from corral.domain.spec import ClusterSpec, NodeGroupSpec
from corral.domain.states import HostState
from corral.errors import FieldError, ValidationFailed
from corral.hosts.check import effective_resources
from corral.store.models import Host

ROLE_ORDER = {"MASTER": 0, "CORE": 1, "TASK": 2}
_LISTED = 10  # host names a message lists before "and N more"


@dataclass(frozen=True)
class HostInfo:
    """What selection reads of a host row. ``cores``/``memory_mib``: its effective size
    (``corral.hosts.check.effective_resources``: the user's override, else the check's
    finding), None when neither is known."""

    id: str
    name: str
    address: str
    status: str
    labels: Mapping[str, str]
    cores: int | None
    memory_mib: int | None
    node_id: str | None = None
    cluster_id: str | None = None
    status_reason: str | None = None

    @classmethod
    def of(cls, host: Host) -> "HostInfo":
        cores, memory = effective_resources(host.facts or {}, host.cores_override, host.memory_mb_override)
        return cls(id=host.id, name=host.name, address=host.address, status=host.status,
                   labels={str(k): str(v) for k, v in (host.labels or {}).items()}, cores=cores, memory_mib=memory,
                   node_id=host.node_id, cluster_id=host.cluster_id, status_reason=host.status_reason)

    @property
    def free(self) -> bool:
        return HostState(self.status).selectable() and self.node_id is None


@dataclass(frozen=True)
class Pick:
    """A host for one node of group ``group`` (its index in ``spec.node_groups``), and the
    size the node's daemons get: the group's instance type, else the host's own."""

    group: int
    host: HostInfo
    size: InstanceType


@dataclass(frozen=True)
class Selection:
    picks: tuple[Pick, ...]  # by group index, then node order

    def of_group(self, group: int) -> list[Pick]:
        return [p for p in self.picks if p.group == group]

    def sizes(self) -> dict[int, list[InstanceType]]:
        """Per group index, each node's size (``corral.services.registry.GroupSizes``)."""
        sizes: dict[int, list[InstanceType]] = {}
        for pick in self.picks:
            sizes.setdefault(pick.group, []).append(pick.size)
        return sizes


def _floor(group: NodeGroupSpec) -> InstanceType | None:
    return INSTANCE_TYPES[group.instance_type] if group.instance_type is not None else None


def _fits(host: HostInfo, floor: InstanceType | None) -> bool:
    if host.cores is None or host.memory_mib is None:
        return False
    return floor is None or (host.cores >= floor.vcpus and host.memory_mib >= floor.memory_mib)


def _size(host: HostInfo, floor: InstanceType | None) -> InstanceType:
    if floor is not None:
        return floor  # a floor is also the uniform size: mixed hosts behave alike
    assert host.cores is not None and host.memory_mib is not None
    return host_instance_type(host.name, host.cores, host.memory_mib)


def _has_labels(host: HostInfo, labels: Mapping[str, str] | None) -> bool:
    return all(host.labels.get(k) == v for k, v in (labels or {}).items())


def select_hosts(spec: ClusterSpec, pool: Sequence[HostInfo]) -> Selection:
    """The hosts for every node of ``spec`` (an ssh spec that passed
    ``validate_cluster_spec``) out of ``pool`` (every registered host). Raises
    ValidationFailed with one error per group that cannot be served, at ``node_groups[i]``."""
    hosts = sorted(pool, key=lambda h: h.name)
    by_name = {h.name: h for h in hosts}
    taken: dict[str, int] = {}  # host name -> the group it goes to
    chosen: dict[int, list[HostInfo]] = {}
    errors: list[FieldError] = []
    order = sorted(range(len(spec.node_groups)), key=lambda i: (ROLE_ORDER[spec.node_groups[i].role.value], i))
    named = [i for i in order if spec.node_groups[i].hosts is not None and spec.node_groups[i].count > 0]
    filtered = [i for i in order if spec.node_groups[i].hosts is None and spec.node_groups[i].count > 0]
    for i in named:
        group = spec.node_groups[i]
        problems: list[str] = []
        usable: list[HostInfo] = []
        for name in group.hosts or []:
            problem = _named_problem(by_name.get(name), name, group)
            if problem:
                problems.append(problem)
            else:
                usable.append(by_name[name])
        for host in usable:
            taken[host.name] = i
        if problems:
            errors.append(FieldError(("node_groups", i), f"{_need(group)}; {_matched(usable)}; {', '.join(problems)}"))
        else:
            chosen[i] = usable
    for i in filtered:
        group = spec.node_groups[i]
        floor = _floor(group)
        labelled = [h for h in hosts if _has_labels(h, group.host_labels)]
        free = [h for h in labelled if h.free and _fits(h, floor)]
        available = [h for h in free if h.name not in taken]
        picked = available[:group.count]
        for host in picked:
            taken[host.name] = i
        if len(available) >= group.count:
            chosen[i] = picked
            continue
        elsewhere = [f"{h.name} (node_groups[{taken[h.name]}])" for h in free if h.name in taken and taken[h.name] != i]
        details = _shortfall(available, labelled, floor, bool(hosts), elsewhere)
        errors.append(FieldError(("node_groups", i), f"{_need(group)}; {details}"))
    if errors:
        raise ValidationFailed(sorted(errors, key=lambda e: e.loc))
    picks = [Pick(i, h, _size(h, _floor(spec.node_groups[i]))) for i in sorted(chosen) for h in chosen[i]]
    return Selection(tuple(picks))


def hosts_for_growth(pool: Sequence[HostInfo], role: str, instance_type: str | None, host_labels: Mapping[str, str],
                     host_names: Sequence[str], count: int) -> list[Pick]:
    """``count`` more hosts for a running cluster's group (a scale-out): READY, free, with
    every label of ``host_labels``, one of ``host_names`` when the group named its hosts,
    and at least ``instance_type`` when the group has one (None: sized from the host).
    The first by name, as ``select_hosts``. Raises ValidationFailed at ``count`` naming the
    need and what matched, e.g. ``TASK needs 2 more READY hosts with label rack=r1; 1
    matches: h5; not READY: h6 (ALLOCATED, cluster c-1)``."""
    floor = INSTANCE_TYPES[instance_type] if instance_type in INSTANCE_TYPES else None
    hosts = sorted(pool, key=lambda h: h.name)
    named = set(host_names)
    eligible = [h for h in hosts if _has_labels(h, host_labels) and (not named or h.name in named)]
    free = [h for h in eligible if h.free and _fits(h, floor)]
    if len(free) >= count:
        return [Pick(0, h, _size(h, floor)) for h in free[:count]]
    need = f"{role} needs {count} more READY host{'s' if count != 1 else ''}"
    if named:
        need += f" among those it names ({', '.join(sorted(named))})"
    if host_labels:
        need += " with label" + ("s " if len(host_labels) != 1 else " ") + ", ".join(f"{k}={v}" for k, v in host_labels.items())
    if floor is not None:
        need += f", at least {floor.vcpus} vcpus and {floor.memory_mib} MiB ({floor.name})"
    raise ValidationFailed([FieldError(("count",), f"{need}; {_shortfall(free, eligible, floor, bool(hosts))}")])


def _shortfall(available: Sequence[HostInfo], eligible: Sequence[HostInfo], floor: InstanceType | None,
               any_registered: bool, elsewhere: Sequence[str] = ()) -> str:
    """Why too few of the ``eligible`` hosts (those a group's labels or names allow) are
    ``available``: ``1 matches: h5; given to other groups: ...; not READY: h6 (ALLOCATED,
    cluster c-1); too small: h7 (1 vcpus, 2048 MiB)``."""
    details = [_matched(available)]
    if elsewhere:
        details.append(f"given to other groups: {_names(elsewhere)}")
    busy = [f"{h.name} ({_state_text(h)})" for h in eligible if not h.free]
    if busy:
        details.append(f"not READY: {_names(busy)}")
    small = [f"{h.name} ({_size_text(h)})" for h in eligible if h.free and not _fits(h, floor)]
    if small:
        details.append(f"too small: {_names(small)}" if floor else f"size unknown: {_names(small)}")
    if not any_registered:
        details.append("no host is registered (corral host add)")
    return "; ".join(details)


def _need(group: NodeGroupSpec) -> str:
    """``CORE needs 3 READY hosts named h1, h2, h3 with label rack=r1, at least 4 vcpus and 8192 MiB (local.large)``."""
    text = f"{group.role.value} needs {group.count} READY host{'s' if group.count != 1 else ''}"
    if group.hosts is not None:
        text += f" named {', '.join(group.hosts)}"
    parts = []
    if group.host_labels:
        pairs = ", ".join(f"{k}={v}" for k, v in group.host_labels.items())
        parts.append(f"with label{'s' if len(group.host_labels) != 1 else ''} {pairs}")
    floor = _floor(group)
    if floor is not None:
        parts.append(f"at least {floor.vcpus} vcpus and {floor.memory_mib} MiB ({floor.name})")
    return text + (" " + ", ".join(parts) if parts else "")


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown + (f" and {len(items) - _LISTED} more" if len(items) > _LISTED else "")


def _matched(hosts: Sequence[HostInfo]) -> str:
    if not hosts:
        return "none match"
    return f"{len(hosts)} match{'es' if len(hosts) == 1 else ''}: {_names([h.name for h in hosts])}"


def _size_text(host: HostInfo) -> str:
    if host.cores is None or host.memory_mib is None:
        return "cores and memory unknown: check it again, or give host add --cores/--memory"
    return f"{host.cores} vcpus, {host.memory_mib} MiB"


def _state_text(host: HostInfo) -> str:
    """``ALLOCATED, cluster c-1``; ``reserved`` for a READY host a node holds (a create in flight)."""
    if HostState(host.status).selectable():
        return "reserved"
    return host.status + (f", cluster {host.cluster_id}" if host.cluster_id else "")


def _named_problem(host: HostInfo | None, name: str, group: NodeGroupSpec) -> str | None:
    """Why the named host cannot be this group's, or None."""
    if host is None:
        return f"{name} is not registered"
    if not HostState(host.status).selectable():
        owner = f"cluster {host.cluster_id}" if host.cluster_id else ""
        reason = (host.status_reason or "").strip().splitlines()[0][:160] if host.status_reason else ""
        why = "; ".join(part for part in (owner, reason) if part)
        return f"{name} is {host.status}" + (f" ({why})" if why else "")
    if host.node_id is not None:
        return f"{name} is reserved (node {host.node_id})"
    missing = [f"{k}={v}" for k, v in (group.host_labels or {}).items() if host.labels.get(k) != v]
    if missing:
        return f"{name} lacks label{'s' if len(missing) != 1 else ''} {', '.join(missing)}"
    floor = _floor(group)
    if not _fits(host, floor):
        if host.cores is None or host.memory_mib is None:
            return f"{name} has {_size_text(host)}"
        assert floor is not None
        return f"{name} is too small for {floor.name} ({_size_text(host)})"
    return None


# -- the store ---------------------------------------------------------------------------------


def load_pool(session: Session) -> list[HostInfo]:
    """Every registered host (REMOVED ones too: a spec naming one is told so), by name."""
    return [HostInfo.of(h) for h in session.scalars(select(Host).order_by(Host.name))]


class HostTaken(Exception):
    """A host selected for this create was reserved by another one first: roll back, select again."""

    def __init__(self, host_name: str):
        self.host_name = host_name
        super().__init__(f"host {host_name} was reserved by a concurrent create")


def reserve(session: Session, reservations: Sequence[tuple[HostInfo, str]], cluster_id: str, now: float) -> None:
    """Reserve each (host, node id) in the caller's transaction: one conditional UPDATE per
    host, in host id order (two creates lock shared hosts in the same order: no deadlock on
    PostgreSQL). Raises HostTaken when one is no longer READY and free; the caller's
    rollback then undoes the earlier ones with everything else."""
    for host, node_id in sorted(reservations, key=lambda r: r[0].id):
        result = session.execute(
            update(Host)
            .where(Host.id == host.id, Host.status == HostState.READY.value, Host.node_id.is_(None))
            .values(node_id=node_id, cluster_id=cluster_id, status=HostState.ALLOCATED.value, status_changed_at=now)
            .execution_options(synchronize_session=False))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise HostTaken(host.name)
