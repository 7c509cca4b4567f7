"""Lifecycle states: the documented transitions, terminality, and a way out of every state."""

from __future__ import annotations

from collections import deque

import pytest

from corral.domain.states import ClusterState, HostState, InvalidTransition, NodeState, OperationState, StepState

# The transitions as documented (module docstring, EMR's lifecycle), written out independently
# of the implementation's tables.
CLUSTER = {
    "STARTING": {"BOOTSTRAPPING", "TERMINATING"},
    "BOOTSTRAPPING": {"WAITING", "RUNNING", "TERMINATING"},
    "RUNNING": {"WAITING", "TERMINATING"},
    "WAITING": {"RUNNING", "TERMINATING"},
    "TERMINATING": {"TERMINATED", "TERMINATED_WITH_ERRORS"},
    "TERMINATED": set(),
    "TERMINATED_WITH_ERRORS": set(),
}
NODE = {
    "REQUESTED": {"PROVISIONING", "TERMINATING", "TERMINATED"},
    "PROVISIONING": {"BOOTSTRAPPING", "STARTING", "RUNNING", "LOST", "TERMINATING"},
    "BOOTSTRAPPING": {"STARTING", "RUNNING", "LOST", "TERMINATING"},
    "STARTING": {"RUNNING", "LOST", "TERMINATING"},
    "RUNNING": {"STARTING", "LOST", "TERMINATING"},
    "LOST": {"BOOTSTRAPPING", "STARTING", "RUNNING", "TERMINATING"},
    "TERMINATING": {"TERMINATED"},
    "TERMINATED": set(),
}
HOST = {
    "CHECKING": {"READY", "FAILED_CHECK", "UNREACHABLE", "HOST_KEY_CHANGED", "DRAINED", "REMOVED"},
    "READY": {"CHECKING", "ALLOCATED", "UNREACHABLE", "HOST_KEY_CHANGED", "DRAINED", "REMOVED"},
    "FAILED_CHECK": {"CHECKING", "DRAINED", "REMOVED"},
    "UNREACHABLE": {"CHECKING", "READY", "HOST_KEY_CHANGED", "DRAINED", "REMOVED"},
    "HOST_KEY_CHANGED": {"REMOVED"},
    "ALLOCATED": {"READY", "DRAINING", "HOST_KEY_CHANGED", "REMOVED"},  # REMOVED: remove --force
    "DRAINING": {"DRAINED", "REMOVED"},
    "DRAINED": {"CHECKING", "REMOVED"},
    "REMOVED": set(),
}
STEP = {
    "PENDING": {"RUNNING", "CANCEL_PENDING", "CANCELLED", "COMPLETED", "FAILED", "INTERRUPTED"},
    "RUNNING": {"CANCEL_PENDING", "COMPLETED", "FAILED", "INTERRUPTED"},
    "CANCEL_PENDING": {"CANCELLED", "COMPLETED", "FAILED", "INTERRUPTED"},
    "COMPLETED": set(),
    "CANCELLED": set(),
    "FAILED": set(),
    "INTERRUPTED": set(),
}
OPERATION = {"RUNNING": {"SUCCEEDED", "FAILED"}, "SUCCEEDED": set(), "FAILED": set()}

TABLES = [(ClusterState, CLUSTER), (NodeState, NODE), (StepState, STEP), (OperationState, OPERATION),
          (HostState, HOST)]
IDS = [cls.__name__ for cls, _ in TABLES]


def _pairs(cls):  # type: ignore[no-untyped-def]
    return [(a, b) for a in cls for b in cls]


@pytest.mark.parametrize(("cls", "table"), TABLES, ids=IDS)
def test_members_are_exactly_the_documented_states(cls, table) -> None:  # type: ignore[no-untyped-def]
    assert {s.value for s in cls} == set(table)


@pytest.mark.parametrize(("cls", "table"), TABLES, ids=IDS)
def test_can_become_matches_the_documented_transitions(cls, table) -> None:  # type: ignore[no-untyped-def]
    for a, b in _pairs(cls):
        assert a.can_become(b) is (b.value in table[a.value]), f"{a.value} -> {b.value}"


@pytest.mark.parametrize(("cls", "table"), TABLES, ids=IDS)
def test_is_terminal_exactly_for_the_final_states(cls, table) -> None:  # type: ignore[no-untyped-def]
    assert {s.value for s in cls if s.is_terminal()} == {name for name, nxt in table.items() if not nxt}


def test_terminal_states_by_name() -> None:
    assert {s for s in ClusterState if s.is_terminal()} == {ClusterState.TERMINATED, ClusterState.TERMINATED_WITH_ERRORS}
    assert {s for s in NodeState if s.is_terminal()} == {NodeState.TERMINATED}
    assert {s for s in StepState if s.is_terminal()} == {
        StepState.COMPLETED, StepState.CANCELLED, StepState.FAILED, StepState.INTERRUPTED}


@pytest.mark.parametrize(("cls", "table"), TABLES, ids=IDS)
def test_check_transition_raises_on_every_undocumented_move(cls, table) -> None:  # type: ignore[no-untyped-def]
    for a, b in _pairs(cls):
        if a is b or b.value in table[a.value]:
            a.check_transition(b)  # allowed (staying put is always allowed)
        else:
            with pytest.raises(InvalidTransition, match=f"{a.value} -> {b.value}"):
                a.check_transition(b)


def test_check_transition_examples() -> None:
    with pytest.raises(InvalidTransition):
        ClusterState.TERMINATED.check_transition(ClusterState.STARTING)
    with pytest.raises(InvalidTransition):
        ClusterState.STARTING.check_transition(ClusterState.WAITING)  # must bootstrap first
    with pytest.raises(InvalidTransition):
        StepState.COMPLETED.check_transition(StepState.FAILED)
    with pytest.raises(InvalidTransition):
        NodeState.TERMINATING.check_transition(NodeState.RUNNING)
    ClusterState.TERMINATED.check_transition(ClusterState.TERMINATED)  # a no-op, not an error


def _reachable(start):  # type: ignore[no-untyped-def]
    seen, queue = {start}, deque([start])
    while queue:
        state = queue.popleft()
        for nxt in type(state):
            if state.can_become(nxt) and nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


@pytest.mark.parametrize("state", [s for s in ClusterState if not s.is_terminal()], ids=lambda s: s.value)
def test_every_live_cluster_state_can_reach_terminating(state: ClusterState) -> None:
    if state is not ClusterState.TERMINATING:
        assert state.can_become(ClusterState.TERMINATING)  # directly: termination never has to wait
    assert {ClusterState.TERMINATED, ClusterState.TERMINATED_WITH_ERRORS} <= _reachable(state)


@pytest.mark.parametrize("cls", [ClusterState, NodeState, StepState, OperationState, HostState],
                         ids=lambda c: c.__name__)
def test_every_non_terminal_state_has_a_way_out(cls) -> None:  # type: ignore[no-untyped-def]
    for state in cls:
        if not state.is_terminal():
            assert any(s.is_terminal() for s in _reachable(state)), state


def test_every_live_node_state_can_reach_terminated() -> None:
    for state in NodeState:
        if not state.is_terminal():
            assert NodeState.TERMINATED in _reachable(state), state


def test_is_up_only_when_running_or_waiting() -> None:
    assert {s for s in ClusterState if s.is_up()} == {ClusterState.RUNNING, ClusterState.WAITING}
