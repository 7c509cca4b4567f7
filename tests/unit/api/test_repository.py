"""/agent/v1/repository: bundles and their files for hosts, behind any live cluster's agent
token; unknown hashes and paths outside the repository are never served."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.control import clusters
from corral.control.context import ControlPlane
from corral.control.repository import Repository
from corral.runtime import repository, wheels
from corral.runtime.repository import Bundle
from corral.store.models import Cluster
from tests.unit.helpers import make_spec


@pytest.fixture
def caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CORRAL_WHEEL_CACHE", str(tmp_path / "wheels"))
    monkeypatch.setenv("CORRAL_ARCHIVE_CACHE", str(tmp_path / "archives"))
    deps = wheels.deps_dir()
    deps.mkdir(parents=True)
    (deps / "httpx-0.28.1-py3-none-any.whl").write_bytes(b"wheel bytes " * 5000)
    (tmp_path / "secret.txt").write_text("not for hosts")
    return tmp_path


@pytest.fixture
def api(cp: ControlPlane, caches: Path) -> Iterator[TestClient]:
    with TestClient(create_app(cp, run_reconciler=False), base_url="http://testserver/agent/v1") as client:
        yield client


def token_of(cp: ControlPlane, status: str | None = None) -> str:
    cluster, _ = clusters.create_cluster(cp, make_spec())
    with cp.store.session() as s:
        row = s.get(Cluster, cluster.id)
        assert row is not None
        if status:
            row.status = status
        return row.agent_token


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_agent_bundle_is_listed_and_each_file_served(api: TestClient, cp: ControlPlane) -> None:
    headers = auth(token_of(cp))
    listing = api.get("/repository/bundles/agent", headers=headers)
    assert listing.status_code == 200
    body = listing.json()
    names = [a["name"] for a in body["artifacts"]]
    assert names[0].startswith("corral-0.1.0+g") and names[1] == "httpx-0.28.1-py3-none-any.whl"
    assert body["digest"] == Bundle(tuple(repository.Artifact(a["name"], a["sha256"], a["size"], Path("/"))
                                          for a in body["artifacts"])).digest
    assert body["size"] == sum(a["size"] for a in body["artifacts"])
    for entry in body["artifacts"]:
        got = api.get(f"/repository/{entry['sha256']}", headers=headers)
        assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == entry["sha256"]
        assert len(got.content) == entry["size"]
    assert "path" not in str(body)  # the control plane's paths stay on the control plane


def test_a_range_request_resumes_a_download(api: TestClient, cp: ControlPlane) -> None:
    headers = auth(token_of(cp))
    entry = api.get("/repository/bundles/agent", headers=headers).json()["artifacts"][1]
    whole = api.get(f"/repository/{entry['sha256']}", headers=headers).content
    part = api.get(f"/repository/{entry['sha256']}", headers={**headers, "Range": "bytes=1000-"})
    assert part.status_code == 206 and part.content == whole[1000:]


@pytest.mark.parametrize("token", ["", "Bearer ", "Bearer wrong", "Basic abc"])
def test_a_missing_or_wrong_token_is_refused(api: TestClient, cp: ControlPlane, token: str) -> None:
    token_of(cp)
    sha = api.get("/repository/bundles/agent", headers=auth(token_of(cp))).json()["artifacts"][0]["sha256"]
    headers = {"Authorization": token} if token else {}
    assert api.get("/repository/bundles/agent", headers=headers).status_code == 401
    assert api.get(f"/repository/{sha}", headers=headers).status_code == 401


def test_a_terminated_clusters_token_is_refused(api: TestClient, cp: ControlPlane) -> None:
    assert api.get("/repository/bundles/agent", headers=auth(token_of(cp, "TERMINATED"))).status_code == 401
    assert api.get("/repository/bundles/agent", headers=auth(token_of(cp, "TERMINATING"))).status_code == 200


def test_unknown_hashes_and_paths_are_not_found(api: TestClient, cp: ControlPlane, caches: Path) -> None:
    headers = auth(token_of(cp))
    api.get("/repository/bundles/agent", headers=headers)
    secret = hashlib.sha256(b"not for hosts").hexdigest()
    for ref in ("0" * 64, secret, "..%2F..%2Fsecret.txt", "../../secret.txt", "%2E%2E/secret.txt",
                str(caches / "secret.txt"), "A" * 64):
        resp = api.get(f"/repository/{ref}", headers=headers)
        assert resp.status_code == 404, ref
        assert b"not for hosts" not in resp.content
    assert api.get("/repository/bundles/nothing", headers=headers).status_code == 404
    assert api.get("/repository/bundles/runtime-corral-0.1", headers=headers).status_code == 404


def test_files_are_found_by_hash_after_a_restart(api: TestClient, cp: ControlPlane) -> None:
    headers = auth(token_of(cp))
    sha = api.get("/repository/bundles/agent", headers=headers).json()["artifacts"][1]["sha256"]
    cp.repository = Repository(cp.settings)  # what a restarted control plane knows: the indexes
    assert api.get(f"/repository/{sha}", headers=headers).status_code == 200


def test_a_bundle_being_built_answers_503_with_retry_after(api: TestClient, cp: ControlPlane,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from corral.control import repository as control_repository

    release = threading.Event()
    monkeypatch.setattr(control_repository, "WAIT_SECONDS", 0.1)
    monkeypatch.setattr(control_repository, "runtime_bundle", lambda settings, rel: release.wait(10) and Bundle(()))
    cp.repository = Repository(cp.settings)
    headers = auth(token_of(cp))
    resp = api.get("/repository/bundles/runtime-corral-1.0", headers=headers)
    assert resp.status_code == 503 and resp.headers["retry-after"] == "5"
    release.set()
    cp.repository.bundle("runtime-corral-1.0", wait=5)  # the build in flight finishes
    assert api.get("/repository/bundles/runtime-corral-1.0", headers=headers).json()["artifacts"] == []
