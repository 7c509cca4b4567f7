"""Lifecycle states of clusters, nodes and steps, with their allowed transitions.

Names follow AWS EMR where users know them (cluster and step states, ActionOnFailure).
Every non-terminal state has a way out: the reconciler applies a deadline to each one
(see ``corral.reconcile.deadlines``), so nothing can stay in it forever.
"""

from __future__ import annotations

from enum import Enum


class InvalidTransition(Exception):
    pass


class _State(str, Enum):
    """A state enum whose members know their successors."""

    @classmethod
    def _transitions(cls) -> dict[str, frozenset[str]]:  # pragma: no cover - overridden
        raise NotImplementedError

    def is_terminal(self) -> bool:
        return not self._transitions()[self.value]

    def can_become(self, other: "_State") -> bool:
        return other.value in self._transitions()[self.value]

    def check_transition(self, other: "_State") -> None:
        if self is not other and not self.can_become(other):
            raise InvalidTransition(f"{type(self).__name__} {self.value} -> {other.value} is not allowed")


class ClusterState(_State):
    STARTING = "STARTING"  # nodes are being provisioned, agents are starting
    BOOTSTRAPPING = "BOOTSTRAPPING"  # runtime deploy, configuration, bootstrap actions, daemons
    RUNNING = "RUNNING"  # up, and a step is running
    WAITING = "WAITING"  # up and idle
    TERMINATING = "TERMINATING"  # stopping daemons and releasing nodes
    TERMINATED = "TERMINATED"  # ended on request or after the last step of a transient cluster
    TERMINATED_WITH_ERRORS = "TERMINATED_WITH_ERRORS"  # ended by a failure

    @classmethod
    def _transitions(cls) -> dict[str, frozenset[str]]:
        return _CLUSTER_TRANSITIONS

    def is_up(self) -> bool:
        return self in (ClusterState.RUNNING, ClusterState.WAITING)


_CLUSTER_TRANSITIONS: dict[str, frozenset[str]] = {
    "STARTING": frozenset({"BOOTSTRAPPING", "TERMINATING"}),
    "BOOTSTRAPPING": frozenset({"WAITING", "RUNNING", "TERMINATING"}),
    "RUNNING": frozenset({"WAITING", "TERMINATING"}),
    "WAITING": frozenset({"RUNNING", "TERMINATING"}),
    "TERMINATING": frozenset({"TERMINATED", "TERMINATED_WITH_ERRORS"}),
    "TERMINATED": frozenset(),
    "TERMINATED_WITH_ERRORS": frozenset(),
}


class ClusterTarget(str, Enum):
    """What the user (or autoscaling, later) wants; the reconciler moves status toward it."""

    ACTIVE = "ACTIVE"
    TERMINATED = "TERMINATED"


class NodeState(_State):
    REQUESTED = "REQUESTED"  # row exists, the provider has not been asked yet
    PROVISIONING = "PROVISIONING"  # the provider created the node and started its agent
    BOOTSTRAPPING = "BOOTSTRAPPING"  # the agent registered; deploying, configuring, bootstrap actions
    STARTING = "STARTING"  # daemons are starting
    RUNNING = "RUNNING"  # all daemons of the node are healthy
    # Its agent stopped reporting and its host cannot be reached (YARN's term for a silent
    # NodeManager). ``nodes.status_reason`` says why, ``lost_at`` since when; the node goes
    # back to STARTING/RUNNING when its agent re-attaches. Resize, node replacement and
    # monitoring read this one notion of a node's health.
    LOST = "LOST"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"

    @classmethod
    def _transitions(cls) -> dict[str, frozenset[str]]:
        return _NODE_TRANSITIONS


_NODE_TRANSITIONS: dict[str, frozenset[str]] = {
    "REQUESTED": frozenset({"PROVISIONING", "TERMINATING", "TERMINATED"}),
    "PROVISIONING": frozenset({"BOOTSTRAPPING", "STARTING", "RUNNING", "LOST", "TERMINATING"}),
    "BOOTSTRAPPING": frozenset({"STARTING", "RUNNING", "LOST", "TERMINATING"}),
    "STARTING": frozenset({"RUNNING", "LOST", "TERMINATING"}),
    "RUNNING": frozenset({"STARTING", "LOST", "TERMINATING"}),
    "LOST": frozenset({"BOOTSTRAPPING", "STARTING", "RUNNING", "TERMINATING"}),
    "TERMINATING": frozenset({"TERMINATED"}),
    "TERMINATED": frozenset(),
}


