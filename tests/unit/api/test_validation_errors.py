"""Malformed requests get a 422 naming the field, and never echo a value back: the value
may be a secret (FastAPI's own answer carries every bad input)."""

from __future__ import annotations

from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.control.context import ControlPlane
from tests.unit.helpers import spec_dict

SECRET = "s3cr3t-" + "x" * 600  # over the 512-character limit: refused by the schema itself


@pytest.fixture
def api(cp: ControlPlane) -> Iterator[TestClient]:
    with TestClient(create_app(cp, run_reconciler=False), base_url="http://testserver/api/v1") as client:
        yield client


@pytest.mark.parametrize(("path", "body", "loc"), [
    ("/clusters", spec_dict(object_storage={"access_key": "a", "secret_key": SECRET}),
     ["body", "object_storage", "secret_key"]),
    ("/clusters/c-nope/data/imports", {"from": "jdbc:postgresql://db/x", "to": "hive:t", "user": "u", "password": SECRET},
     ["body", "password"]),
    ("/clusters/c-nope/data/imports", {"from": "jdbc:postgresql://db/x", "to": "hive:t", "user": "u",
                                        "password": "s3cr3t-\x00"}, ["body", "password"]),
])
def test_a_refused_secret_is_named_never_shown(api: TestClient, path: str, body: dict, loc: list) -> None:
    resp = api.post(path, json=body)
    assert resp.status_code == 422
    assert "s3cr3t" not in resp.text
    assert [e["loc"] for e in resp.json()["detail"]] == [loc]


def test_a_nul_in_an_argument_is_refused_naming_it(api: TestClient) -> None:
    resp = api.post("/clusters/c-nope/steps", json={"steps": [{"type": "SHELL", "args": ["echo", "a\x00b"]}]})
    assert resp.status_code == 422
    (error,) = resp.json()["detail"]
    assert error["loc"] == ["body", "steps", 0, "args", 1] and "NUL" in error["msg"]


@pytest.mark.parametrize(("path", "body", "loc"), [
    ("/clusters", spec_dict(name="a\x00b"), ["body", "name"]),
    ("/clusters", spec_dict(name="two\nlines"), ["body", "name"]),
    ("/clusters", spec_dict(name="esc\x1b[31m"), ["body", "name"]),
    ("/clusters", spec_dict(bootstrap_actions=[{"name": "b\tx", "path": "/x.sh"}]), ["body", "bootstrap_actions", 0, "name"]),
    ("/clusters/c-nope/steps", {"steps": [{"type": "SHELL", "name": "s\u2028t", "args": ["true"]}]},
     ["body", "steps", 0, "name"]),
    ("/clusters/c-nope/data/imports", {"from": "s3a://b/x", "to": "/x", "name": "n\rm"}, ["body", "name"]),
])
def test_names_with_control_characters_are_refused_naming_the_field(api: TestClient, path: str, body: dict,
                                                                     loc: list) -> None:
    resp = api.post(path, json=body)
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["detail"]
    assert error["loc"] == loc and "control characters" in error["msg"]
    assert api.get("/clusters").json() == []  # nothing half-created


def test_names_keep_any_printable_text(api: TestClient) -> None:
    resp = api.post("/clusters", json=spec_dict(name="Straße · ETL (nightly) 🌙", steps=[{"type": "SHELL", "name": "ünï ✓", "args": ["true"]}]))
    assert resp.status_code in (200, 201), resp.text
    assert resp.json()["name"] == "Straße · ETL (nightly) 🌙"
