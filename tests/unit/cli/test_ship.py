"""The client side of shipping (``corral.cli.ship``): the step kind's parser finds the
local files, relative ones become absolute, each is uploaded once by content and named in
the request; a missing file is refused before anything is sent."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.cli.ship import ShipError, ship_cluster_spec, ship_step
from corral.control.context import ControlPlane
from corral.control.plans import artifact_placeholder, step_command
from corral.store.models import Step
from tests.unit.helpers import count_rows, spec_dict


class CountingClient(TestClient):
    """The real API in-process; counts the uploads that reach it."""

    puts: int = 0

    def put(self, url: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.puts += 1
        return super().put(url, **kwargs)


@pytest.fixture
def api(cp: ControlPlane) -> Iterator[CountingClient]:
    with CountingClient(create_app(cp, run_reconciler=False), base_url="http://testserver/api/v1") as client:
        yield client


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_issue_input_is_uploaded_and_runs_from_the_shipped_copies(
        api: CountingClient, cp: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lookup.txt").write_text("k\tv\n")
    (tmp_path / "deps.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    (tmp_path / "job.py").write_text("print(1)\n")
    monkeypatch.chdir(tmp_path)
    request = ship_step(api, {"type": "SPARK", "args": [
        "--files", "lookup.txt#lookup.txt", "--archives", f"{tmp_path}/deps.zip#depsdir", "job.py", "lookup.txt"]})
    assert request["args"] == ["--files", f"{tmp_path}/lookup.txt#lookup.txt", "--archives",
                               f"{tmp_path}/deps.zip#depsdir", f"{tmp_path}/job.py", "lookup.txt"]
    assert request["files"] == {str(tmp_path / n): sha(tmp_path / n) for n in ("lookup.txt", "deps.zip", "job.py")}
    assert api.puts == 3
    cid = api.post("/clusters", json=spec_dict()).json()["id"]
    resp = api.post(f"/clusters/{cid}/steps", json={"steps": [request]})
    assert resp.status_code == 201, resp.text
    for name in ("lookup.txt", "deps.zip", "job.py"):  # the uploads are what the store holds
        assert cp.artifacts.path(sha(tmp_path / name)).read_bytes() == (tmp_path / name).read_bytes()
    with cp.store.session() as s:
        step = s.get(Step, resp.json()["steps"][0]["id"])
        assert step is not None
        from corral.control.views import cluster_view  # noqa: PLC0415
        from corral.control.clusters import load_cluster  # noqa: PLC0415
        argv = step_command(step, cluster_view(load_cluster(s, cid))).argv
    ph = {n: artifact_placeholder(sha(tmp_path / n)) for n in ("lookup.txt", "deps.zip", "job.py")}
    assert argv[3:] == ["--files", f"{ph['lookup.txt']}/lookup.txt#lookup.txt", "--archives",
                        f"{ph['deps.zip']}/deps.zip#depsdir", f"{ph['job.py']}/job.py", "lookup.txt"]


def test_an_unchanged_file_is_not_sent_again(api: CountingClient, tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("print(2)\n")
    (tmp_path / "same.py").write_text("print(2)\n")
    ship_step(api, {"type": "SPARK", "args": [str(tmp_path / "a.py")]})
    ship_step(api, {"type": "SPARK", "args": ["--py-files", str(tmp_path / "same.py"), str(tmp_path / "a.py")]})
    assert api.puts == 1


@pytest.mark.parametrize(("type_", "args", "message"), [
    ("SPARK", ["--name", "x", "--jars", "/l/a.jar", "--files", "{d}/here.txt,{d}/x.txt#x", "{d}/here.txt"],
     "args[3]: --jars entry not found: /l/a.jar"),
    ("SPARK", ["--files", "{d}/here.txt,{d}/x.txt#x", "{d}/here.txt"], "args[1]: --files entry not found: {d}/x.txt"),
    ("SPARK", ["{d}"], "args[0]: application is not a file: {d}"),
    ("HADOOP_JAR", ["mystery.jar"], "args[0]: jar not found: {d}/mystery.jar (it is not one of the release's jars"),
    ("STREAMING", ["-input", "/i", "-output", "/o", "-mapper", "{d}/m.py"], "args[5]: -mapper script not found: {d}/m.py"),
    ("SHELL", ["gone.sh"], "args[0]: script not found: {d}/gone.sh"),
    ("SPARK_SQL", ["{d}/q.sql"], "args[0]: SQL file not found: {d}/q.sql"),
])
def test_a_missing_local_file_is_refused_naming_its_argument(api: CountingClient, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch, type_: str,
                                                            args: list[str], message: str) -> None:
    (tmp_path / "here.txt").write_text("here\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ShipError) as info:
        ship_step(api, {"type": type_, "args": [a.format(d=tmp_path) for a in args]})
    assert str(info.value).startswith(message.format(d=tmp_path))


def test_a_file_over_the_servers_limit_is_refused_before_it_is_sent(api: CountingClient, cp: ControlPlane,
                                                                    tmp_path: Path) -> None:
    cp.settings = dataclasses.replace(cp.settings, max_artifact_bytes=3 << 20)
    big = tmp_path / "big.zip"
    big.write_bytes(b"z" * (4 << 20))
    with pytest.raises(ShipError) as info:
        ship_step(api, {"type": "SPARK", "args": ["--archives", f"{big}#env", "local:/x.py"]})
    assert str(info.value) == f"args[1]: {big} has 4.0 MiB, more than the server takes (3 MiB, its CORRAL_MAX_ARTIFACT_MB)"
    assert api.puts == 0


def test_bad_arguments_are_left_for_the_server_to_name(api: CountingClient) -> None:
    step = {"type": "SPARK", "args": ["--master", "local", "/nowhere/app.py"]}
    assert ship_step(api, step) == {**step, "args": step["args"]}
    assert ship_step(api, {"type": "PIG", "args": ["x"]}) == {"type": "PIG", "args": ["x"]}


def test_a_cluster_spec_ships_its_bootstrap_scripts_and_steps(api: CountingClient, cp: ControlPlane,
                                                              tmp_path: Path) -> None:
    (tmp_path / "boot.sh").write_text("#!/bin/sh\necho boot\n")
    (tmp_path / "job.py").write_text("print(3)\n")
    spec = spec_dict(bootstrap_actions=[{"path": str(tmp_path / "boot.sh"), "args": ["-y"]}],
                     steps=[{"type": "SHELL", "args": ["echo hi"]}, {"type": "SPARK", "args": [str(tmp_path / "job.py")]}])
    shipped = ship_cluster_spec(api, spec)
    assert "sha256" not in spec["bootstrap_actions"][0]  # the caller's spec is left as it was
    assert shipped["bootstrap_actions"][0]["sha256"] == sha(tmp_path / "boot.sh")
    assert shipped["steps"][1]["files"] == {str(tmp_path / "job.py"): sha(tmp_path / "job.py")}
    resp = api.post("/clusters", json=shipped)
    assert resp.status_code == 201, resp.text
    with pytest.raises(ShipError, match=r"^bootstrap_actions\[0\]\.path: file not found: "):
        ship_cluster_spec(api, spec_dict(bootstrap_actions=[{"path": str(tmp_path / "nope.sh")}]))
    with pytest.raises(ShipError, match=r"^steps\[0\]\.args\[0\]: application not found: "):
        ship_cluster_spec(api, spec_dict(steps=[{"type": "spark", "args": [str(tmp_path / "nope.py")]}]))
    assert count_rows(cp.store, Step) == 2
