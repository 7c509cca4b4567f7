"""The CLI prints every page: ``step logs`` (the issue's input: 1 MiB + 1 byte came out as
1 MiB, exit 0), ``step list``, ``cluster list`` and ``cluster describe --events``, run as
``corral ...`` against the real API (uvicorn) over an in-process control plane."""

from __future__ import annotations

import json
import threading
import time

import pytest

from corral.control import clusters, steps
from corral.control.context import ControlPlane
from corral.paging import DEFAULT_LIMIT
from corral.store.models import Step
from tests.unit.api.test_paging import MIB, add_events, add_shell_steps, clone_clusters, new_cluster
from tests.unit.cli.conftest import corral


@pytest.mark.parametrize("size", [0, MIB, MIB + 1, 3 * MIB + 5])
@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_step_logs_prints_the_whole_log(cp: ControlPlane, api_url: str, monkeypatch: pytest.MonkeyPatch,
                                        capfdbinary: pytest.CaptureFixture[bytes], size: int, stream: str) -> None:
    cid = new_cluster(cp)
    add_shell_steps(cp, cid, 1)
    step_id = steps.list_steps(cp, cid)[0].id
    data = b"x" * size if stream == "stdout" else bytes(i % 256 for i in range(size))
    cp.logs.append(cid, step_id, stream, 0, data)
    capfdbinary.readouterr()
    code = corral(monkeypatch, "step", "logs", cid, step_id, *(["--stderr"] if stream == "stderr" else []))
    out = capfdbinary.readouterr().out
    assert code == 0
    assert len(out) == size and out == data


def test_step_logs_of_an_unknown_step_is_bad_input(cp: ControlPlane, api_url: str, monkeypatch: pytest.MonkeyPatch,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    cid = new_cluster(cp)
    assert corral(monkeypatch, "step", "logs", cid, "s-nothere") == 2
    assert capfd.readouterr().err.strip() == "corral: error: step s-nothere not found"


def test_step_list_prints_every_step(cp: ControlPlane, api_url: str, monkeypatch: pytest.MonkeyPatch,
                                     capfd: pytest.CaptureFixture[str]) -> None:
    cid = new_cluster(cp)
    add_shell_steps(cp, cid, DEFAULT_LIMIT + 1)
    capfd.readouterr()
    assert corral(monkeypatch, "step", "list", cid, "-o", "json") == 0
    listed = json.loads(capfd.readouterr().out)
    assert [s["id"] for s in listed] == [s.id for s in steps.list_steps(cp, cid)]
    assert len(listed) == DEFAULT_LIMIT + 1


def test_describe_events_prints_every_event(cp: ControlPlane, api_url: str, monkeypatch: pytest.MonkeyPatch,
                                            capfd: pytest.CaptureFixture[str]) -> None:
    cid = new_cluster(cp)
    add_events(cp, cid, DEFAULT_LIMIT + 1)
    capfd.readouterr()
    assert corral(monkeypatch, "cluster", "describe", cid, "--events", "-o", "json") == 0
    shown = json.loads(capfd.readouterr().out)["events"]
    assert [e["id"] for e in shown] == [e.id for e in clusters.list_events(cp, cid, limit=None)]
    assert len(shown) > DEFAULT_LIMIT + 1


def test_cluster_list_prints_every_cluster_and_asks_only_for_active_ones(
        cp: ControlPlane, api_url: str, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    template = new_cluster(cp)  # STARTING
    active = clone_clusters(cp, template, DEFAULT_LIMIT)
    ended = clone_clusters(cp, template, 3, status="TERMINATED", prefix="c-ended")
    capfd.readouterr()
    assert corral(monkeypatch, "cluster", "list", "--all", "-o", "json") == 0
    assert len(json.loads(capfd.readouterr().out)) == DEFAULT_LIMIT + 1 + 3
    assert corral(monkeypatch, "cluster", "list", "-o", "json") == 0
    shown = [c["id"] for c in json.loads(capfd.readouterr().out)]
    assert sorted(shown) == sorted([template, *active]) and not set(ended) & set(shown)
    assert corral(monkeypatch, "cluster", "list", "--state", "terminated", "-o", "json") == 0
    assert len(json.loads(capfd.readouterr().out)) == 3


def test_step_logs_follow_prints_what_comes_until_the_step_ends(
        cp: ControlPlane, api_url: str, monkeypatch: pytest.MonkeyPatch, capfdbinary: pytest.CaptureFixture[bytes]) -> None:
    cid = new_cluster(cp)
    add_shell_steps(cp, cid, 1)
    step_id = steps.list_steps(cp, cid)[0].id
    first, later = b"a" * 10, b"b" * (MIB + 1)
    cp.logs.append(cid, step_id, "stdout", 0, first)

    def agent() -> None:  # what an agent does: ship the rest of the log, then report the step ended
        time.sleep(0.7)
        cp.logs.append(cid, step_id, "stdout", len(first), later)
        with cp.store.session() as s:
            row = s.get(Step, step_id)
            assert row is not None
            row.status = "COMPLETED"

    thread = threading.Thread(target=agent)
    thread.start()
    capfdbinary.readouterr()
    try:
        assert corral(monkeypatch, "step", "logs", cid, step_id, "--follow") == 0
    finally:
        thread.join()
    assert capfdbinary.readouterr().out == first + later
