"""``corral alert`` over the real API: bad input is exit 2 with one line naming the field
and changes nothing; rules are added, listed, disabled and removed by id or name;
webhooks are shown masked; alerts are listed, ``--firing`` only the firing ones."""

from __future__ import annotations

import json

import pytest

from corral.alerts.engine import AlertEngine
from corral.control.context import ControlPlane
from tests.unit.alerts.helpers import EXTERNAL, cluster_row, sample, up_cluster
from tests.unit.cli.conftest import corral


def _refused(capfd: pytest.CaptureFixture[str]) -> str:
    err = capfd.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("corral: error: "), err
    return err


def _json(capfd: pytest.CaptureFixture[str]) -> object:
    return json.loads(capfd.readouterr().out)


def test_rules_refused_added_listed_disabled_and_removed(cp: ControlPlane, api_url: str,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    cid = up_cluster(cp)
    monkeypatch.setenv("COLUMNS", "250")  # whole table cells
    capfd.readouterr()
    base = ["alert", "rule", "add", "--name", "Busy", "--metric", "ContainerPending", "--comparison", ">"]
    assert corral(monkeypatch, *base, "--threshold", "10", "--for", "soon") == 2
    assert "for:" in _refused(capfd)
    assert corral(monkeypatch, "alert", "rule", "add", "--name", "Busy", "--metric", "Nope", "--comparison", ">",
                  "--threshold", "1") == 2
    assert "metric: unknown metric 'Nope'" in _refused(capfd)
    assert corral(monkeypatch, *base, "--threshold", "lots") == 2
    assert "--threshold" in _refused(capfd)
    assert corral(monkeypatch, *base, "--threshold", "1", "--cluster", "c-nothere") == 2
    assert "cluster c-nothere not found" in _refused(capfd)
    assert corral(monkeypatch, "alert", "rule", "list", "-o", "json") == 0
    assert all(r["builtin"] for r in _json(capfd))  # type: ignore[union-attr]

    assert corral(monkeypatch, *base, "--threshold", "10", "--for", "2m", "--severity", "critical",
                  "--cluster", cid, "-o", "json") == 0
    added = _json(capfd)
    assert isinstance(added, dict) and added["expression"] == "ContainerPending > 10 for 2m"
    assert corral(monkeypatch, *base, "--threshold", "10", "--cluster", cid) == 2
    assert "exists on cluster" in _refused(capfd)
    assert corral(monkeypatch, "alert", "rule", "list", "--cluster", cid) == 0
    table = capfd.readouterr().out
    assert "Busy" in table and "MissingBlocks" in table and "ContainerPending > 10 for 2m" in table

    assert corral(monkeypatch, "alert", "rule", "disable", "Busy") == 2  # not global: named in its scope only
    assert "no alert rule 'Busy' (global" in _refused(capfd)
    assert corral(monkeypatch, "alert", "rule", "disable", "Busy", "--cluster", cid, "-o", "json") == 0
    assert _json(capfd)["enabled"] is False  # type: ignore[index]
    assert corral(monkeypatch, "alert", "rule", "remove", "MissingBlocks") == 2
    assert "built-in" in _refused(capfd)
    assert corral(monkeypatch, "alert", "rule", "remove", added["id"]) == 0
    assert "removed" in capfd.readouterr().out
    assert corral(monkeypatch, "alert", "rule", "remove", added["id"]) == 2
    _refused(capfd)


def test_webhooks_and_alerts(cp: ControlPlane, api_url: str, monkeypatch: pytest.MonkeyPatch,
                             capfd: pytest.CaptureFixture[str]) -> None:
    cid = up_cluster(cp)
    monkeypatch.setenv("COLUMNS", "250")  # whole table cells
    capfd.readouterr()
    assert corral(monkeypatch, "alert", "webhook", "add", "ftp://example.com/hook") == 2
    assert "url: must be an http or https URL" in _refused(capfd)
    assert corral(monkeypatch, "alert", "webhook", "add", "http://127.0.0.1:9/hook?token=sekrit", "--name", "am") == 0
    out = capfd.readouterr().out
    assert "sekrit" not in out and "http://127.0.0.1:9/***?***" in out
    assert corral(monkeypatch, "alert", "webhook", "list", "-o", "json") == 0
    [hook] = _json(capfd)  # type: ignore[misc]
    assert hook["name"] == "am" and "sekrit" not in json.dumps(hook)

    assert corral(monkeypatch, "alert", "list", "--firing", "-o", "json") == 0
    assert _json(capfd) == []
    engine = AlertEngine(cp.store, EXTERNAL)
    try:
        engine.on_sample(cp, cluster_row(cp, cid), sample(100, MissingBlocks=3, LiveDataNodes=50))
    finally:
        engine.stop()
    assert corral(monkeypatch, "alert", "list", "--firing", "-o", "json") == 0
    assert [(a["name"], a["state"], a["value"]) for a in _json(capfd)] == [("MissingBlocks", "FIRING", 3.0)]  # type: ignore[union-attr]
    assert corral(monkeypatch, "alert", "list", "--cluster", cid) == 0
    table = capfd.readouterr().out
    assert "MissingBlocks" in table and "DataNodesDown" in table and "PENDING" in table
    assert corral(monkeypatch, "alert", "webhook", "deliveries", "am", "-o", "json") == 0
    assert [(d["status"], d["state"]) for d in _json(capfd)] == [("firing", "PENDING")]  # type: ignore[union-attr]
    assert corral(monkeypatch, "alert", "webhook", "remove", "am") == 0
    capfd.readouterr()
    assert corral(monkeypatch, "alert", "webhook", "remove", "am") == 2
    assert "no webhook 'am'" in _refused(capfd)
