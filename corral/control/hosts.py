"""Host inventory requests: add, check, drain, remove, list, describe.

These write rows and hand work to the reconciler (``corral.reconcile.hosts``), which runs
every host check over SSH; a request never waits for one. States and transitions are
``HostState``'s; every status change goes through ``transition`` (a conditional UPDATE,
so a concurrent writer, e.g. the ssh provider reserving a READY host, is never
overwritten: the loser sees 0 rows and re-reads).

Decisions:
- **add** scans the host's key in the request (the SSH handshake only, ``ADD_SCAN_SECONDS``)
  to pin it: with ``host_key_fingerprint`` a different key is refused (422, nothing
  created); without, the first key seen is recorded (``host_key`` and its fingerprint).
  A host that does not answer is still added (CHECKING, no key yet): the first check pins
  the key it sees (or compares it with the given fingerprint) before sending anything
  else, and the check's deadline ends it UNREACHABLE. The row is CHECKING, target READY.
- **check** re-runs the check: READY, FAILED_CHECK, UNREACHABLE and DRAINED become CHECKING
  (a DRAINED host keeps target DRAINED and returns to DRAINED with fresh facts). An
  ALLOCATED or DRAINING host keeps its status and allocation: ``checked_at`` is cleared
  (a check is due) and the reconciler only records facts and check items (its ports,
  held by its node, are not checked). HOST_KEY_CHANGED is refused (409): remove and add
  the host again. A CHECKING host is left as it is.
- **drain**: READY, FAILED_CHECK, UNREACHABLE -> DRAINED at once; ALLOCATED -> DRAINING
  (the ssh provider makes it DRAINED when it releases the host); CHECKING gets target
  DRAINED and ends DRAINED when its check is done. HOST_KEY_CHANGED is refused (409).
- **remove** is refused (409) while a node holds the host (``node_id``), naming the node
  and cluster. The row is kept (REMOVED) for history, renamed ``NAME~ID`` so the name is
  free for a new host, and its private key is dropped. Removed hosts are left out of
  ``list`` unless asked for; ``describe`` finds them by id.
- **remove with force** is for a host that never comes back: a node terminated while its
  host did not answer keeps the reservation until the host answers and is cleaned
  (``SshProvider.pending_cleanups``). When that node is not live (``holder_live``: its
  cluster has ended, or the node is TERMINATED, or Corral has no row of either), force
  removes the host anyway: the reservation ends with it, and its ``status_reason`` names
  what may be left on the machine (``left_behind``). A node of a cluster that has not
  ended is never forced off (409 naming the cluster). Without force, the refusal says
  when force would apply. The audit action is ``host.force_remove`` (``corral.api.actions``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from corral import ids
from corral.control.context import ControlPlane
from corral.domain.states import ClusterState, HostState, InvalidTransition, NodeState
from corral.errors import Conflict, FieldError, NotFound, ValidationFailed
from corral.hosts import layout
from corral.hosts.spec import NAME_RE, HostSpec
from corral.providers.ssh_scripts import NODE_MARKER
from corral.providers.ssh_transport import HostKeyChanged, HostUnreachable, SshError, SshTarget
from corral.store.models import Cluster, Host, Node

log = logging.getLogger(__name__)
ADD_SCAN_SECONDS = 10.0  # how long `host add` waits for the host's SSH handshake to pin its key
REMOVED_SUFFIX = "~"  # a removed host's row is named NAME~ID (``~`` is not allowed in names)
ALLOCATED_STATES = (HostState.ALLOCATED.value, HostState.DRAINING.value)


def display_name(host: Host) -> str:
    """The name the user gave (a removed row's ``NAME~ID`` shown as NAME)."""
    return host.name.split(REMOVED_SUFFIX, 1)[0]


def target_of(host: Host) -> SshTarget:
    """How to reach ``host``, with its pinned key (none pinned yet: only the fingerprint
    the user gave, or nothing, which the transport refuses to connect with)."""
    return SshTarget(address=host.address, port=host.port, user=host.user, private_key=host.private_key,
                     host_key=host.host_key, host_key_fingerprint=host.host_key_fingerprint)


def check_pending(host: Host) -> bool:
    """Whether a check is under way or due (the CLI waits while it is)."""
    return host.status == HostState.CHECKING.value or (host.status in ALLOCATED_STATES and host.checked_at is None)


def host_key_changed_reason(exc: HostKeyChanged, pinned: str | None) -> str:
    was = exc.pinned or pinned or "?"
    return (f"host key changed: pinned {was}, now {exc.seen or '?'}; if the host was reinstalled, "
            "remove and add it again")


def transition(session: Session, host_id: str, from_state: HostState, to_state: HostState, now: float,
               target_is: str | None = None, **values: Any) -> bool:
    """Move the host from ``from_state`` to ``to_state`` (and set ``values``) if it is still
    in ``from_state`` (and has target ``target_is``, if given); whether it was.
    ``InvalidTransition`` if HostState forbids it."""
    from_state.check_transition(to_state)
    changed = {"status": to_state.value, **({"status_changed_at": now} if from_state is not to_state else {}), **values}
    query = update(Host).where(Host.id == host_id, Host.status == from_state.value)
    if target_is is not None:
        query = query.where(Host.target == target_is)
    result = session.execute(query.values(**changed).execution_options(synchronize_session=False))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_host_key_changed(session: Session, host: Host, exc: HostKeyChanged, now: float) -> bool:
    """For every connection after add (the check, the ssh provider): the host presented
    another key. HOST_KEY_CHANGED with the reason, where HostState allows it from the
    host's status (not from DRAINING or DRAINED: the reason is still recorded)."""
    reason = host_key_changed_reason(exc, host.host_key_fingerprint)
    item = {"name": "host key", "ok": False, "severity": "error", "found": exc.seen or "?",
            "need": exc.pinned or host.host_key_fingerprint or "?", "fix": "if the host was reinstalled, remove and add it again",
            "message": reason}
    state = HostState(host.status)
    if state.can_become(HostState.HOST_KEY_CHANGED):
        return transition(session, host.id, state, HostState.HOST_KEY_CHANGED, now, status_reason=reason, checks=[item])
    session.execute(update(Host).where(Host.id == host.id).values(status_reason=reason, checks=[item]))
    return False


# -- lookups ----------------------------------------------------------------------------------


def find_host(session: Session, name: str) -> Host:
    """The registered host called ``name``, else the host (removed ones too) with that id."""
    host = session.scalar(select(Host).where(Host.name == name))
    if host is None:
        host = session.get(Host, name)
    if host is None:
        raise NotFound("host", name)
    return host


def get_host(cp: ControlPlane, name: str) -> Host:
    with cp.store.session() as s:
        return find_host(s, name)


def list_hosts(cp: ControlPlane, include_removed: bool = False, after: tuple[str, str] | None = None,
               limit: int | None = None) -> list[Host]:
    """Hosts by name (then id); REMOVED ones only with ``include_removed``. ``after`` is
    the (name, id) of the previous page's last host."""
    with cp.store.session() as s:
        query = select(Host)
        if not include_removed:
            query = query.where(Host.status != HostState.REMOVED.value)
        if after is not None:
            query = query.where(or_(Host.name > after[0], and_(Host.name == after[0], Host.id > after[1])))
        query = query.order_by(Host.name, Host.id)
        return list(s.scalars(query if limit is None else query.limit(limit)))


# -- add --------------------------------------------------------------------------------------


def _pin(cp: ControlPlane, spec: HostSpec) -> tuple[str | None, str | None, str | None]:
    """(known_hosts line, fingerprint, why none) of the host's key as seen now. A given
    fingerprint that differs raises ``ValidationFailed`` naming it."""
    bare = SshTarget(address=spec.address, port=spec.port, user=spec.user)
    try:
        line, seen = cp.ssh.scan_host_key(bare, deadline_seconds=ADD_SCAN_SECONDS)
    except (HostUnreachable, SshError) as exc:
        return None, spec.host_key_fingerprint, f"host key not pinned yet: {exc}"
    if spec.host_key_fingerprint and seen != spec.host_key_fingerprint:
        raise ValidationFailed([FieldError(("host_key_fingerprint",),
                                           f"the host presents {seen}, not {spec.host_key_fingerprint}: "
                                           "nothing was added (check the fingerprint on the host with "
                                           "`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`)")])
    return line, seen, None


def add_host(cp: ControlPlane, spec: HostSpec) -> Host:
    """Register a host: CHECKING, target READY; the reconciler checks it. Raises
    ``ValidationFailed`` (a name the address cannot default to, a fingerprint that does
    not match) and ``Conflict`` (the name, or the address and port, already registered)."""
    name = spec.host_name
    if not NAME_RE.match(name):
        raise ValidationFailed([FieldError(("name",), f"the address {name!r} cannot be the host's name: give a name")])
    with cp.store.session() as s:
        _refuse_duplicates(s, name, spec)
    host_key, fingerprint, why = _pin(cp, spec)
    now = time.time()
    host = Host(id=ids.host_id(), name=name, address=spec.address, port=spec.port, user=spec.user,
                labels=dict(spec.labels), host_key=host_key, host_key_fingerprint=fingerprint,
                private_key=spec.private_key.get_secret_value() if spec.private_key else None,
                cores_override=spec.cores, memory_mb_override=spec.memory_mb, facts={}, checks=[],
                status=HostState.CHECKING.value, target=HostState.READY.value,
                status_reason=why or "waiting for its check", created_at=now, status_changed_at=now)
    try:
        with cp.store.session() as s:
            _refuse_duplicates(s, name, spec)
            s.add(host)
    except IntegrityError:
        raise Conflict(f"host {name} already exists (added at the same time)") from None
    log.info("host %s (%s:%s) added; key %s", name, spec.address, spec.port, fingerprint or "not pinned yet")
    cp.notifier.poke_reconciler()
    return host


def _refuse_duplicates(session: Session, name: str, spec: HostSpec) -> None:
    same_name = session.scalar(select(Host).where(Host.name == name))
    if same_name is not None:
        raise Conflict(f"host {name} already exists ({same_name.status}): choose another name, or remove it first")
    same_place = session.scalar(select(Host).where(Host.address == spec.address, Host.port == spec.port,
                                                   Host.status != HostState.REMOVED.value))
    if same_place is not None:
        raise Conflict(f"{spec.address}:{spec.port} is already host {same_place.name}: a host runs one node at a time, "
                       "so it is registered once")


# -- check, drain, remove ------------------------------------------------------------------


def _retrying(cp: ControlPlane, name: str, change: Any) -> Host:
    """Apply ``change(session, host, now) -> bool`` until it wins against concurrent
    writers (a False is a lost conditional update: re-read and decide again)."""
    for _ in range(5):
        with cp.store.session() as s:
            host = find_host(s, name)
            if change(s, host, time.time()):
                break
    else:
        raise Conflict(f"host {name} kept changing; try again")
    cp.notifier.poke_reconciler()
    return get_host(cp, host.id)


def check_host(cp: ControlPlane, name: str) -> Host:
    """Run the host's check again (see the module's decisions). ``Conflict`` when its key
    changed or it is removed."""
    def change(s: Session, host: Host, now: float) -> bool:
        state = HostState(host.status)
        if state is HostState.CHECKING:
            return True
        if state is HostState.HOST_KEY_CHANGED:
            raise Conflict(f"host {display_name(host)}: {host.status_reason or 'its host key changed'}")
        if state is HostState.REMOVED:
            raise Conflict(f"host {display_name(host)} is removed")
        if host.status in ALLOCATED_STATES:
            s.execute(update(Host).where(Host.id == host.id).values(checked_at=None))
            return True
        return transition(s, host.id, state, HostState.CHECKING, now, status_reason="check requested")
    return _retrying(cp, name, change)


def drain_host(cp: ControlPlane, name: str) -> Host:
    """Take the host out of selection (see the module's decisions)."""
    def change(s: Session, host: Host, now: float) -> bool:
        state = HostState(host.status)
        if state in (HostState.DRAINING, HostState.DRAINED):
            return True
        if state in (HostState.HOST_KEY_CHANGED, HostState.REMOVED):
            raise Conflict(f"host {display_name(host)} is {state.value}: nothing to drain; remove it")
        drained = HostState.DRAINED.value
        if state is HostState.CHECKING:
            s.execute(update(Host).where(Host.id == host.id).values(target=drained))
            return True
        if state is HostState.ALLOCATED:
            return transition(s, host.id, state, HostState.DRAINING, now, target=drained,
                              status_reason=f"draining: node {host.node_id} of cluster {host.cluster_id} still runs here")
        return transition(s, host.id, state, HostState.DRAINED, now, target=drained, status_reason="drained by request")
    return _retrying(cp, name, change)


def drain_after_replacement(session: Session, node: Node, reason: str, now: float) -> bool:
    """Take the host of ``node``, replaced because its daemons said the host is unhealthy
    (a full or failed disk), out of selection: DRAINING, DRAINED once the node is released,
    so the next grow or replacement does not land on it again. Whether it was drained
    (False off the ssh provider or when the host is no longer the node's)."""
    if not node.host_id:
        return False
    return transition(session, node.host_id, HostState.ALLOCATED, HostState.DRAINING, now, target=HostState.DRAINED.value,
                      status_reason=f"its node {node.id} was replaced: {reason}; once fixed, remove the host "
                                    "and add it again")


def holder_live(node: Node | None, cluster: Cluster | None) -> bool:
    """Whether the node holding a host may still run there: its cluster has not ended and
    it is not TERMINATED. A missing row (nothing in Corral will ever clean that
    reservation) is not live."""
    if node is None or cluster is None or ClusterState(cluster.status).is_terminal():
        return False
    return node.status != NodeState.TERMINATED.value


def left_behind(host: Host, node_id: str, cluster_id: str) -> str:
    """What a node never cleaned may have left on its host (the ssh provider's layout,
    ``corral.hosts.layout``, under the home the host check found, else ``~``)."""
    home = str((host.facts or {}).get("home") or "~")
    return (f"its directory {layout.node_dir(home, cluster_id, node_id)}, its logs in "
            f"{layout.orphaned_logs(home, cluster_id, node_id)}, processes with {NODE_MARKER}={node_id} in their "
            f"environment, the login's crontab line ending '{layout.cron_tag(node_id)}', and Corral's caches under "
            f"{layout.base(home)}")


def _holder_text(node: Node | None, cluster: Cluster | None) -> str:
    if cluster is not None and ClusterState(cluster.status).is_terminal():
        return f"which has ended ({cluster.status})"
    if node is not None and node.status == NodeState.TERMINATED.value:
        return "which is TERMINATED"
    return "which Corral has no record of"


def remove_host(cp: ControlPlane, name: str, force: bool = False) -> Host:
    """Remove the host (kept as REMOVED for history). ``Conflict`` while a node holds it;
    with ``force``, only while that node is live (see the module's decisions)."""
    def change(s: Session, host: Host, now: float) -> bool:
        state = HostState(host.status)
        if state is HostState.REMOVED:
            return True
        shown = display_name(host)
        values: dict[str, Any] = {"status_reason": "removed by request"}
        if host.node_id is not None:
            node = s.get(Node, host.node_id)
            cluster_id = node.cluster_id if node is not None else host.cluster_id
            cluster = s.get(Cluster, cluster_id) if cluster_id else None
            holder = f"node {host.node_id} of cluster {cluster_id}"
            if holder_live(node, cluster):
                assert cluster is not None
                raise Conflict(f"host {shown} runs {holder} ({cluster.status}): terminate the cluster (or drain the "
                               "host and wait for it) before removing it"
                               + ("; --force removes a host only once its node's cluster has ended" if force else ""))
            if not force:
                raise Conflict(f"host {shown} is still reserved by {holder}, {_holder_text(node, cluster)}: the host "
                               "did not answer when the node was terminated, and is cleaned when it answers. If it "
                               f"will not come back, `corral host remove --force {shown}` removes it anyway "
                               "(what the node left on it stays there)")
            left = left_behind(host, host.node_id, str(cluster_id))
            values = {"node_id": None, "cluster_id": None,
                      "status_reason": f"removed by force while reserved by {holder} ({_holder_text(node, cluster)}), "
                                       f"never cleaned: {host.address} may still have {left}"}
            log.warning("host %s removed by force; %s", shown, values["status_reason"])
        try:
            return transition(s, host.id, state, HostState.REMOVED, now, target=HostState.REMOVED.value,
                              name=f"{host.name}{REMOVED_SUFFIX}{host.id}", private_key=None, removed_at=now, **values)
        except InvalidTransition:
            raise Conflict(f"host {shown} is {state.value}: it cannot be removed now") from None
    return _retrying(cp, name, change)
