"""The local provider: every node is a loopback address (127.x.y.z) and a directory on
this machine, with its own agent process.

Addresses are leased in the store (``address_leases``, primary key = address), so one is
never handed out twice while in use, across control-plane restarts. Every process of a
node carries ``CORRAL_NODE_ID`` in its environment (agents pass their environment down to
daemons, executors and steps), which is how terminate finds all of them.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping

import psutil
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from corral import pidfile
from corral.domain.states import ClusterState, DecommissionState, NodeState
from corral.providers.base import Liveness, NodeHandle, NodeRequest
from corral.settings import Settings
from corral.store.db import Store
from corral.store.models import AddressLease, Cluster, Node

NODE_ENV_MARKER = "CORRAL_NODE_ID"
# Never passed to agents (and so to steps): the secret key decrypts every stored secret,
# a token is a user's, a database URL may hold a password.
CONTROL_PLANE_ONLY_ENV = frozenset({"CORRAL_DATABASE_URL", "CORRAL_HOME", "CORRAL_PORT", "CORRAL_HOST", "CORRAL_URL",
                                    "CORRAL_SECRET_KEY", "CORRAL_TOKEN", "CORRAL_AUTH",
                                    "CORRAL_ADVERTISE_URL"})


def agent_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The control plane's environment without its own settings and secrets: agents pass
    their environment to daemons and steps (a SHELL step may print it)."""
    return {k: v for k, v in environ.items() if k not in CONTROL_PLANE_ONLY_ENV}


NODE_SUBDIRS = ("conf", "data", "logs", "run", "steps", "artifacts", "tmp")


ENDED_STATES = (ClusterState.TERMINATED.value, ClusterState.TERMINATED_WITH_ERRORS.value)


def _remembered_addresses(s: Session) -> set[str]:
    """Addresses of released nodes a daemon may still count as live (``ClusterView.departed``):
    not handed out again until forgotten, as a cloud does not reuse a released address at once
    (a new DataNode there would end the old one's exclusion while the NameNode still sees it)."""
    rows = s.execute(select(Node.address, Node.provider_data).join(Cluster, Cluster.id == Node.cluster_id).where(
        Node.status == NodeState.TERMINATED.value, Node.decommission_state == DecommissionState.DECOMMISSIONED.value,
        Node.address.is_not(None), Cluster.status.not_in(ENDED_STATES)))
    return {address for address, data in rows if not (data or {}).get("forgotten_at")}