class NodeTarget(str, Enum):
    RUNNING = "RUNNING"
    TERMINATED = "TERMINATED"


class GroupState(_State):
    """A node group's lifecycle (EMR's instance group states, narrowed to Corral's).

    RUNNING: its live nodes match its target count. RESIZING: the reconciler is adding
    nodes or decommissioning leavers (a new target supersedes the old one: the group stays
    RESIZING toward the newest). TERMINATING: a group being removed, scaled in to zero
    gracefully first; TERMINATED once its last node is released. Groups of an ended
    cluster keep the status they had."""

    RUNNING = "RUNNING"
    RESIZING = "RESIZING"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"

    @classmethod
    def _transitions(cls) -> dict[str, frozenset[str]]:
        return _GROUP_TRANSITIONS


_GROUP_TRANSITIONS: dict[str, frozenset[str]] = {
    "RUNNING": frozenset({"RESIZING", "TERMINATING"}),
    "RESIZING": frozenset({"RUNNING", "TERMINATING"}),
    "TERMINATING": frozenset({"TERMINATED"}),
    "TERMINATED": frozenset(),
}


class DecommissionState(_State):
    """A leaving node's sub-state while its status stays RUNNING (``nodes.decommission_state``).

    DECOMMISSIONING: in the ResourceManager's and (CORE) the NameNode's exclude files;
    YARN drains its containers and applications (up to the timeout), HDFS re-replicates
    its blocks. DECOMMISSIONED: YARN and HDFS are done with it; the node is stopped and
    released next. A new target that supersedes the shrink returns a DECOMMISSIONING node
    to service (the sub-state is cleared: recommissioned)."""

    DECOMMISSIONING = "DECOMMISSIONING"
    DECOMMISSIONED = "DECOMMISSIONED"

    @classmethod
    def _transitions(cls) -> dict[str, frozenset[str]]:
        return {"DECOMMISSIONING": frozenset({"DECOMMISSIONED"}), "DECOMMISSIONED": frozenset()}


class HostState(_State):
    """A registered host's lifecycle (Ambari's host states, narrowed to what Corral does).

    ``host add`` creates it CHECKING; the check ends READY, FAILED_CHECK (something it
    needs is missing; ``hosts.checks`` names the fix), UNREACHABLE (SSH did not answer)
    or HOST_KEY_CHANGED (the key differs from the pinned one: never accepted silently;
    the user removes and re-adds the host). A READY host is reserved for one node at a
    time (ALLOCATED) and returns to READY once the node is terminated and the host is
    clean. ``drain`` takes it out of selection: DRAINING while a node still runs there,
    then DRAINED. ``remove`` ends it (REMOVED), refused while a node runs there; ``remove
    --force`` also ends an ALLOCATED or DRAINING host whose node's cluster has ended.
    """

    CHECKING = "CHECKING"
    READY = "READY"
    FAILED_CHECK = "FAILED_CHECK"
    UNREACHABLE = "UNREACHABLE"
    HOST_KEY_CHANGED = "HOST_KEY_CHANGED"
    ALLOCATED = "ALLOCATED"
    DRAINING = "DRAINING"
    DRAINED = "DRAINED"
    REMOVED = "REMOVED"

    @classmethod
    def _transitions(cls) -> dict[str, frozenset[str]]:
        return _HOST_TRANSITIONS

    def selectable(self) -> bool:
        return self is HostState.READY


_HOST_TRANSITIONS: dict[str, frozenset[str]] = {
    "CHECKING": frozenset({"READY", "FAILED_CHECK", "UNREACHABLE", "HOST_KEY_CHANGED", "DRAINED", "REMOVED"}),
    "READY": frozenset({"CHECKING", "ALLOCATED", "UNREACHABLE", "HOST_KEY_CHANGED", "DRAINED", "REMOVED"}),
    "FAILED_CHECK": frozenset({"CHECKING", "DRAINED", "REMOVED"}),
    "UNREACHABLE": frozenset({"CHECKING", "READY", "HOST_KEY_CHANGED", "DRAINED", "REMOVED"}),
    "HOST_KEY_CHANGED": frozenset({"REMOVED"}),
    # An allocated host that stops answering stays ALLOCATED (its node goes LOST): the
    # reservation holds until the node is terminated and the host cleaned. REMOVED only
    # by `host remove --force`, once that node's cluster has ended (corral.control.hosts).
    "ALLOCATED": frozenset({"READY", "DRAINING", "HOST_KEY_CHANGED", "REMOVED"}),
    "DRAINING": frozenset({"DRAINED", "REMOVED"}),
    "DRAINED": frozenset({"CHECKING", "REMOVED"}),
    "REMOVED": frozenset(),
}


