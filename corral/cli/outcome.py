"""The CLI's exit status: one rule for every command and every ``--output`` format.

A command prints its result (a table for people, or ``-o json``) and then ends by what
happened, never by how it printed it:

- 0 (``OK``): what was asked for happened: the cluster is up (``cluster create``), it is
  requested (``--no-wait``), it has ended and its nodes are released (``terminate --wait``),
  the step COMPLETED (``--wait``) or is queued, the query ran, the HDFS operation was done.
- 1 (``FAILED``): it ran and failed: a cluster that ended instead of coming up (e.g. a
  bootstrap action exited non-zero), a termination that could not release every node, a
  step that ended FAILED, CANCELLED or INTERRUPTED, a query that failed while running, an
  HDFS operation the cluster could not do, a server that cannot be reached, a host whose
  check failed (``host add|check``: FAILED_CHECK, UNREACHABLE, HOST_KEY_CHANGED, or a
  failing item on an allocated or drained host).
- 2 (``BAD_INPUT``): the request itself is wrong: usage, a refused spec or argument, an
  unknown id, a missing HDFS path, a statement the SQL endpoint refuses to run, no valid
  token or a role that may not (401/403); one line ``corral: error: ...`` on stderr, and
  nothing was done.
- 3 (``NOT_RUNNING``): ``corral server status`` only: no server runs (as LSB ``status``).
- 130 (``INTERRUPTED``): Ctrl-C; clusters and steps keep going.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Callable, Iterable

import typer

from corral.cli.render import Output, print_json
from corral.domain.states import ClusterState, HostState, OperationState, StepState


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    BAD_INPUT = 2
    NOT_RUNNING = 3
    INTERRUPTED = 130


EXIT_STATUS_HELP = (
    "Exit status, the same with every --output: 0 done as asked; 1 it ran and failed (a cluster that did "
    "not come up, a step that did not complete with --wait, a query that failed while running, an HDFS "
    "failure, a host check that failed, no server); 2 bad input (usage, a refused spec or argument, an "
    "unknown id, a missing HDFS path, a statement the SQL endpoint refuses, no valid token or role); 3 "
    "`server status`: not running; 130 interrupted.")


def finish(result: Any, output: Output, show: Callable[[], None], ok: bool) -> None:
    """Print ``result`` as JSON or with ``show`` (the table form), then end the command:
    ``typer.Exit(1)`` unless ``ok``, so the status never depends on the format."""
    if output is Output.json:
        print_json(result)
    else:
        show()
    if not ok:
        raise typer.Exit(ExitCode.FAILED)


def cluster_created(cluster: dict[str, Any], waited: bool) -> bool:
    """Whether ``cluster create`` did what was asked. Waiting: the cluster came up (it is
    WAITING or RUNNING, or a transient one already ended TERMINATED after being up).
    Not waiting: it is requested, i.e. the answer (a replay of its client token, say)
    does not already show it ended with errors."""
    status = cluster["status"]
    if not waited:
        return status != ClusterState.TERMINATED_WITH_ERRORS.value
    if ClusterState(status).is_up():
        return True
    return status == ClusterState.TERMINATED.value and cluster["timeline"].get("ready_at") is not None


def cluster_terminated(cluster: dict[str, Any], operations: Iterable[dict[str, Any]]) -> bool:
    """Whether ``cluster terminate --wait`` did what was asked: the cluster has ended and its
    latest termination did not fail (a failed one could not release every node). A cluster
    that had already failed ends TERMINATED_WITH_ERRORS: its termination still succeeded."""
    if not ClusterState(cluster["status"]).is_terminal():
        return False
    terminations = [o for o in operations if o["kind"] == "TERMINATE_CLUSTER"]
    return not terminations or terminations[-1]["status"] != OperationState.FAILED.value


def step_succeeded(step: dict[str, Any], waited: bool) -> bool:
    """Whether ``step add`` (or ``data import|export``) did what was asked: with ``--wait``
    the step COMPLETED; without, it is queued (the answer is the queued step)."""
    return not waited or step["status"] == StepState.COMPLETED.value


HOST_CHECK_FAILED = frozenset({HostState.FAILED_CHECK.value, HostState.UNREACHABLE.value, HostState.HOST_KEY_CHANGED.value})


def host_checked(host: dict[str, Any], waited: bool) -> bool:
    """Whether ``host add`` / ``host check`` did what was asked. Waiting: the check ended
    and passed (no failing error item; READY, or an allocated or drained host's fresh
    facts). Not waiting: the host is registered and its check requested, i.e. it is not
    already in a failed state (a key that changed)."""
    if host["status"] in HOST_CHECK_FAILED:
        return False
    if not waited:
        return True
    return not host["check_pending"] and not any(not c["ok"] and c["severity"] == "error" for c in host["checks"])
