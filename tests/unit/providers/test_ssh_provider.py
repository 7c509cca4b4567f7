"""The ssh provider's command sequencing and idempotency, over a fake transport that runs
its scripts in a local bash (``sshfakes``): create, query, kill -9 and restart, stop,
terminate and release, and the errors a host off the network or with a changed key gives."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from corral.control import clusters
from corral.control.context import ControlPlane
from corral.domain.states import HostState, NodeState
from corral.hosts import agent_install, layout
from corral.providers.base import Liveness, NodeBroken, NodeRequest, NodeUnreachable, ProviderError
from corral.providers.ssh import SshProvider
from corral.providers.ssh_transport import RemoteResult
from corral.store.models import Host, Node
from tests.unit.helpers import make_spec
from tests.unit.providers import sshfakes

TOKEN = "agent-token-that-must-not-leak"
ADVERTISED = "http://198.18.0.1:7420"


@dataclass
class Lab:
    provider: SshProvider
    pool: sshfakes.LocalShellPool
    cp: ControlPlane
    cluster_id: str
    nodes: list[str]
    hosts: list[str]
    home: Path

    def request(self, node_id: str) -> NodeRequest:
        return NodeRequest(node_id=node_id, cluster_id=self.cluster_id, role="CORE", instance_type="local.small",
                           agent_token=TOKEN, control_url=self.cp.settings.advertise_url)

    def node_dir(self, node_id: str) -> Path:
        return Path(layout.node_dir(str(self.home), self.cluster_id, node_id))

    def host(self, i: int) -> Host:
        with self.cp.store.session() as s:
            host = s.get(Host, self.hosts[i])
            assert host is not None
            return host

    def agent_pid(self, node_id: str) -> int:
        return int(json.loads((self.node_dir(node_id) / "run" / "agent.pid").read_text())["pid"])


@pytest.fixture
def lab(cp: ControlPlane, tmp_path: Path) -> Iterator[Lab]:
    home = tmp_path / "hosthome"
    home.mkdir()
    cp.settings = dataclasses.replace(cp.settings, advertise_url=ADVERTISED)
    pool = sshfakes.LocalShellPool(home, tmp_path / "bin")
    bundle = sshfakes.fake_bundle()
    provider = SshProvider(cp.settings, cp.store, pool, bundle=lambda settings: bundle)  # type: ignore[arg-type]
    cluster, _ = clusters.create_cluster(cp, make_spec())
    now = time.time()
    host_ids = []
    with cp.store.session() as s:
        nodes = [n for n in s.get(type(cluster), cluster.id).nodes]  # type: ignore[union-attr]
        for i, node in enumerate(nodes):
            host = Host(id=f"h-{i}{cluster.id[2:]}"[:16], name=f"h{i}", address=f"198.18.0.{i + 2}", port=22,
                        user="corral", labels={}, host_key="ssh-ed25519 AAAAfake", host_key_fingerprint="SHA256:aaa",
                        private_key=None, facts={}, checks=[], status=HostState.ALLOCATED.value,
                        target=HostState.READY.value, node_id=node.id, cluster_id=cluster.id,
                        created_at=now, status_changed_at=now)
            s.add(host)
            node.host_id, node.address = host.id, host.address
            host_ids.append(host.id)
        node_ids = [n.id for n in nodes]
    yield Lab(provider, pool, cp, cluster.id, node_ids, host_ids, home)
    for node_id in node_ids:
        sshfakes.kill_marked(node_id)


def _ready_env(lab: Lab) -> None:
    sshfakes.install_fake_env(Path(layout.agent_env(str(lab.home), sshfakes.fake_bundle().digest)))


def test_create_prepares_the_node_and_starts_a_detached_agent(lab: Lab) -> None:
    _ready_env(lab)
    node = lab.nodes[0]
    handle = lab.provider.create_node(lab.request(node))
    root = lab.node_dir(node)
    assert handle.address == "198.18.0.2" and handle.directory == str(root)
    assert handle.data["agent_pid"] == lab.agent_pid(node) and handle.data["reboot"] == "crontab"
    for sub in ("conf", "data", "logs", "run", "steps", "artifacts", "tmp"):
        assert (root / sub).is_dir()
    config = json.loads((root / "agent.json").read_text())
    assert config["control_url"] == ADVERTISED and config["address"] == "198.18.0.2"
    assert config["runtime_dir"] == layout.runtime_cache(str(lab.home)) and config["directory"] == str(root)
    assert config["self_clean"]["cron_tag"] == f"# corral-node {node}"
    token = root / "run" / "agent.token"
    assert token.read_text() == TOKEN and stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "run").stat().st_mode) == 0o700
    assert (str(token), 0o600) in lab.pool.puts
    assert all(TOKEN not in command for command in lab.pool.commands)  # never on a command line
    # The agent: its own session, only the login's environment and the node's markers.
    pid = handle.data["agent_pid"]
    assert os.getsid(pid) == pid
    environ = dict(item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if item)
    assert environ["CORRAL_NODE_ID"] == node and environ["CORRAL_CLUSTER_ID"] == lab.cluster_id
    assert environ["HOME"] == str(lab.home) and environ["CORRAL_RUNTIME_CACHE"] == layout.runtime_cache(str(lab.home))
    assert set(environ) <= {"HOME", "USER", "LOGNAME", "PATH", "LANG", "CORRAL_NODE_ID", "CORRAL_CLUSTER_ID",
                            "CORRAL_RUNTIME_CACHE", "JAVA_HOME", "PWD", "SHLVL", "_", "OLDPWD"}
    assert Path(f"/proc/{pid}/fd/0").resolve() == Path("/dev/null")
    assert Path(f"/proc/{pid}/fd/1").resolve() == root / "logs" / "agent.log"
    # The @reboot line runs the same start script.
    lines = lab.pool.cron_table.read_text().splitlines()
    assert lines == [f"@reboot /bin/sh {root}/run/agent-start.sh # corral-node {node}"]
    assert lab.provider.query_node(node) is Liveness.RUNNING


def test_create_again_is_the_same_node_with_one_agent(lab: Lab) -> None:
    _ready_env(lab)
    node = lab.nodes[0]
    first = lab.provider.create_node(lab.request(node))
    puts = len(lab.pool.puts)
    again = lab.provider.create_node(lab.request(node))
    assert again.data["agent_pid"] == first.data["agent_pid"]
    assert len(lab.pool.puts) == puts  # nothing rewritten under a running agent
    agents = [p for p in sshfakes.marker_pids(node) if "fake agent" not in Path(f"/proc/{p}/cmdline").read_text()]
    assert len([p for p in agents if Path(f"/proc/{p}/cmdline").read_bytes().startswith(b"/bin/bash")]) == 1
    assert len(lab.pool.cron_table.read_text().splitlines()) == 1  # the line is not doubled


def test_kill_9_of_the_agent_is_stopped_then_restarted(lab: Lab) -> None:
    _ready_env(lab)
    node = lab.nodes[0]
    first = lab.provider.create_node(lab.request(node))
    os.kill(first.data["agent_pid"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while lab.provider.query_node(node) is not Liveness.STOPPED and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lab.provider.query_node(node) is Liveness.STOPPED
    restarted = lab.provider.start_node(lab.request(node))
    assert restarted.data["agent_pid"] != first.data["agent_pid"]
    assert lab.provider.query_node(node) is Liveness.RUNNING


def test_leftovers_are_every_process_with_the_marker(lab: Lab) -> None:
    _ready_env(lab)
    node = lab.nodes[0]
    handle = lab.provider.create_node(lab.request(node))
    found = lab.provider.leftover_processes(node)
    assert handle.data["agent_pid"] in found and len(found) == 2  # the agent and its child
    assert sorted(found) == sorted(sshfakes.marker_pids(node))


def test_terminate_leaves_the_host_clean_and_releases_it(lab: Lab) -> None:
    _ready_env(lab)
    node = lab.nodes[0]
    lab.provider.create_node(lab.request(node))
    (lab.node_dir(node) / "logs" / "datanode.log").write_text("datanode said things\n")
    lab.provider.terminate_node(node, timeout=5.0)
    assert sshfakes.marker_pids(node) == []  # the agent and the child it left behind
    assert not lab.node_dir(node).exists() and not lab.node_dir(node).parent.exists()
    assert lab.pool.cron_table.read_text().strip() == ""
    archived = lab.cp.settings.logs_dir / lab.cluster_id / "nodes" / node
    assert (archived / "datanode.log").read_text() == "datanode said things\n"
    assert "fake agent" in (archived / "agent.log").read_text()
    host = lab.host(0)
    assert host.status == HostState.READY.value and host.node_id is None and host.cluster_id is None
    # The runtime cache and the agent environment stay for the next cluster.
    assert Path(layout.agent_env(str(lab.home), sshfakes.fake_bundle().digest), ".corral-complete").exists()
    # Idempotent: a control plane killed mid-terminate calls it again.
    lab.provider.terminate_node(node, timeout=5.0)
    assert lab.host(0).status == HostState.READY.value


def test_terminate_keeps_other_nodes_crontab_lines(lab: Lab) -> None:
    _ready_env(lab)
    lab.pool.cron_table.write_text("0 3 * * * /usr/local/bin/backup\n")
    lab.provider.create_node(lab.request(lab.nodes[0]))
    lab.provider.create_node(lab.request(lab.nodes[1]))
    lab.provider.terminate_node(lab.nodes[0], timeout=5.0)
    lines = lab.pool.cron_table.read_text().splitlines()
    assert lines[0] == "0 3 * * * /usr/local/bin/backup"
    assert len(lines) == 2 and lines[1].endswith(f"# corral-node {lab.nodes[1]}")


def test_a_draining_host_is_drained_after_terminate(lab: Lab) -> None:
    _ready_env(lab)
    node = lab.nodes[1]
    lab.provider.create_node(lab.request(node))
    with lab.cp.store.session() as s:
        s.get(Host, lab.hosts[1]).status = HostState.DRAINING.value  # type: ignore[union-attr]
    lab.provider.terminate_node(node, timeout=5.0)
    assert lab.host(1).status == HostState.DRAINED.value and lab.host(1).node_id is None


def test_stop_keeps_the_directory(lab: Lab) -> None:
    _ready_env(lab)
    node = lab.nodes[0]
    lab.provider.create_node(lab.request(node))
    lab.provider.stop_node(node, timeout=5.0)
    assert sshfakes.marker_pids(node) == []
    assert (lab.node_dir(node) / "agent.json").exists()
    assert lab.provider.query_node(node) is Liveness.STOPPED
    assert lab.host(0).status == HostState.ALLOCATED.value


def test_an_unreachable_host_raises_node_unreachable_and_says_so(lab: Lab) -> None:
    _ready_env(lab)
    node = lab.nodes[0]
    lab.provider.create_node(lab.request(node))
    lab.pool.fail = sshfakes.unreachable()
    with pytest.raises(NodeUnreachable) as caught:
        lab.provider.query_node(node)
    assert caught.value.subject == "host h0 (198.18.0.2) unreachable over SSH"
    assert "no SSH answer within 10 s" in caught.value.detail
    host = lab.host(0)
    assert host.status == HostState.ALLOCATED.value  # the reservation holds
    assert (host.status_reason or "").startswith("unreachable over SSH since ")
    with pytest.raises(NodeUnreachable):
        lab.provider.terminate_node(node, timeout=5.0)
    assert lab.host(0).node_id == node
    # Terminated meanwhile: the host is a pending cleanup until it answers.
    with lab.cp.store.session() as s:
        s.get(Node, node).status = NodeState.TERMINATED.value  # type: ignore[union-attr]
    assert lab.provider.pending_cleanups() == [node]
    lab.pool.fail = None
    lab.provider.terminate_node(node, timeout=5.0)
    assert lab.provider.pending_cleanups() == []
    host = lab.host(0)
    assert host.status == HostState.READY.value and host.status_reason is None and sshfakes.marker_pids(node) == []


def test_a_changed_host_key_marks_the_host_and_is_never_tried_again(lab: Lab) -> None:
    node = lab.nodes[0]
    lab.pool.fail = sshfakes.key_changed()
    with pytest.raises(NodeBroken, match="the host key changed"):
        lab.provider.create_node(lab.request(node))
    host = lab.host(0)
    assert host.status == HostState.HOST_KEY_CHANGED.value
    assert "host key changed" in (host.status_reason or "") and "remove and add it again" in (host.status_reason or "")
    lab.pool.fail = None
    calls = len(lab.pool.commands)
    with pytest.raises(NodeBroken):
        lab.provider.query_node(node)
    assert len(lab.pool.commands) == calls  # not even connected
    # Terminated: nothing can be cleaned; the reservation ends so the host can be re-added.
    with pytest.raises(NodeBroken, match="may remain on it"):
        lab.provider.terminate_node(node, timeout=1.0)
    assert lab.host(0).node_id is None and lab.host(0).status == HostState.HOST_KEY_CHANGED.value
    assert len(lab.pool.commands) == calls


def test_a_failed_command_carries_its_stderr(lab: Lab) -> None:
    _ready_env(lab)
    lab.pool.intercept["mkdir -p"] = lambda command, stdin: (_ for _ in ()).throw(  # type: ignore[assignment]
        __import__("corral.providers.ssh_transport", fromlist=["x"]).RemoteCommandFailed(
            "corral@198.18.0.2:22", command, 1, "mkdir: cannot create directory: No space left on device"))
    with pytest.raises(ProviderError, match="No space left on device"):
        lab.provider.create_node(lab.request(lab.nodes[0]))


def test_the_agent_environment_is_installed_with_the_token_on_stdin(lab: Lab) -> None:
    def installer(command: str, stdin: bytes | None) -> RemoteResult:
        manifest = json.loads(Path(command.split()[-1].strip("'")).read_text())
        sshfakes.install_fake_env(Path(manifest["env"]))
        assert manifest["control_url"] == ADVERTISED
        assert manifest["wheels"][0]["name"] == "corral-0.1.0-py3-none-any.whl"
        assert manifest["wheel_cache"] == layout.wheel_cache(str(lab.home))
        return RemoteResult(0, b'{"installed": true, "fetched_bytes": 1}\n', b"")

    lab.pool.intercept["agent_install.py"] = installer
    node = lab.nodes[0]
    lab.provider.create_node(lab.request(node))
    at = next(i for i, c in enumerate(lab.pool.commands) if "agent_install.py" in c)
    assert lab.pool.stdins[at] == TOKEN.encode() + b"\n"
    assert TOKEN not in lab.pool.commands[at]
    helpers = Path(layout.base(str(lab.home))) / "agent"
    assert "def install(" in (helpers / "agent_install.py").read_text()
    assert all((helpers / name).read_bytes() == data for name, data in agent_install.files().items())
    # A second node on a host with the environment does not install again.
    lab.provider.terminate_node(node, timeout=5.0)
    with lab.cp.store.session() as s:
        s.get(Host, lab.hosts[2]).node_id = None  # type: ignore[union-attr]
    with lab.cp.store.session() as s:
        host = s.get(Host, lab.hosts[0])
        assert host is not None
        host.status, host.node_id = HostState.ALLOCATED.value, lab.nodes[2]
        s.get(Node, lab.nodes[2]).host_id = host.id  # type: ignore[union-attr]
    before = sum("agent_install.py" in c for c in lab.pool.commands)
    lab.provider.create_node(lab.request(lab.nodes[2]))
    assert sum("agent_install.py" in c for c in lab.pool.commands) == before


def test_a_host_reserved_for_another_node_is_refused(lab: Lab) -> None:
    _ready_env(lab)
    with lab.cp.store.session() as s:
        s.get(Host, lab.hosts[0]).node_id = "n-someone"  # type: ignore[union-attr]
    with pytest.raises(ProviderError, match="reserved for node"):
        lab.provider.create_node(lab.request(lab.nodes[0]))


def test_a_node_without_a_host_is_missing_and_terminates_as_a_no_op(lab: Lab) -> None:
    with lab.cp.store.session() as s:
        s.get(Node, lab.nodes[0]).host_id = None  # type: ignore[union-attr]
    assert lab.provider.query_node(lab.nodes[0]) is Liveness.MISSING
    lab.provider.terminate_node(lab.nodes[0], timeout=1.0)
    assert lab.pool.commands == []


def test_without_an_advertised_url_nothing_is_created(lab: Lab) -> None:
    lab.provider.settings = dataclasses.replace(lab.provider.settings, advertise_url=None)
    with pytest.raises(ProviderError, match="set CORRAL_ADVERTISE_URL"):
        lab.provider.create_node(lab.request(lab.nodes[0]))
    assert lab.pool.commands == []
