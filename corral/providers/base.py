"""The provider contract, after SkyPilot's per-cloud ``instance.py``: a handful of
idempotent calls keyed by node id. The reconciler calls them; it never knows how a
provider makes a node.

Errors: any call may raise ``ProviderError`` (retried with backoff), ``NodeUnreachable``
(the node's machine does not answer: the node is LOST, see ``NodeState.LOST``) or
``NodeBroken`` (the node cannot be used again: it fails with the reason).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol


class ProviderError(Exception):
    """A provider call failed; the message says what and where (with a remote command's
    stderr tail). The reconciler retries it with backoff."""


class NodeUnreachable(ProviderError):
    """The machine the node runs on does not answer (network down, host down, sshd gone):
    nothing is known about the node, which may well still run. Transient by nature: the
    reconciler marks the node LOST (``nodes.status_reason``) and asks again with backoff.

    ``subject`` names the machine as people know it (``host h2 (198.18.3.12) unreachable
    over SSH``), ``detail`` is the underlying error; the reconciler adds since when."""

    def __init__(self, subject: str, detail: str):
        self.subject, self.detail = subject, detail
        super().__init__(f"{subject}: {detail}")


class NodeBroken(ProviderError):
    """The node can never be used again as it is (e.g. its host presented another SSH host
    key: Corral does not talk to it). Not retried: the node fails with this reason."""


class Liveness(str, Enum):
    RUNNING = "RUNNING"  # the node exists and its agent process runs
    STOPPED = "STOPPED"  # the node exists but its agent does not run
    MISSING = "MISSING"  # nothing of the node exists


@dataclass(frozen=True)
class NodeRequest:
    node_id: str
    cluster_id: str
    role: str
    instance_type: str
    agent_token: str  # secret handed to the agent; never logged
    control_url: str  # where the agent reaches the control plane


@dataclass(frozen=True)
class NodeHandle:
    node_id: str
    address: str
    directory: str
    data: dict[str, Any] = field(default_factory=dict)  # provider-private, stored with the node


class NodeProvider(Protocol):
    name: str
    # Whether its nodes share one machine (the local provider): each agent then measures
    # its node's own processes and directory, not the machine (``MetricsSpec.scope``).
    shares_machine: bool

    def create_node(self, request: NodeRequest) -> NodeHandle:
        """Make the node and start its agent. Calling it again for the same node id
        returns the same node (never a second one)."""

    def start_node(self, request: NodeRequest) -> NodeHandle:
        """Start the agent of an existing node whose agent is not running."""

    def stop_node(self, node_id: str, timeout: float) -> None:
        """Stop the node's agent and everything it started; keep the node's disk."""

    def terminate_node(self, node_id: str, timeout: float) -> None:
        """Stop everything of the node and release it (address, disk). Idempotent."""

    def query_node(self, node_id: str) -> Liveness:
        """Whether the node exists and its agent runs."""

    def leftover_processes(self, node_id: str) -> list[int]:
        """Pids of processes still running for the node (agent, daemons, steps)."""


class CleaningProvider(NodeProvider, Protocol):
    """A provider whose machines outlive their nodes (the ssh provider's hosts). A node
    terminated while its machine was unreachable is recorded TERMINATED at once; the
    machine stays reserved until the provider has cleaned it. The reconcile loop asks for
    such nodes now and then and calls ``terminate_node`` for each again."""

    def pending_cleanups(self) -> list[str]:
        """Ids of TERMINATED nodes whose machines still have to be cleaned and released."""


def pending_cleanups(provider: NodeProvider) -> list[str]:
    """``provider.pending_cleanups()`` where it has one (providers that keep nothing after
    ``terminate_node``, like the local one, have none)."""
    method = getattr(provider, "pending_cleanups", None)
    return list(method()) if callable(method) else []
