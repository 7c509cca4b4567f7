"""/api/v1/hosts: status codes, field-named refusals, paging, and a private key that no
response carries."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from corral.api.app import create_app
from corral.control.context import ControlPlane
from corral.paging import NEXT_MARKER_HEADER
from corral.store.models import Host
from tests.unit.hosts.fakessh import FakeSsh, key_of, use_fake_ssh


@pytest.fixture
def ssh(cp: ControlPlane) -> FakeSsh:
    fake = use_fake_ssh(cp)
    for i in range(5, 9):
        fake.host(f"198.18.0.{i}")
    return fake


@pytest.fixture
def api(cp: ControlPlane, ssh: FakeSsh) -> Iterator[TestClient]:
    with TestClient(create_app(cp, run_reconciler=False), base_url="http://testserver/api/v1") as client:
        yield client


@pytest.fixture(scope="module")
def key_text(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("keys")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "k")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pw", "-f", str(d / "locked")], check=True)
    return {"plain": (d / "k").read_text(), "locked": (d / "locked").read_text()}


def test_add_answers_202_without_the_key(api: TestClient, key_text: dict[str, str]) -> None:
    resp = api.post("/hosts", json={"address": "198.18.0.5", "name": "h1", "private_key": key_text["plain"],
                                    "labels": {"rack": "r1"}, "cores": 2, "memory": "4g"})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert "private_key" not in body and "PRIVATE KEY" not in resp.text and body["has_private_key"] is True
    assert (body["status"], body["check_pending"], body["cores"], body["memory_mb"]) == ("CHECKING", True, 2, 4096)
    assert (body["host_key"], body["host_key_fingerprint"]) == key_of(1)
    listed = api.get("/hosts").text
    assert "PRIVATE KEY" not in listed and "PRIVATE KEY" not in api.get("/hosts/h1").text


@pytest.mark.parametrize(("body", "loc"), [
    ({"address": "root@198.18.0.5"}, ["body", "address"]),
    ({"address": "198.18.0.5", "port": 70000}, ["body", "port"]),
    ({"address": "198.18.0.5", "user": "-x"}, ["body", "user"]),
    ({"address": "198.18.0.5", "memory": "lots"}, ["body", "memory"]),
    ({"address": "198.18.0.5", "labels": {"a b": "c"}}, ["body", "labels"]),
    ({"address": "198.18.0.5", "host_key_fingerprint": "SHA256:x"}, ["body", "host_key_fingerprint"]),
    ({"address": "198.18.0.5", "host_key_fingerprint": key_of(2)[1]}, ["body", "host_key_fingerprint"]),
])
def test_bad_input_is_422_naming_the_field(api: TestClient, body: dict, loc: list) -> None:
    resp = api.post("/hosts", json=body)
    assert resp.status_code == 422, resp.text
    assert [e["loc"] for e in resp.json()["detail"]] == [loc]
    assert api.get("/hosts").json() == []


def test_an_encrypted_key_is_422_naming_it_and_not_echoed(api: TestClient, key_text: dict[str, str]) -> None:
    resp = api.post("/hosts", json={"address": "198.18.0.5", "private_key": key_text["locked"]})
    assert resp.status_code == 422
    (error,) = resp.json()["detail"]
    assert error["loc"] == ["body", "private_key"] and "passphrase" in error["msg"]
    assert "PRIVATE KEY" not in resp.text


def test_conflicts_and_unknown_hosts(api: TestClient, cp: ControlPlane) -> None:
    assert api.post("/hosts", json={"address": "198.18.0.5", "name": "h"}).status_code == 202
    assert api.post("/hosts", json={"address": "198.18.0.6", "name": "h"}).status_code == 409
    assert api.get("/hosts/nope").status_code == 404
    assert api.post("/hosts/nope/check").status_code == 404
    with cp.store.session() as s:
        s.execute(update(Host).where(Host.name == "h").values(status="ALLOCATED", node_id="n-1", cluster_id="c-1"))
    resp = api.delete("/hosts/h")
    assert resp.status_code == 409 and "n-1" in resp.json()["detail"] and "c-1" in resp.json()["detail"]
    assert api.post("/hosts/h/drain").json()["status"] == "DRAINING"
    assert api.post("/hosts/h/check").status_code == 202


def test_list_pages_and_hides_removed_hosts(api: TestClient) -> None:
    for i, name in enumerate(("c", "a", "b")):
        assert api.post("/hosts", json={"address": f"198.18.0.{5 + i}", "name": name}).status_code == 202
    first = api.get("/hosts", params={"limit": 2})
    assert [h["name"] for h in first.json()] == ["a", "b"]
    rest = api.get("/hosts", params={"limit": 2, "marker": first.headers[NEXT_MARKER_HEADER]})
    assert [h["name"] for h in rest.json()] == ["c"] and NEXT_MARKER_HEADER not in rest.headers
    removed = api.delete("/hosts/b")
    assert removed.status_code == 200 and removed.json()["status"] == "REMOVED" and removed.json()["name"] == "b"
    assert [h["name"] for h in api.get("/hosts").json()] == ["a", "c"]
    assert [h["name"] for h in api.get("/hosts", params={"all": "true"}).json()] == ["a", "b", "c"]
    assert api.get(f"/hosts/{removed.json()['id']}").json()["status"] == "REMOVED"
    assert api.get("/hosts", params={"marker": "junk"}).status_code == 422


def test_drain_and_check_answers(api: TestClient, cp: ControlPlane) -> None:
    api.post("/hosts", json={"address": "198.18.0.5", "name": "h"})
    with cp.store.session() as s:
        s.execute(update(Host).where(Host.name == "h").values(status="READY"))
    drained = api.post("/hosts/h/drain")
    assert drained.status_code == 200 and drained.json()["status"] == "DRAINED"
    checked = api.post("/hosts/h/check")
    assert checked.status_code == 202 and checked.json()["status"] == "CHECKING"
    assert checked.json()["target"] == "DRAINED"


def test_the_answer_schema_has_no_private_key() -> None:
    from corral.api.routes_hosts import HostOut

    assert "private_key" not in HostOut.model_fields


def test_key_file_paths_never_leave_the_client(tmp_path: Path, api: TestClient) -> None:
    resp = api.post("/hosts", json={"address": "198.18.0.5", "private_key": str(tmp_path / "id")})
    assert resp.status_code == 422
