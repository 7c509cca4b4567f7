"""The provider contract, after SkyPilot's per-cloud ``instance.py``: a handful of
idempotent calls keyed by node id. The reconciler calls them; it never knows how a
provider makes a node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol


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
