"""Host selection through the CLI: a spec file's new fields pass, ``--provider ssh``, a
refusal is exit 2 with one line, and ``cluster describe`` shows each node's host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral.control.context import ControlPlane
from tests.unit.cli.conftest import corral
from tests.unit.hosts.pool import add_host, register_ssh_provider


@pytest.fixture(autouse=True)
def _ssh_provider(request: pytest.FixtureRequest) -> None:
    register_ssh_provider(request)


SPEC_YAML = """\
name: on-hosts
provider: ssh
services: [hdfs, yarn, spark]
node_groups:
  - {role: MASTER, hosts: [m]}
  - {role: CORE, count: 2, host_labels: {rack: 1}}
"""


def test_cli_create_from_a_spec_file_and_describe_show_the_hosts(
        cp: ControlPlane, api_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    add_host(cp.store, "m")
    add_host(cp.store, "w1", {"rack": "1"})
    add_host(cp.store, "w2", {"rack": "1"})
    (tmp_path / "spec.yaml").write_text(SPEC_YAML)
    capfd.readouterr()
    assert corral(monkeypatch, "cluster", "create", "-f", str(tmp_path / "spec.yaml"), "--no-wait", "-o", "json") == 0
    created = json.loads(capfd.readouterr().out)
    assert sorted(n["host"] for n in created["nodes"]) == ["m", "w1", "w2"]
    monkeypatch.setenv("COLUMNS", "200")
    assert corral(monkeypatch, "cluster", "describe", created["id"]) == 0
    out = capfd.readouterr().out
    assert "provider ssh" in out
    assert "rack=1" in out and " m " in out
    node_lines = [line for line in out.splitlines() if "REQUESTED" in line]
    assert sorted(next(h for h in ("w1", "w2", " m ") if h in line).strip() for line in node_lines) == ["m", "w1", "w2"]


def test_cli_refusal_is_exit_2_with_one_line(cp: ControlPlane, api_url: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC_YAML)
    capfd.readouterr()
    assert corral(monkeypatch, "cluster", "create", "-f", str(tmp_path / "spec.yaml"), "--no-wait") == 2
    err = capfd.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith("corral: error: node_groups[0]: MASTER needs 1 READY host named m; none match; m is not registered")
    assert "node_groups[1]: CORE needs 2 READY hosts with label rack=1; none match" in err


def test_cli_provider_flag_gives_host_sized_default_groups(cp: ControlPlane, api_url: str,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capfd: pytest.CaptureFixture[str]) -> None:
    for name in ("a", "b", "c"):
        add_host(cp.store, name)
    capfd.readouterr()
    assert corral(monkeypatch, "cluster", "create", "--provider", "ssh", "--services", "hdfs,yarn,spark",
                  "--no-wait", "-o", "json") == 0
    created = json.loads(capfd.readouterr().out)
    assert sorted((n["role"], n["host"], n["instance_type"]) for n in created["nodes"]) == [
        ("CORE", "b", "host"), ("CORE", "c", "host"), ("MASTER", "a", "host")]
