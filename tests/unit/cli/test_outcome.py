"""One exit-status rule for every command and output format (``corral.cli.outcome``): the
rule itself, and commands run both ways (``-o table`` and ``-o json``) against the real API
over an in-process control plane whose rows the test puts into each state. The same
commands against real clusters: tests/integration/test_cli.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer

from corral.cli.outcome import ExitCode, cluster_created, cluster_terminated, finish, step_succeeded
from corral.cli.render import Output
from corral.control import clusters, events, steps
from corral.control.context import ControlPlane
from corral.store.models import Cluster, Step
from tests.unit.api.test_paging import add_shell_steps
from tests.unit.cli.conftest import corral

OUTPUTS = ("table", "json")


def cluster(status: str, ready: bool = False) -> dict[str, Any]:
    return {"id": "c-1", "status": status, "timeline": {"ready_at": "2026-01-01T00:00:00+00:00" if ready else None}}


@pytest.mark.parametrize("status, ready, waited, ok", [
    ("WAITING", True, True, True), ("RUNNING", True, True, True),
    ("TERMINATED_WITH_ERRORS", False, True, False),  # the input: a bootstrap action exited 7
    ("TERMINATED_WITH_ERRORS", True, True, False),
    ("TERMINATED", True, True, True),  # a transient cluster that was up, ran its steps and ended
    ("TERMINATED", False, True, False),  # terminated before it came up
    ("STARTING", False, False, True), ("TERMINATED", False, False, True),
    ("TERMINATED_WITH_ERRORS", False, False, False),  # a client-token replay of a failed cluster
])
def test_cluster_created(status: str, ready: bool, waited: bool, ok: bool) -> None:
    assert cluster_created(cluster(status, ready), waited) is ok


@pytest.mark.parametrize("status, operations, ok", [
    ("TERMINATED", [{"kind": "CREATE_CLUSTER", "status": "SUCCEEDED"}, {"kind": "TERMINATE_CLUSTER", "status": "SUCCEEDED"}], True),
    ("TERMINATED_WITH_ERRORS", [{"kind": "CREATE_CLUSTER", "status": "FAILED"},
                                {"kind": "TERMINATE_CLUSTER", "status": "SUCCEEDED"}], True),  # had failed; now ended
    ("TERMINATED_WITH_ERRORS", [{"kind": "TERMINATE_CLUSTER", "status": "FAILED"}], False),  # nodes not released
    ("TERMINATING", [{"kind": "TERMINATE_CLUSTER", "status": "RUNNING"}], False),
])
def test_cluster_terminated(status: str, operations: list[dict[str, Any]], ok: bool) -> None:
    assert cluster_terminated(cluster(status), operations) is ok


@pytest.mark.parametrize("status, waited, ok", [
    ("COMPLETED", True, True), ("FAILED", True, False), ("CANCELLED", True, False), ("INTERRUPTED", True, False),
    ("PENDING", False, True),
])
def test_step_succeeded(status: str, waited: bool, ok: bool) -> None:
    assert step_succeeded({"status": status}, waited) is ok


@pytest.mark.parametrize("ok", [True, False])
def test_finish_exits_by_outcome_in_either_format(ok: bool, capsys: pytest.CaptureFixture[str]) -> None:
    codes = []
    for output in Output:
        try:
            finish({"status": "X"}, output, lambda: print("table form"), ok)
            codes.append(0)
        except typer.Exit as exc:
            codes.append(exc.exit_code)
    out = capsys.readouterr().out
    assert codes == ([0, 0] if ok else [1, 1])
    assert "table form" in out and json.loads(out.split("table form")[1]) == {"status": "X"}


def set_cluster(cp: ControlPlane, cluster_id: str, status: str, ready: bool = False,
                terminate_ok: bool | None = None) -> None:
    with cp.store.session() as s:
        row = s.get(Cluster, cluster_id)
        assert row is not None
        row.status, row.target, row.ready_at = status, "TERMINATED" if status.startswith("TERMINATED") else "ACTIVE", (
            row.created_at + 1 if ready else None)
        if terminate_ok is not None:
            events.start_operation(s, f"o-{cluster_id[2:]}", cluster_id, "TERMINATE_CLUSTER", events.TERMINATE_STEPS)
            s.flush()
            events.finish_operation(s, cluster_id, "TERMINATE_CLUSTER", ok=terminate_ok)


def both_ways(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], *argv: str) -> list[int]:
    """The exit code of ``corral ARGV -o table`` and of ``... -o json`` (whose stdout is JSON)."""
    codes = []
    for output in OUTPUTS:
        capfd.readouterr()
        cut = argv.index("--") if "--" in argv else len(argv)  # options go before a step's `--`
        codes.append(corral(monkeypatch, *argv[:cut], "-o", output, *argv[cut:]))
        out = capfd.readouterr().out
        if output == "json" and codes[-1] != ExitCode.BAD_INPUT:
            json.loads(out)
    return codes


CREATE = ("cluster", "create", "--name", "outcome", "--services", "spark", "--client-token", "outcome-1")


@pytest.mark.parametrize("status, ready, wait_ok, no_wait_ok", [
    ("TERMINATED_WITH_ERRORS", False, 1, 1),  # the input: `-o json` exited 0
    ("WAITING", True, 0, 0),
    ("TERMINATED", True, 0, 0),
])
def test_cluster_create_exits_alike_in_both_formats(cp: ControlPlane, api_url: str, monkeypatch: pytest.MonkeyPatch,
                                                    capfd: pytest.CaptureFixture[str], status: str, ready: bool,
                                                    wait_ok: int, no_wait_ok: int) -> None:
    assert corral(monkeypatch, *CREATE, "--no-wait") == 0
    (row,) = clusters.list_clusters(cp)
    set_cluster(cp, row.id, status, ready)
    # the same client token answers the same cluster: create waits on it, or not
    assert both_ways(monkeypatch, capfd, *CREATE) == [wait_ok, wait_ok]
    assert both_ways(monkeypatch, capfd, *CREATE, "--no-wait") == [no_wait_ok, no_wait_ok]


@pytest.mark.parametrize("status, terminate_ok, code", [
    ("TERMINATED", True, 0), ("TERMINATED_WITH_ERRORS", True, 0), ("TERMINATED_WITH_ERRORS", False, 1)])
def test_cluster_terminate_wait_exits_alike_in_both_formats(
        cp: ControlPlane, api_url: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
        status: str, terminate_ok: bool, code: int) -> None:
    assert corral(monkeypatch, *CREATE, "--no-wait") == 0
    (row,) = clusters.list_clusters(cp)
    set_cluster(cp, row.id, status, terminate_ok=terminate_ok)
    assert both_ways(monkeypatch, capfd, "cluster", "terminate", row.id, "--wait") == [code, code]
    assert both_ways(monkeypatch, capfd, "cluster", "terminate", row.id) == [0, 0]
    assert both_ways(monkeypatch, capfd, "cluster", "terminate", "c-nothere") == [2, 2]


def test_step_add_and_cancel_exit_alike_in_both_formats(cp: ControlPlane, api_url: str, monkeypatch: pytest.MonkeyPatch,
                                                        capfd: pytest.CaptureFixture[str]) -> None:
    assert corral(monkeypatch, *CREATE, "--no-wait") == 0
    (row,) = clusters.list_clusters(cp)
    assert both_ways(monkeypatch, capfd, "step", "add", row.id, "--type", "shell", "--", "true") == [0, 0]
    assert both_ways(monkeypatch, capfd, "step", "add", row.id, "--type", "pig", "--", "true") == [2, 2]
    queued = steps.list_steps(cp, row.id)
    assert both_ways(monkeypatch, capfd, "step", "cancel", row.id, queued[0].id) == [0, 2]  # then it has ended
    with cp.store.session() as s:
        done = s.get(Step, queued[1].id)
        assert done is not None
        done.status = "COMPLETED"
    assert both_ways(monkeypatch, capfd, "step", "cancel", row.id, queued[1].id) == [2, 2]
    add_shell_steps(cp, row.id, 1)
    last = steps.list_steps(cp, row.id)[-1]
    assert both_ways(monkeypatch, capfd, "step", "describe", row.id, last.id) == [0, 0]


def test_terminate_without_wait_says_the_cluster_is_terminating(cp: ControlPlane, api_url: str,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capfd: pytest.CaptureFixture[str]) -> None:
    assert corral(monkeypatch, *CREATE, "--no-wait") == 0
    (row,) = clusters.list_clusters(cp)
    capfd.readouterr()
    assert corral(monkeypatch, "cluster", "terminate", row.id) == 0
    assert f"Cluster {row.id} is STARTING, terminating" in capfd.readouterr().out
