"""Uploading artifacts (``HEAD``/``PUT /api/v1/artifacts/{sha256}``) and naming them in
steps: the control plane checks content and size, and never reads its own disk for a
client's path."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.control.context import ControlPlane
from corral.store.models import Step
from tests.unit.helpers import count_rows, spec_dict


@pytest.fixture
def api(cp: ControlPlane) -> Iterator[TestClient]:
    with TestClient(create_app(cp, run_reconciler=False), base_url="http://testserver/api/v1") as client:
        yield client


def stored(cp: ControlPlane) -> list[str]:
    return sorted(p.name for p in cp.settings.artifacts_dir.rglob("*") if p.is_file())


def test_upload_then_head_then_upload_again(api: TestClient, cp: ControlPlane) -> None:
    data = b"lookup\n" * 1000
    sha = hashlib.sha256(data).hexdigest()
    head = api.head(f"/artifacts/{sha}")
    assert head.status_code == 404
    assert head.headers["x-corral-artifact-limit"] == str(cp.settings.max_artifact_bytes)
    put = api.put(f"/artifacts/{sha}", content=data)
    assert (put.status_code, put.json()) == (201, {"sha256": sha, "size": len(data)})
    head = api.head(f"/artifacts/{sha}")
    assert (head.status_code, head.headers["content-length"]) == (200, str(len(data)))
    assert api.put(f"/artifacts/{sha}", content=data).status_code == 200  # already there: nothing to do
    assert cp.artifacts.path(sha).read_bytes() == data


def test_a_streamed_upload_without_a_length_is_stored(api: TestClient, cp: ControlPlane) -> None:
    pieces = [bytes([i]) * 700_000 for i in range(4)]  # more than one write buffer
    sha = hashlib.sha256(b"".join(pieces)).hexdigest()
    assert api.put(f"/artifacts/{sha}", content=iter(pieces)).status_code == 201
    assert cp.artifacts.path(sha).read_bytes() == b"".join(pieces)


def test_content_that_does_not_match_its_hash_is_refused(api: TestClient, cp: ControlPlane) -> None:
    claimed = hashlib.sha256(b"what I said").hexdigest()
    resp = api.put(f"/artifacts/{claimed}", content=b"what I sent")
    assert resp.status_code == 422
    (detail,) = resp.json()["detail"]
    assert detail["loc"] == ["path", "sha256"]
    assert hashlib.sha256(b"what I sent").hexdigest() in detail["msg"]
    assert stored(cp) == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_upload_over_the_limit_is_refused(api: TestClient, cp: ControlPlane, chunked: bool) -> None:
    cp.settings = dataclasses.replace(cp.settings, max_artifact_bytes=1000)
    data = b"x" * 1001
    sha = hashlib.sha256(data).hexdigest()
    resp = api.put(f"/artifacts/{sha}", content=iter([data[:500], data[500:]]) if chunked else data)
    assert resp.status_code == 413
    assert "CORRAL_MAX_ARTIFACT_MB" in resp.json()["detail"]
    assert stored(cp) == []
    assert api.head(f"/artifacts/{sha}").status_code == 404


@pytest.mark.parametrize("bad", ["ABC", "0" * 63, "g" * 64])
def test_a_non_hash_is_refused(api: TestClient, bad: str) -> None:
    assert api.put(f"/artifacts/{bad}", content=b"x").status_code == 422
    assert api.head(f"/artifacts/{bad}").status_code == 422


def test_a_step_naming_the_servers_own_file_is_refused_and_nothing_is_read(api: TestClient, cp: ControlPlane) -> None:
    """A REST user cannot ship the control plane's files into a cluster: a path is only a
    name; the content must be uploaded by the client."""
    cid = api.post("/clusters", json=spec_dict()).json()["id"]
    own = hashlib.sha256(Path("/etc/hostname").read_bytes()).hexdigest()
    for step in ({"type": "SPARK", "args": ["--files", "/etc/hostname", "local:/opt/app.py"]},
                 {"type": "SPARK", "args": ["--files", "/etc/hostname", "local:/opt/app.py"],
                  "files": {"/etc/hostname": own}},
                 {"type": "SHELL", "args": ["/etc/rc.local.sh"]}):
        resp = api.post(f"/clusters/{cid}/steps", json={"steps": [step]})
        assert resp.status_code == 422, resp.text
        (detail,) = resp.json()["detail"]
        assert detail["loc"][:4] == ["body", "steps", 0, "args"] and "not uploaded" in detail["msg"], detail
    assert count_rows(cp.store, Step) == 0
    assert stored(cp) == []


def test_a_step_with_its_files_uploaded_is_queued_and_shows_them(api: TestClient, cp: ControlPlane) -> None:
    cid = api.post("/clusters", json=spec_dict()).json()["id"]
    lookup = b"a=1\n"
    sha = hashlib.sha256(lookup).hexdigest()
    assert api.put(f"/artifacts/{sha}", content=lookup).status_code == 201
    step = {"type": "SPARK", "args": ["--files", "/client/lookup.txt#lookup.txt", "local:/opt/app.py"],
            "files": {"/client/lookup.txt": sha}}
    resp = api.post(f"/clusters/{cid}/steps", json={"steps": [step]})
    assert resp.status_code == 201, resp.text
    assert resp.json()["steps"][0]["files"] == {"/client/lookup.txt": sha}
    # a files entry no argument names is a mistake worth hearing about
    stray = {**step, "files": {"/client/lookup.txt": sha, "/client/other.txt": sha}}
    resp = api.post(f"/clusters/{cid}/steps", json={"steps": [stray]})
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"] == ["body", "steps", 0, "files", "/client/other.txt"]
