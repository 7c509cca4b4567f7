"""The ssh provider: every node is a registered host (``hosts`` table), reached over SSH.

What the local provider does with a loopback address, a directory and a child process,
this one does on the node's host (``nodes.host_id``, reserved at create: one node per
host) through ``corral.providers.ssh_transport.SshPool`` and the scripts of
``corral.providers.ssh_scripts``:

- ``create_node`` (idempotent by node id): the agent's environment (Corral and its pinned
  dependencies, from the wheels of ``corral.runtime.repository.agent_bundle``, which the
  host fetches from the control plane with the node's agent token and installs offline:
  ``corral.hosts.agent_install``), the node directory (``corral.hosts.layout``) with its
  ``agent.json`` and ``run/agent.token`` (0600), an ``@reboot`` crontab line, and the
  agent started detached so it outlives the SSH session. Nothing on the host assumes a
  filesystem shared with the control plane: the agent fetches artifacts and uploads logs
  over HTTP at the advertised URL (``Settings.advertise_url``), as on the local provider.
- ``query_node`` / ``leftover_processes`` / ``stop_node``: the agent's lock, a scan of
  ``/proc/*/environ`` for the node's marker, SIGTERM then rounds of kills, on the host.
- ``terminate_node``: stop, check no process and no listening port of the node is left,
  copy its logs back (``<logs_dir>/<cluster>/nodes/<node>``, as the local provider keeps
  them), remove its directory and crontab line, then release the host in the store
  (READY, or DRAINED when it was DRAINING). The runtime cache and agent environments stay.

Why a crontab ``@reboot`` line brings the agent back after a reboot, not a systemd unit:
it needs no root (the login's own crontab; Corral runs as an unprivileged user), works
on any init with cron (the host check looks for it), and is one line to add and remove.
A systemd user unit would need lingering enabled by root, a system unit root itself. A
host without ``crontab`` gets no reboot persistence (``reboot: none`` in the node's
provider data): the reconciler still restarts a stopped agent over SSH.

Errors (``corral.providers.base``): a host that does not answer raises ``NodeUnreachable``
(the reconciler marks the node LOST); a changed host key marks the host HOST_KEY_CHANGED
and raises ``NodeBroken`` (nothing more is sent to it, ever, until it is re-added); any
other failure raises ``ProviderError`` with the remote command's stderr tail.

A node terminated while its host was unreachable stays on the host's reservation
(``hosts.node_id``, the host ALLOCATED or DRAINING) with its node row TERMINATED:
``pending_cleanups`` lists those, and the reconcile loop calls ``terminate_node`` for
them until the host answers and is clean. Meanwhile the agent, if it reaches the control
plane first, is told its node is gone (HTTP 410) and cleans up by itself
(``corral.agent.selfclean``); its logs wait in ``orphaned-logs/`` for that copy.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import select

from corral.domain.states import HostState, NodeState
from corral.hosts import agent_install, layout
from corral.providers import ssh_scripts as sh
from corral.providers.base import Liveness, NodeBroken, NodeHandle, NodeRequest, NodeUnreachable, ProviderError
from corral.providers.local import NODE_ENV_MARKER, NODE_SUBDIRS
from corral.providers.ssh_transport import (AuthenticationFailed, CommandTimedOut, HostKeyChanged, HostUnreachable,
                                            SshError, SshPool, SshTarget)
from corral.runtime.repository import Bundle
from corral.settings import Settings
from corral.store.db import Store
from corral.store.models import Host, Node

log = logging.getLogger("corral.providers.ssh")
QUERY_CONNECT_SECONDS = 10.0  # liveness checks give a silent host this long: the reconciler asks again
INSTALL_SECONDS = 1500.0  # fetching the bundle and building the environment on a slow host
AGENT_START_SECONDS = 15.0  # for a started agent to take its lock
SEEN_WRITE_SECONDS = 30.0  # hosts.last_seen_at is written at most this often per host


@dataclass(frozen=True)
class _Place:
    """A node and its host, read from the store (detached copies)."""

    node_id: str
    cluster_id: str
    host_id: str
    name: str
    address: str
    host_status: str
    host_node_id: str | None
    target: SshTarget

    @property
    def subject(self) -> str:
        return f"host {self.name} ({self.address}) unreachable over SSH"


def stored_private_key(host: Host) -> str | None:
    """The host's private key in clear, in memory only: the column is encrypted at rest
    and decrypted by the model (``corral.secretbox.EncryptedText``); never logged."""
    return host.private_key or None


def default_bundle(settings: Settings) -> Bundle:
    from corral.runtime import repository  # noqa: PLC0415 - built on first use, not at import

    return repository.agent_bundle(settings)  # type: ignore[attr-defined,no-any-return]


class SshProvider:
    name = "ssh"
    shares_machine = False

    def __init__(self, settings: Settings, store: Store, pool: SshPool | None = None,
                 bundle: Callable[[Settings], Bundle] = default_bundle, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.store = store
        self.pool = pool or SshPool()
        self._bundle_source = bundle
        self._bundle: Bundle | None = None
        self._bundle_lock = threading.Lock()
        self._facts: dict[str, dict[str, str]] = {}  # per host id: the probe's findings
        self._unreachable: set[str] = set()  # host ids last found unreachable (their status_reason says so)
        self._seen: dict[str, float] = {}  # host id -> when last_seen_at was last written
        self.clock = clock

    # -- where a node is ------------------------------------------------------------------------

    def _place(self, node_id: str) -> _Place | None:
        """The node's host, or None when the node has none (never placed: nothing to do).
        Raises ``NodeBroken`` for a host whose key changed or that has no pinned key."""
        with self.store.session() as s:
            node = s.get(Node, node_id)
            if node is None or node.host_id is None:
                return None
            host = s.get(Host, node.host_id)
            if host is None:
                raise ProviderError(f"node {node_id}: its host {node.host_id} is not registered")
            if host.status == HostState.HOST_KEY_CHANGED.value:
                raise NodeBroken(f"host {host.name} ({host.address}): {host.status_reason or 'its host key changed'}")
            if not (host.host_key or host.host_key_fingerprint):
                raise NodeBroken(f"host {host.name} ({host.address}) has no pinned host key; check the host again")
            target = SshTarget(address=host.address, port=host.port, user=host.user,
                               private_key=stored_private_key(host), host_key=host.host_key,
                               host_key_fingerprint=host.host_key_fingerprint)
            return _Place(node_id=node.id, cluster_id=node.cluster_id, host_id=host.id, name=host.name,
                          address=host.address, host_status=host.status, host_node_id=host.node_id, target=target)

    def _run(self, place: _Place, command: str, *, timeout: float = 60.0, stdin: bytes | None = None,
             connect_deadline: float | None = None) -> str:
        """Run a script on the node's host; SSH errors become the provider's (see module doc)."""
        try:
            result = self.pool.run(place.target, command, timeout=timeout, stdin=stdin,
                                   connect_deadline=connect_deadline)
        except SshError as exc:
            raise self._translate(place, exc) from exc
        self._answered(place)
        return result.text

    def _put(self, place: _Place, data: bytes, path: str, mode: int) -> None:
        try:
            self.pool.put(place.target, data, path, mode=mode)
        except SshError as exc:
            raise self._translate(place, exc) from exc

    def _translate(self, place: _Place, exc: SshError) -> ProviderError:
        if isinstance(exc, (HostUnreachable, CommandTimedOut)):
            self._mark_unreachable(place, str(exc))
            return NodeUnreachable(place.subject, str(exc))
        if isinstance(exc, HostKeyChanged):
            self._mark_key_changed(place, str(exc))
            return NodeBroken(f"host {place.name} ({place.address}): {exc}")
        if isinstance(exc, AuthenticationFailed):
            return ProviderError(f"host {place.name}: {exc}")
        return ProviderError(str(exc))

    def _mark_unreachable(self, place: _Place, error: str) -> None:
        """The host keeps its state (an ALLOCATED host that stops answering stays ALLOCATED,
        ``HostState``); its reason says since when it does not answer."""
        if place.host_id in self._unreachable:
            return
        self._unreachable.add(place.host_id)
        with self.store.session() as s:
            host = s.get(Host, place.host_id)
            if host is not None:
                host.status_reason = f"unreachable over SSH since {time.strftime('%H:%M:%S', time.localtime(self.clock()))}: {error}"

    def _answered(self, place: _Place) -> None:
        """The host answered: ``last_seen_at`` (at most every SEEN_WRITE_SECONDS) and no
        unreachable reason any more."""
        now = self.clock()
        if place.host_id not in self._unreachable and now - self._seen.get(place.host_id, 0.0) < SEEN_WRITE_SECONDS:
            return
        self._seen[place.host_id] = now
        with self.store.session() as s:
            host = s.get(Host, place.host_id)
            if host is None:
                return
            host.last_seen_at = now
            if place.host_id in self._unreachable or (host.status_reason or "").startswith("unreachable over SSH"):
                host.status_reason = None
        self._unreachable.discard(place.host_id)

    def _mark_key_changed(self, place: _Place, error: str) -> None:
        with self.store.session() as s:
            host = s.get(Host, place.host_id)
            if host is None:
                return
            host.status_reason = f"{error}. Corral no longer connects to it: check the host, then remove and add it again"
            if HostState(host.status).can_become(HostState.HOST_KEY_CHANGED):
                host.status, host.status_changed_at = HostState.HOST_KEY_CHANGED.value, self.clock()
        log.error("host %s (%s): %s", place.name, place.address, error)

    # -- the host's facts and layout --------------------------------------------------------------

    def _host_facts(self, place: _Place) -> dict[str, str]:
        """The login's home and PATH and which tools exist, asked once per host and process."""
        facts = self._facts.get(place.host_id)
        if facts is None:
            facts = sh.parse_pairs(self._run(place, sh.probe(), timeout=20))
            if not facts.get("home", "").startswith("/"):
                raise ProviderError(f"host {place.name}: the login {place.target.user} has no home directory")
            self._facts[place.host_id] = facts
        return facts

    def _home(self, place: _Place) -> str:
        return self._host_facts(place)["home"]

    def node_dir(self, place: _Place) -> str:
        return layout.node_dir(self._home(place), place.cluster_id, place.node_id)

    def _bundle_now(self) -> Bundle:
        with self._bundle_lock:
            if self._bundle is None:
                try:
                    self._bundle = self._bundle_source(self.settings)
                except Exception as exc:  # noqa: BLE001 - e.g. a wheel that cannot be built
                    raise ProviderError(f"the agent bundle is not available: {exc}") from exc
            return self._bundle

    # -- create / start ---------------------------------------------------------------------------

    def create_node(self, request: NodeRequest) -> NodeHandle:
        place = self._place(request.node_id)
        if place is None:
            raise ProviderError(f"node {request.node_id} has no host: the ssh provider runs nodes on reserved hosts")
        if not self.settings.advertise_url:
            raise ProviderError("hosts cannot reach the control plane: set CORRAL_ADVERTISE_URL (or CORRAL_HOST to an "
                                "address of this machine that the hosts can route to)")
        if place.host_node_id not in (None, request.node_id):
            raise ProviderError(f"host {place.name} is reserved for node {place.host_node_id}, not {request.node_id}")
        facts = self._host_facts(place)
        home, root = facts["home"], self.node_dir(place)
        missing = [t for t in ("python3.11", "setsid", "flock") if facts.get(f"has_{t}") != "1"]
        if missing:
            raise ProviderError(f"host {place.name} lacks {', '.join(missing)} (needed to run the agent)")
        launch = self._launch(place, request, facts)
        if self._run(place, sh.agent_state(root), timeout=20).strip() == "RUNNING":
            started = self._run(place, sh.start(launch, layout.cron_tag(request.node_id), layout.crontab_lock(home)),
                                timeout=40)
            return self._handle(place, root, sh.parse_pairs(started))
        bundle = self._bundle_now()
        env = layout.agent_env(home, bundle.digest)
        self._run(place, sh.prepare(root, NODE_SUBDIRS, f"{layout.base(home)}/agent"), timeout=30)
        if self._run(place, sh.env_complete(env), timeout=20).strip() != "yes":
            self._install(place, request, home, bundle, env)
        self._put(place, json.dumps(self._agent_config(place, request, home, root), indent=2).encode(),
                  f"{root}/agent.json", 0o600)
        self._put(place, request.agent_token.encode(), f"{root}/run/agent.token", 0o600)
        self._put(place, sh.start_script(launch).encode(), launch.script_path, 0o700)
        started = sh.parse_pairs(self._run(
            place, sh.start(launch, layout.cron_tag(request.node_id), layout.crontab_lock(home), AGENT_START_SECONDS),
            timeout=AGENT_START_SECONDS + 30))
        if started.get("agent") != "RUNNING":
            tail = self._run(place, f"tail -c 2000 {sh.q(root + '/logs/agent.log')} 2>/dev/null", timeout=20)
            raise ProviderError(f"the agent of node {request.node_id} on host {place.name} did not start: "
                                f"{tail.strip() or 'logs/agent.log is empty'}")
        return self._handle(place, root, started)

    def start_node(self, request: NodeRequest) -> NodeHandle:
        """The same as ``create_node``: every step is skipped when already done."""
        return self.create_node(request)

    def _handle(self, place: _Place, root: str, started: dict[str, str]) -> NodeHandle:
        pid = started.get("pid", "")
        return NodeHandle(place.node_id, place.address, root, {
            "agent_pid": int(pid) if pid.isdigit() else None, "host_id": place.host_id, "host": place.name,
            # "crontab": an @reboot line brings the agent back after a reboot; "none": nothing does
            "reboot": started.get("cron", "none").removeprefix("cron="),
        })

    def _launch(self, place: _Place, request: NodeRequest, facts: dict[str, str]) -> sh.AgentLaunch:
        home, root = facts["home"], self.node_dir(place)
        bundle = self._bundle_now()
        path = ":".join(p for p in dict.fromkeys([*sh.BASE_PATH.split(":"), *facts.get("path", "").split(":")]) if p)
        env = {"HOME": home, "USER": place.target.user, "LOGNAME": place.target.user, "PATH": path,
               "LANG": "C.UTF-8", NODE_ENV_MARKER: request.node_id, "CORRAL_CLUSTER_ID": request.cluster_id,
               "CORRAL_RUNTIME_CACHE": layout.runtime_cache(home)}
        if facts.get("java_home"):
            env["JAVA_HOME"] = facts["java_home"]
        return sh.AgentLaunch(node_id=request.node_id, node_dir=root,
                              python=f"{layout.agent_env(home, bundle.digest)}/bin/python", env=env)

    def _agent_config(self, place: _Place, request: NodeRequest, home: str, root: str) -> dict[str, object]:
        return {
            "node_id": request.node_id, "cluster_id": request.cluster_id, "address": place.address,
            "directory": root, "control_url": request.control_url, "runtime_dir": layout.runtime_cache(home),
            # What the agent removes by itself when the control plane says its node is gone
            # (corral.agent.selfclean): it was terminated while the host was unreachable.
            "self_clean": {"cron_tag": layout.cron_tag(request.node_id), "crontab_lock": layout.crontab_lock(home),
                           "orphaned_logs": layout.orphaned_logs(home, request.cluster_id, request.node_id)},
        }

    def _install(self, place: _Place, request: NodeRequest, home: str, bundle: Bundle, env: str) -> None:
        helper_dir = f"{layout.base(home)}/agent"
        wheels: list[dict[str, object]] = [{"name": a.name, "sha256": a.sha256, "size": a.size} for a in bundle.artifacts]
        manifest = f"{env}.manifest.json"
        for name, data in agent_install.files().items():
            self._put(place, data, f"{helper_dir}/{name}", 0o644)
        self._put(place, agent_install.manifest(request.control_url, layout.wheel_cache(home), env,
                                                layout.install_lock(home), wheels), manifest, 0o644)
        # The token goes on stdin (a command line shows in ps); the host fetches the wheels itself.
        out = self._run(place, f"python3.11 {sh.q(helper_dir + '/agent_install.py')} {sh.q(manifest)}",
                        timeout=INSTALL_SECONDS, stdin=request.agent_token.encode() + b"\n")
        log.info("agent environment %s on host %s: %s", bundle.digest[:16], place.name, out.strip()[-300:])

    # -- query ------------------------------------------------------------------------------------

    def query_node(self, node_id: str) -> Liveness:
        place = self._place(node_id)
        if place is None:
            return Liveness.MISSING
        out = self._run(place, sh.agent_state(self.node_dir(place)), timeout=20,
                        connect_deadline=QUERY_CONNECT_SECONDS).strip()
        try:
            return Liveness(out)
        except ValueError:
            raise ProviderError(f"host {place.name}: unexpected answer to the agent check: {out[:200]!r}") from None

    def leftover_processes(self, node_id: str) -> list[int]:
        place = self._place(node_id)
        if place is None:
            return []
        out = self._run(place, sh.leftovers(node_id), timeout=30, connect_deadline=QUERY_CONNECT_SECONDS)
        return sorted(int(p) for p in out.split() if p.isdigit())

    # -- stop / terminate ---------------------------------------------------------------------------

    def stop_node(self, node_id: str, timeout: float) -> None:
        place = self._place(node_id)
        if place is not None:
            self._stop(place, timeout)

    def _stop(self, place: _Place, timeout: float) -> list[int]:
        out = sh.parse_pairs(self._run(place, sh.stop(self.node_dir(place), place.node_id, timeout),
                                       timeout=timeout + 40))
        return sorted(int(p) for p in out.get("remaining", "").split() if p.isdigit())

    def terminate_node(self, node_id: str, timeout: float) -> None:
        """Stop everything of the node, leave its host clean, release the host. Each step
        is a no-op once done, so a control plane killed halfway resumes here. A host whose
        key changed cannot be cleaned: its reservation ends (so it can be removed and added
        again) and ``NodeBroken`` says what is left there."""
        try:
            place = self._place(node_id)
        except NodeBroken as exc:
            self._unreserve_broken(node_id)
            raise NodeBroken(f"{exc}; node {node_id}'s processes and directory may remain on it") from exc
        if place is None:
            return
        home, root = self._home(place), self.node_dir(place)
        remaining = self._stop(place, timeout)
        if remaining:
            raise ProviderError(f"processes of node {node_id} on host {place.name} survived SIGKILL: {remaining}")
        ports = self._run(place, sh.listening(node_id), timeout=30).strip()
        if ports:
            raise ProviderError(f"node {node_id} still listens on host {place.name}: {' '.join(ports.split())}")
        self._archive_logs(place, root, home)
        left = sh.parse_pairs(self._run(place, sh.remove(root, layout.orphaned_logs(home, place.cluster_id, node_id),
                                                         layout.cron_tag(node_id), layout.crontab_lock(home)),
                                        timeout=120))
        if left.get("dir") != "gone" or left.get("cron") != "gone":
            raise ProviderError(f"host {place.name}: could not remove node {node_id} "
                                f"(directory {left.get('dir')}, crontab line {left.get('cron')})")
        self._release(place)

    def _archive_logs(self, place: _Place, root: str, home: str) -> None:
        """Daemon logs outlive the node (as the local provider keeps them); the orphaned
        copy is what an agent that cleaned up by itself left. A copy that fails for a
        reason other than the connection is logged, not fatal: the node goes anyway."""
        dest = self.settings.logs_dir / place.cluster_id / "nodes" / place.node_id
        for source in (f"{root}/logs", layout.orphaned_logs(home, place.cluster_id, place.node_id)):
            try:
                self.pool.get_tree(place.target, source, dest)
            except HostUnreachable as exc:
                raise self._translate(place, exc) from exc
            except SshError as exc:
                log.warning("logs of node %s not copied from host %s: %s", place.node_id, place.name, exc)

    def _release(self, place: _Place) -> None:
        """The host is back in the pool: READY, or DRAINED when it was draining."""
        with self.store.session() as s:
            host = s.get(Host, place.host_id)
            if host is None or host.node_id not in (None, place.node_id):
                return  # already released and reserved again: not ours any more
            host.node_id, host.cluster_id = None, None
            host.last_seen_at = self.clock()
            after = {HostState.ALLOCATED.value: HostState.READY, HostState.DRAINING.value: HostState.DRAINED}
            new = after.get(host.status)
            if new is not None:
                HostState(host.status).check_transition(new)
                host.status, host.status_changed_at = new.value, self.clock()
            if (host.status_reason or "").startswith(("unreachable over SSH", "cleanup pending")):
                host.status_reason = None
        log.info("host %s released by node %s", place.name, place.node_id)

    def _unreserve_broken(self, node_id: str) -> None:
        with self.store.session() as s:
            node = s.get(Node, node_id)
            host = s.get(Host, node.host_id) if node is not None and node.host_id else None
            if host is not None and host.node_id == node_id and host.status == HostState.HOST_KEY_CHANGED.value:
                host.node_id, host.cluster_id = None, None

    # -- hosts left to clean ----------------------------------------------------------------------

    def pending_cleanups(self) -> list[str]:
        """TERMINATED nodes still holding their host's reservation: terminated while the
        host did not answer. ``terminate_node`` cleans and releases each one."""
        with self.store.session() as s:
            return list(s.scalars(
                select(Host.node_id).join(Node, Node.id == Host.node_id)
                .where(Node.status == NodeState.TERMINATED.value,
                       Host.status.not_in([HostState.REMOVED.value, HostState.HOST_KEY_CHANGED.value]))))

    def close(self) -> None:
        self.pool.close_all()
