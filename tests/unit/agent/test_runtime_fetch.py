"""The agent's deploy: what the node has is used in place (the local provider: nothing
fetched); what it lacks comes from the control plane's repository over HTTP, once per host."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from corral.agent import runtime
from corral.agent.client import ControlPlaneClient
from corral.agent.protocol import RuntimeSpec
from corral.api.app import create_app
from corral.control import clusters
from corral.control import repository as control_repository
from corral.control.context import ControlPlane
from corral.control.repository import Repository
from corral.runtime import DeployError, archives
from corral.runtime.hadoop import runtime_name
from corral.runtime.repository import Bundle, artifact
from tests.unit.helpers import make_spec

SPEC = RuntimeSpec(release="corral-1.0", spark_version="4.3.0", java_major=17, hadoop_version="3.5.0",
                   bundle="runtime-corral-1.0")


def fake_runtime(root: Path) -> Bundle:
    """Small stand-ins for the release's archives, laid out as the real ones."""
    spark = root / "spark"
    (spark / "pyspark" / "bin").mkdir(parents=True)
    (spark / "pyspark" / "bin" / "spark-class").write_text("#!/bin/sh\n")
    (spark / "py4j").mkdir()
    (spark / "py4j" / "__init__.py").write_text("")
    hadoop = root / "hadoop"
    (hadoop / "lib").mkdir(parents=True)
    (hadoop / "lib" / "hadoop-common-3.5.0.jar").write_bytes(b"jar" * 1000)
    made = [archives.write_archive(root / "out" / "spark-4.3.0-0123456789ab.tar",
                                   [("python/pyspark", spark / "pyspark"), ("python/py4j", spark / "py4j")]),
            archives.write_archive(root / "out" / f"{runtime_name()}.tar", [("", hadoop)])]
    return Bundle(tuple(artifact(p) for p in made))


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def __call__(self, level: str, code: str, message: str, component: str | None) -> None:
        self.seen.append((level, code, message))


@pytest.fixture
def client(cp: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ControlPlaneClient]:
    bundle = fake_runtime(tmp_path / "cp")
    monkeypatch.setattr(control_repository, "runtime_bundle", lambda settings, release: bundle)
    cp.repository = Repository(cp.settings)
    cluster, _ = clusters.create_cluster(cp, make_spec())
    with TestClient(create_app(cp, run_reconciler=False), base_url="http://testserver/agent/v1",
                    headers={"Authorization": f"Bearer {cluster.agent_token}"}) as http:
        agent_client = ControlPlaneClient("http://unused", cluster.id, "node", cluster.agent_token)
        agent_client._http = http  # the real routes, in process
        yield agent_client


def test_a_host_without_the_runtime_fetches_it_once(client: ControlPlaneClient, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_installed_pyspark", lambda version: None)  # as on a host
    events = Events()
    cache = tmp_path / "host" / "runtime"
    values = runtime.deploy(SPEC, cache, client, events)
    assert values["SPARK_HOME"] == str(cache / "spark-4.3.0-0123456789ab" / "python" / "pyspark")
    assert values["PYTHONPATH"] == str(cache / "spark-4.3.0-0123456789ab" / "python")
    assert values["HADOOP_HOME"] == str(cache / runtime_name())
    assert Path(values["SPARK_HOME"], "bin", "spark-class").is_file()
    assert Path(values["HADOOP_HOME"], "lib", "hadoop-common-3.5.0.jar").is_file()
    assert [code for _, code, _ in events.seen] == ["RUNTIME_FETCHED", "RUNTIME_FETCHED"]
    assert "bytes) from the control plane" in events.seen[0][2]
    second = Events()
    assert runtime.deploy(SPEC, cache, client, second) == values and second.seen == []  # the next node: nothing


class NoRepository:
    def repository_bundle(self, kind: str) -> list[object]:
        raise AssertionError("the local provider's agents fetch nothing")

    def repository_file(self, sha256: str) -> object:
        raise AssertionError("the local provider's agents fetch nothing")


def test_the_local_provider_uses_what_is_there(tmp_path: Path) -> None:
    (tmp_path / runtime_name()).mkdir()
    values = runtime.deploy(SPEC, tmp_path, NoRepository())  # type: ignore[arg-type]
    assert values["HADOOP_HOME"] == str(tmp_path / runtime_name()) and "PYTHONPATH" not in values
    import pyspark

    assert values["SPARK_HOME"] == str(Path(pyspark.__file__).parent)


def test_a_runtime_the_control_plane_cannot_build_is_a_deploy_error(cp: ControlPlane, client: ControlPlaneClient,
                                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(settings: object, release: str) -> Bundle:
        raise DeployError("the control plane has no pyspark")

    monkeypatch.setattr(control_repository, "runtime_bundle", missing)
    monkeypatch.setattr(runtime, "_installed_pyspark", lambda version: None)
    cp.repository = Repository(cp.settings)
    with pytest.raises(DeployError, match="cannot serve the runtime bundle runtime-corral-1.0: HTTP 503: .*no pyspark"):
        runtime.deploy(SPEC, tmp_path / "rt", client)
