"""The ssh provider on a real sshd with a real agent: the host builds the agent's
environment from the real agent bundle (fetched over HTTP with the agent token), the
agent starts detached and outlives the SSH session, a kill -9 is repaired by the
reconciler over SSH, a host whose SSH is gone is unreachable (LOST), terminate leaves the
host clean and released, and an agent told its node is gone cleans up by itself.

The agents talk to a stand-in for the control plane's agent API (``AgentApi``: the
repository route, plans that never come, acknowledged reports), so a node runs without a
cluster's daemons; the real control plane's side is in the unit tests. The host is this
machine through a loopback sshd (``tests/sshd.py``): as root, whose crontab is saved
before and put back after.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from corral.control import clusters
from corral.control.context import ControlPlane
from corral.domain.states import ClusterState, HostState, NodeState
from corral.hosts import layout
from corral.providers.base import Liveness, NodeRequest, NodeUnreachable
from corral.providers.ssh import SshProvider
from corral.providers.ssh_transport import SshPool
from corral.reconcile import clusters as reconcile_clusters
from corral.runtime import wheels
from corral.runtime.repository import Bundle, agent_bundle
from corral.store.models import Cluster, Event, Host, Node
from tests.hostlab_plane import wait_until
from tests.sshd import Sshd
from tests.unit.helpers import make_control_plane, make_spec

pytestmark = pytest.mark.integration
TOKEN_FIELD = "agent_token"


class AgentApi(http.server.ThreadingHTTPServer):
    """What an agent calls: the repository (bundle artifacts by sha256, bearer token), its
    plan (204: nothing yet) and reports (acknowledged). ``gone`` answers 410 for a node."""

    def __init__(self, bundle: Bundle, token: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = {a.sha256: a.path for a in bundle.artifacts}
        self.token = token
        self.reports: dict[str, list[dict[str, Any]]] = {}
        self.fetched: list[str] = []
        self.gone: set[str] = set()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def reported(self, node_id: str) -> int:
        return len(self.reports.get(node_id, []))


class _Handler(http.server.BaseHTTPRequestHandler):
    server: AgentApi

    def _reply(self, status: int, body: bytes = b"", kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") != f"Bearer {self.server.token}":
            self._reply(401, b'{"detail": "bad agent token"}')
            return False
        return True

    def _node(self) -> str:
        return self.path.split("/")[4]

    def do_GET(self) -> None:  # noqa: N802
        if not self._authorized():
            return
        parts = self.path.split("?")[0].split("/")
        if self.path.startswith("/agent/v1/repository/"):
            path = self.server.files.get(parts[-1])
            if path is None:
                return self._reply(404)
            self.server.fetched.append(parts[-1])
            return self._reply(200, path.read_bytes(), "application/octet-stream")
        if self.path.startswith("/agent/v1/nodes/") and parts[-1] == "plan":
            if self._node() in self.server.gone:
                return self._reply(410, b'{"detail": "node is terminated"}')
            time.sleep(1.0)
            return self._reply(204)
        self._reply(404)

    def do_POST(self) -> None:  # noqa: N802
        if not self._authorized():
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path.startswith("/agent/v1/nodes/") and self.path.endswith("/report"):
            node = self._node()
            if node in self.server.gone:
                return self._reply(410, b'{"detail": "node is terminated"}')
            self.server.reports.setdefault(node, []).append(body)
            last = max([0, *(e["seq"] for e in body.get("events", []))])
            return self._reply(200, json.dumps({"plan_version": 0, "last_event_seq": last}).encode())
        self._reply(404)

    def log_message(self, *args: object) -> None:
        pass


@dataclasses.dataclass
class Setup:
    cp: ControlPlane
    provider: SshProvider
    pool: SshPool
    sshd: Sshd
    api: AgentApi
    cluster_id: str
    nodes: list[str]
    host_id: str

    def request(self, node_id: str) -> NodeRequest:
        with self.cp.store.session() as s:
            token = s.get(Cluster, self.cluster_id).agent_token  # type: ignore[union-attr]
        return NodeRequest(node_id=node_id, cluster_id=self.cluster_id, role="CORE", instance_type="local.small",
                           agent_token=token, control_url=self.api.url)

    def reserve(self, node_id: str) -> None:
        """The host for ``node_id`` (what selection does at create)."""
        with self.cp.store.session() as s:
            host = s.get(Host, self.host_id)
            assert host is not None and host.node_id is None
            host.node_id, host.cluster_id, host.status = node_id, self.cluster_id, HostState.ALLOCATED.value
            node = s.get(Node, node_id)
            assert node is not None
            node.host_id, node.address = host.id, host.address

    def host(self) -> Host:
        with self.cp.store.session() as s:
            host = s.get(Host, self.host_id)
            assert host is not None
            return host

    def node_dir(self, node_id: str) -> Path:
        return Path(layout.node_dir(str(self.sshd.home), self.cluster_id, node_id))


def marker_pids(node_id: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"CORRAL_NODE_ID={node_id}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def wait_for(what: str, check: Any, timeout: float = 30.0) -> Any:
    return wait_until(check, timeout, what)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    saved = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    root = tmp_path_factory.mktemp("sshprov")
    cp = make_control_plane(root / "home", f"sqlite:///{root / 'corral.db'}")
    try:
        bundle = agent_bundle(cp.settings)
    except wheels.WheelhouseMissing:  # set-up fetches them; a fresh wheel cache has none yet
        wheels.fetch_dependencies()
        bundle = agent_bundle(cp.settings)
    sshd = Sshd(root / "sshd")
    sshd.start()
    cluster, _ = clusters.create_cluster(cp, make_spec())
    api = AgentApi(bundle, cluster.agent_token)
    cp.settings = dataclasses.replace(cp.settings, advertise_url=api.url)
    pool = SshPool(connect_deadline=10.0)
    provider = SshProvider(cp.settings, cp.store, pool, bundle=lambda settings: bundle)
    cp.providers["local"] = provider  # the cluster rows say "local": the reconciler asks this one
    now = time.time()
    with cp.store.session() as s:
        host = Host(id="h-sshprov1", name="lo1", address=sshd.address, port=sshd.port, user="root", labels={},
                    host_key=sshd.host_key_line, host_key_fingerprint=None, private_key=sshd.client_key, facts={},
                    checks=[], status=HostState.READY.value, target=HostState.READY.value, created_at=now,
                    status_changed_at=now)
        s.add(host)
    with cp.store.session() as s:
        nodes = [n.id for n in clusters.load_cluster(s, cluster.id).nodes]
    yield Setup(cp, provider, pool, sshd, api, cluster.id, nodes, "h-sshprov1")
    for node_id in nodes:
        for pid in marker_pids(node_id):
            os.kill(pid, signal.SIGKILL)
    pool.close_all()
    sshd.stop()
    api.shutdown()
    if saved.returncode == 0:
        subprocess.run(["crontab", "-"], input=saved.stdout, text=True, check=True)
    else:
        subprocess.run(["crontab", "-r"], capture_output=True)
    cp.store.dispose()


def test_a_node_on_a_host_lives_is_repaired_and_leaves_it_clean(setup: Setup) -> None:
    node = setup.nodes[0]
    setup.reserve(node)
    handle = setup.provider.create_node(setup.request(node))
    root = setup.node_dir(node)
    assert handle.address == setup.sshd.address and handle.directory == str(root)
    # The environment was built from the bundle, each wheel fetched once with the token.
    env = Path(layout.agent_env(str(setup.sshd.home), setup.provider._bundle_now().digest))
    assert (env / ".corral-complete").exists() and (env / "bin" / "python").exists()
    assert sorted(setup.api.fetched) == sorted(a.sha256 for a in setup.provider._bundle_now().artifacts)
    wait_for("the agent's first report", lambda: setup.api.reported(node))
    assert oct((root / "run" / "agent.token").stat().st_mode & 0o777) == "0o600"
    assert f"# corral-node {node}" in subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout

    # It outlives the SSH session: no connection left, and it still reports.
    setup.pool.close_all()
    seen = setup.api.reported(node)
    wait_for("reports after the SSH session ended", lambda: setup.api.reported(node) > seen + 1, timeout=15)
    assert setup.provider.query_node(node) is Liveness.RUNNING
    assert handle.data["agent_pid"] in setup.provider.leftover_processes(node)

    # kill -9: the reconciler finds the agent silent and not running, and starts it again.
    os.kill(handle.data["agent_pid"], signal.SIGKILL)
    wait_for("the lock to be free", lambda: setup.provider.query_node(node) is Liveness.STOPPED, timeout=10)
    with setup.cp.store.session() as s:
        c = s.get(Cluster, setup.cluster_id)
        assert c is not None
        c.status, c.deadline_at = ClusterState.WAITING.value, None
        row = s.get(Node, node)
        assert row is not None
        row.status, row.last_heartbeat = NodeState.RUNNING.value, time.time() - 120
    reconciler = reconcile_clusters.ClusterReconciler(setup.cp, setup.cluster_id)
    reconciler._watch_agents(reconciler._load())
    with setup.cp.store.session() as s:
        restarted = [e for e in s.query(Event).filter_by(code="AGENT_RESTARTED", node_id=node)]
    assert restarted
    assert setup.provider.query_node(node) is Liveness.RUNNING
    seen = setup.api.reported(node)
    wait_for("reports from the restarted agent", lambda: setup.api.reported(node) > seen)

    # The host's SSH goes away: unreachable, typed; the agent itself keeps running.
    setup.sshd.stop()
    setup.pool.close_all()
    with pytest.raises(NodeUnreachable) as caught:
        setup.provider.query_node(node)
    assert caught.value.subject == f"host lo1 ({setup.sshd.address}) unreachable over SSH"
    assert setup.host().status == HostState.ALLOCATED.value
    setup.sshd.start()
    assert setup.provider.query_node(node) is Liveness.RUNNING
    assert setup.host().status_reason is None

    # Terminate: nothing of the node is left, its logs are here, the host is READY.
    setup.provider.terminate_node(node, timeout=15.0)
    assert marker_pids(node) == []
    assert not root.exists() and not root.parent.exists()
    assert f"corral-node {node}" not in subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout
    archived = setup.cp.settings.logs_dir / setup.cluster_id / "nodes" / node / "agent.log"
    assert "corral.agent" in archived.read_text() or archived.stat().st_size > 0
    host = setup.host()
    assert host.status == HostState.READY.value and host.node_id is None
    assert env.exists()  # the agent environment stays for the next node


def test_an_agent_told_its_node_is_gone_cleans_up_and_the_host_is_released(setup: Setup) -> None:
    node = setup.nodes[1]
    setup.reserve(node)
    handle = setup.provider.create_node(setup.request(node))
    wait_for("the agent's first report", lambda: setup.api.reported(node))
    root = setup.node_dir(node)
    # Its cluster ended while the host was away: the node is TERMINATED, the host still
    # reserved for it (a pending cleanup); the agent hears 410 and cleans up itself.
    with setup.cp.store.session() as s:
        s.get(Node, node).status = NodeState.TERMINATED.value  # type: ignore[union-attr]
    assert setup.provider.pending_cleanups() == [node]
    setup.api.gone.add(node)
    wait_for("the agent to exit", lambda: not marker_pids(node), timeout=60)
    assert not root.exists()
    assert f"corral-node {node}" not in subprocess.run(["crontab", "-l"], capture_output=True, text=True).stdout
    orphaned = Path(layout.orphaned_logs(str(setup.sshd.home), setup.cluster_id, node))
    assert (orphaned / "agent.log").exists()
    # The cleanup sweep finds the host clean, takes the logs home, releases it.
    setup.provider.terminate_node(node, timeout=10.0)
    assert not orphaned.exists()
    assert (setup.cp.settings.logs_dir / setup.cluster_id / "nodes" / node / "agent.log").exists()
    assert setup.provider.pending_cleanups() == []
    assert setup.host().status == HostState.READY.value
    assert handle.data["agent_pid"] not in marker_pids(node)
