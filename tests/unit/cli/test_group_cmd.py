"""``corral cluster resize``, ``corral group add|remove|list``, ``corral cluster autoscaling
put|get|remove`` and ``corral cluster update --idle-timeout`` over the real API: a refusal
is exit 2 with one readable line naming the field, and changes nothing; an accepted
request prints the group's new target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.control.context import ControlPlane
from tests.unit.cli.conftest import corral
from tests.unit.control.test_groups import _snapshot, _up_cluster

POLICY = """\
min_count: 0
max_count: 3
rules:
  - {name: grow, metric: ContainerPending, comparison: GREATER_THAN, threshold: 0, adjustment: 1}
"""


def _refused(capfd: pytest.CaptureFixture[str]) -> str:
    err = capfd.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_resizes_refused_and_accepted(cp: ControlPlane, api_url: str, monkeypatch: pytest.MonkeyPatch,
                                      capfd: pytest.CaptureFixture[str]) -> None:
    cid = _up_cluster(cp)
    before = _snapshot(cp, cid)
    capfd.readouterr()
    assert corral(monkeypatch, "cluster", "resize", cid, "--group", "CORE", "--count", "1") == 2
    assert "count" in (line := _refused(capfd)) and "dfs.replication 2" in line, line
    assert corral(monkeypatch, "cluster", "resize", cid, "--group", "MASTER", "--count", "2") == 2
    assert "never resized" in _refused(capfd)
    assert corral(monkeypatch, "cluster", "resize", cid, "--group", "BIG", "--count", "2") == 2
    assert "'BIG'" in _refused(capfd)
    assert _snapshot(cp, cid) == before
    assert corral(monkeypatch, "cluster", "resize", cid, "--group", "CORE", "--count", "3",
                  "--decommission-timeout", "120", "-o", "json") == 0
    resized = json.loads(capfd.readouterr().out)
    assert (resized["name"], resized["requested_count"], resized["status"]) == ("CORE", 3, "RESIZING")


def test_task_groups_are_added_listed_and_removed(cp: ControlPlane, api_url: str, monkeypatch: pytest.MonkeyPatch,
                                                  capfd: pytest.CaptureFixture[str]) -> None:
    cid = _up_cluster(cp)
    capfd.readouterr()
    assert corral(monkeypatch, "group", "add", cid, "--instance-type", "local.huge", "--count", "1") == 2
    assert "instance_type" in (line := _refused(capfd)) and "local.huge" in line, line
    assert corral(monkeypatch, "group", "add", cid, "--instance-type", "local.medium", "--count", "1",
                  "--label", "pool=spot") == 2
    assert "host_labels" in (line := _refused(capfd)) and "ssh" in line, line
    assert corral(monkeypatch, "group", "add", cid, "--instance-type", "local.medium", "--count", "1",
                  "--label", "no-equals") == 2
    assert "--label" in capfd.readouterr().err
    assert corral(monkeypatch, "group", "add", cid, "--instance-type", "local.large", "--count", "2",
                  "--name", "burst", "-o", "json") == 0
    assert json.loads(capfd.readouterr().out)["name"] == "burst"
    assert corral(monkeypatch, "group", "list", cid, "-o", "json") == 0
    assert [(g["name"], g["requested_count"]) for g in json.loads(capfd.readouterr().out)] == [
        ("MASTER", 1), ("CORE", 2), ("TASK", 1), ("burst", 2)]
    assert corral(monkeypatch, "group", "remove", cid, "CORE") == 2
    assert "only TASK groups are removed" in _refused(capfd)
    assert corral(monkeypatch, "group", "remove", cid, "burst", "-o", "json") == 0
    assert json.loads(capfd.readouterr().out)["status"] == "TERMINATING"


def test_autoscaling_policies_and_the_idle_timeout(cp: ControlPlane, api_url: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    cid = _up_cluster(cp)
    good, bad = tmp_path / "policy.yaml", tmp_path / "bad.yaml"
    good.write_text(POLICY)
    bad.write_text(POLICY.replace("ContainerPending", "Vibes"))
    capfd.readouterr()
    assert corral(monkeypatch, "cluster", "autoscaling", "put", cid, "--group", "TASK", "-f", str(bad)) == 2
    assert "rules[0].metric" in (line := _refused(capfd)) and "ContainerPending" in line, line
    assert corral(monkeypatch, "cluster", "autoscaling", "put", cid, "--group", "MASTER", "-f", str(good)) == 2
    assert "MASTER" in _refused(capfd)
    assert corral(monkeypatch, "cluster", "autoscaling", "put", cid, "--group", "TASK", "-f", str(good)) == 0
    assert "min 0, max 3, 1 load rules" in capfd.readouterr().out
    assert corral(monkeypatch, "cluster", "autoscaling", "get", cid, "--group", "TASK", "--explain", "-o", "json") == 0
    assert json.loads(capfd.readouterr().out)["policy"]["max_count"] == 3
    # A resize outside the policy's bounds is refused while it is attached.
    assert corral(monkeypatch, "cluster", "resize", cid, "--group", "TASK", "--count", "5") == 2
    assert "outside the group's autoscaling bounds 0..3" in _refused(capfd)
    assert corral(monkeypatch, "cluster", "autoscaling", "remove", cid, "--group", "TASK") == 0
    capfd.readouterr()
    assert corral(monkeypatch, "cluster", "autoscaling", "remove", cid, "--group", "TASK") == 2
    assert "autoscaling policy" in _refused(capfd)
    assert corral(monkeypatch, "cluster", "update", cid, "--idle-timeout", "30") == 2
    assert "idle_timeout" in _refused(capfd)
    assert corral(monkeypatch, "cluster", "update", cid, "--idle-timeout", "600", "-o", "json") == 0
    assert json.loads(capfd.readouterr().out)["auto_termination"] == {"idle_timeout": 600}