class LocalProvider:
    name = "local"
    shares_machine = True

    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # -- addresses -----------------------------------------------------------------------

    def _lease_address(self, node_id: str) -> str:
        for _ in range(20):
            with self.store.session() as s:
                held = s.scalar(select(AddressLease.address).where(AddressLease.holder == node_id))
                if held:
                    return held
                taken = set(s.scalars(select(AddressLease.address))) | _remembered_addresses(s)
            candidate = next((str(a) for a in self.settings.local_subnet.hosts()
                              if not str(a).endswith(".1") and str(a) not in taken), None)
            if candidate is None:
                raise RuntimeError(f"no free address left in {self.settings.local_subnet}")
            try:
                with self.store.session() as s:
                    s.add(AddressLease(address=candidate, holder=node_id, provider=self.name, created_at=time.time()))
                return candidate
            except IntegrityError:
                continue  # another allocation won the race; look again
        raise RuntimeError("could not lease an address after 20 attempts")

    def _release_address(self, node_id: str) -> None:
        with self.store.session() as s:
            lease = s.scalar(select(AddressLease).where(AddressLease.holder == node_id))
            if lease is not None:
                s.delete(lease)

    # -- directories and agent ------------------------------------------------------------

    def node_dir(self, cluster_id: str, node_id: str) -> Path:
        return self.settings.nodes_dir / cluster_id / node_id

    def _find_dir(self, node_id: str) -> Path | None:
        matches = list(self.settings.nodes_dir.glob(f"*/{node_id}"))
        return matches[0] if matches else None

    def _prepare(self, request: NodeRequest, address: str) -> Path:
        root = self.node_dir(request.cluster_id, request.node_id)
        for sub in NODE_SUBDIRS:
            (root / sub).mkdir(parents=True, exist_ok=True)
        config = {
            "node_id": request.node_id,
            "cluster_id": request.cluster_id,
            "address": address,
            "directory": str(root),
            "control_url": request.control_url,
            "runtime_dir": str(self.settings.runtime_dir),
        }
        (root / "agent.json").write_text(json.dumps(config, indent=2))
        token = root / "run" / "agent.token"
        token.touch(mode=0o600)
        token.write_text(request.agent_token)
        return root

    def _agent_alive(self, root: Path) -> bool:
        """An agent holds ``run/agent.lock`` for as long as it lives (see corral.agent)."""
        try:
            with open(root / "run" / "agent.lock", "a") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(lock, fcntl.LOCK_UN)
                return False
        except FileNotFoundError:
            return False

    def _agent_process(self, root: Path) -> psutil.Process | None:
        info = pidfile.read_live(root / "run" / "agent.pid")
        try:
            return psutil.Process(info["pid"]) if info else None
        except psutil.Error:
            return None

    def _spawn_agent(self, request: NodeRequest, root: Path, address: str) -> NodeHandle:
        env = agent_environment(os.environ)
        env.update({NODE_ENV_MARKER: request.node_id, "CORRAL_CLUSTER_ID": request.cluster_id})
        log = open(root / "logs" / "agent.log", "ab")
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "corral.agent", "--config", str(root / "agent.json")],
                cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the control plane's death and its signals
            )
        finally:
            log.close()
        self._children[request.node_id] = proc
        # The agent writes run/agent.pid itself once it holds the node's lock.
        return NodeHandle(request.node_id, address, str(root), {"agent_pid": proc.pid})

    # -- the provider contract -------------------------------------------------------------

    def create_node(self, request: NodeRequest) -> NodeHandle:
        address = self._lease_address(request.node_id)
        root = self.node_dir(request.cluster_id, request.node_id)
        if root.exists() and self._agent_alive(root):
            running = self._agent_process(root)
            return NodeHandle(request.node_id, address, str(root), {"agent_pid": running.pid if running else None})
        self._prepare(request, address)
        return self._spawn_agent(request, root, address)

    def start_node(self, request: NodeRequest) -> NodeHandle:
        return self.create_node(request)

    def query_node(self, node_id: str) -> Liveness:
        self._reap()
        root = self._find_dir(node_id)
        if root is None:
            return Liveness.MISSING
        return Liveness.RUNNING if self._agent_alive(root) else Liveness.STOPPED

    def leftover_processes(self, node_id: str) -> list[int]:
        self._reap()
        found = []
        for proc in psutil.process_iter(["pid", "status"]):
            if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
                continue
            try:
                if proc.environ().get(NODE_ENV_MARKER) == node_id:
                    found.append(proc.pid)
            except (psutil.Error, OSError):
                continue
        return found

    def stop_node(self, node_id: str, timeout: float) -> None:
        root = self._find_dir(node_id)
        agent = self._agent_process(root) if root else None
        if agent is not None:
            # The agent stops its daemons and steps on SIGTERM before it exits.
            agent.send_signal(signal.SIGTERM)
            try:
                agent.wait(timeout)
            except psutil.TimeoutExpired:
                pass
        # A few rounds: a process that was starting a child when the round began (a
        # launcher script, the agent's last log copy) leaves that child to the next one.
        for _ in range(3):
            leftovers = self.leftover_processes(node_id)
            if not leftovers:
                break
            self._kill(leftovers, grace=2.0)

    def terminate_node(self, node_id: str, timeout: float) -> None:
        self.stop_node(node_id, timeout)
        remaining = self.leftover_processes(node_id)
        if remaining:
            raise RuntimeError(f"processes of node {node_id} survived SIGKILL: {remaining}")
        root = self._find_dir(node_id)
        if root is not None:
            self._archive_logs(root)
            shutil.rmtree(root, ignore_errors=True)
            try:
                root.parent.rmdir()  # the cluster's folder, once its last node is gone
            except OSError:
                pass
        self._release_address(node_id)
        self._children.pop(node_id, None)

    # -- helpers ---------------------------------------------------------------------------

    def _archive_logs(self, root: Path) -> None:
        """Daemon logs outlive the node, as EMR keeps them in its log bucket."""
        dest = self.settings.logs_dir / root.parent.name / "nodes" / root.name
        if (root / "logs").is_dir():
            shutil.copytree(root / "logs", dest, dirs_exist_ok=True)

    def _kill(self, pids: list[int], grace: float) -> None:
        procs = []
        for pid in pids:
            try:
                proc = psutil.Process(pid)
                proc.terminate()
                procs.append(proc)
            except psutil.Error:
                continue
        _, alive = psutil.wait_procs(procs, timeout=grace)
        for proc in alive:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=5)
        self._reap()

    def _reap(self) -> None:
        """Collect exit statuses of agents this process started, so none stays a zombie."""
        for node_id, proc in list(self._children.items()):
            if proc.poll() is not None:
                del self._children[node_id]