class StepState(_State):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    CANCEL_PENDING = "CANCEL_PENDING"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    INTERRUPTED = "INTERRUPTED"  # the cluster or the master node went away while it ran

    @classmethod
    def _transitions(cls) -> dict[str, frozenset[str]]:
        return _STEP_TRANSITIONS


_STEP_TRANSITIONS: dict[str, frozenset[str]] = {
    "PENDING": frozenset({"RUNNING", "CANCEL_PENDING", "CANCELLED", "COMPLETED", "FAILED", "INTERRUPTED"}),
    "RUNNING": frozenset({"CANCEL_PENDING", "COMPLETED", "FAILED", "INTERRUPTED"}),
    "CANCEL_PENDING": frozenset({"CANCELLED", "COMPLETED", "FAILED", "INTERRUPTED"}),
    "COMPLETED": frozenset(),
    "CANCELLED": frozenset(),
    "FAILED": frozenset(),
    "INTERRUPTED": frozenset(),
}


class StepFailureCode(str, Enum):
    """Why a FAILED step failed, when Corral (not the step's program) decided it."""

    TIMEOUT = "TIMEOUT"  # it ran longer than its ``timeout`` and was cancelled


class ActionOnFailure(str, Enum):
    CONTINUE = "CONTINUE"  # go on with the next step
    CANCEL_AND_WAIT = "CANCEL_AND_WAIT"  # cancel the steps queued behind it, keep the cluster
    TERMINATE_CLUSTER = "TERMINATE_CLUSTER"  # cancel the queue and terminate with errors


class StepType(str, Enum):
    SPARK = "SPARK"
    HADOOP_JAR = "HADOOP_JAR"
    STREAMING = "STREAMING"
    SPARK_SQL = "SPARK_SQL"
    HIVE = "HIVE"
    SHELL = "SHELL"
    DATA_IMPORT = "DATA_IMPORT"  # object storage / a database -> HDFS or a Hive table
    DATA_EXPORT = "DATA_EXPORT"  # HDFS or a Hive table -> object storage / a database


class NodeRole(str, Enum):
    MASTER = "MASTER"
    CORE = "CORE"
    TASK = "TASK"


class OperationState(_State):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @classmethod
    def _transitions(cls) -> dict[str, frozenset[str]]:
        return {"RUNNING": frozenset({"SUCCEEDED", "FAILED"}), "SUCCEEDED": frozenset(), "FAILED": frozenset()}


class AlertState(_State):
    """An alert's lifecycle (``corral.alerts``; Prometheus' alerting-rule states, with
    RESOLVED kept as a row rather than dropped).

    PENDING: a metric rule's condition holds but not yet for its ``for`` duration.
    FIRING: it held that long (at once for ``for`` 0, and for an event rule's match),
    receivers are notified. RESOLVED: the condition no longer holds (receivers of a FIRING
    alert are notified; a PENDING one that clears was never announced, so nothing is sent),
    the rule was disabled, or its cluster ended. An event rule's alert stays FIRING: it
    reports something that happened, which cannot stop holding. A new breach after
    RESOLVED is a new alert."""

    PENDING = "PENDING"
    FIRING = "FIRING"
    RESOLVED = "RESOLVED"

    @classmethod
    def _transitions(cls) -> dict[str, frozenset[str]]:
        return _ALERT_TRANSITIONS


_ALERT_TRANSITIONS: dict[str, frozenset[str]] = {
    "PENDING": frozenset({"FIRING", "RESOLVED"}),
    "FIRING": frozenset({"RESOLVED"}),
    "RESOLVED": frozenset(),
}


class StateChangeCode(str, Enum):
    """Reason codes carried with a cluster state change (EMR's StateChangeReason)."""

    USER_REQUEST = "USER_REQUEST"
    ALL_STEPS_COMPLETED = "ALL_STEPS_COMPLETED"
    STEP_FAILURE = "STEP_FAILURE"
    BOOTSTRAP_FAILURE = "BOOTSTRAP_FAILURE"
    VALIDATION_ERROR = "VALIDATION_ERROR"
    INSTANCE_FAILURE = "INSTANCE_FAILURE"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    TIMEOUT = "TIMEOUT"
    IDLE_TIMEOUT = "IDLE_TIMEOUT"  # idle longer than its auto_termination.idle_timeout (ends TERMINATED)
