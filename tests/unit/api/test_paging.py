"""Paging of the API's lists and logs (``corral.paging``), through the real FastAPI app,
read with the clients' own readers (``corral.cli.paging``). Sizes sit on both sides of each
page boundary: 1 MiB of log and one byte more, 1000 items and one more."""

from __future__ import annotations

import time
from typing import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from corral.api.app import create_app
from corral.cli.paging import list_all, read_log
from corral.control import clusters, events, steps
from corral.control.context import ControlPlane
from corral.domain.spec import StepRequest
from corral.paging import DEFAULT_LIMIT, NEXT_MARKER_HEADER, NEXT_OFFSET_HEADER, encode_marker
from corral.store.models import Cluster
from tests.unit.helpers import make_spec

MIB = 1 << 20


@pytest.fixture
def api(cp: ControlPlane) -> Iterator[TestClient]:
    with TestClient(create_app(cp, run_reconciler=False), base_url="http://testserver/api/v1") as client:
        yield client


def new_cluster(cp: ControlPlane, **overrides: object) -> str:
    cluster, _ = clusters.create_cluster(cp, make_spec(**overrides))
    return cluster.id


def add_shell_steps(cp: ControlPlane, cluster_id: str, count: int) -> None:
    step = StepRequest.model_validate({"type": "SHELL", "args": ["true"]})
    for start in range(0, count, 256):
        steps.add_steps(cp, cluster_id, [step] * min(256, count - start))


def add_events(cp: ControlPlane, cluster_id: str, count: int) -> None:
    with cp.store.session() as s:
        for i in range(count):
            events.record(s, cluster_id, "TEST_EVENT", f"event {i}")


def clone_clusters(cp: ControlPlane, template_id: str, count: int, created_at: float | None = None,
                   status: str = "WAITING", prefix: str = "c-clone") -> list[str]:
    """``count`` cluster rows like the template (without nodes): creating that many through
    ``create_cluster`` would take seconds."""
    with cp.store.session() as s:
        row = s.scalars(select(Cluster).where(Cluster.id == template_id)).one()
        base = {c.key: getattr(row, c.key) for c in Cluster.__table__.columns}
        ids = [f"{prefix}{i:05d}" for i in range(count)]
        s.execute(insert(Cluster), [{**base, "id": cid, "client_token": None, "status": status,
                                     "created_at": created_at if created_at is not None else row.created_at + 1 + i}
                                    for i, cid in enumerate(ids)])
    return ids


@pytest.mark.parametrize("size", [0, 1, MIB - 1, MIB, MIB + 1, 2 * MIB + 1])
def test_a_log_is_read_whole_across_its_pages(cp: ControlPlane, api: TestClient, size: int) -> None:
    cid = new_cluster(cp)
    add_shell_steps(cp, cid, 1)
    step_id = steps.list_steps(cp, cid)[0].id
    data = bytes(i % 251 for i in range(size))
    cp.logs.append(cid, step_id, "stdout", 0, data)
    path = f"/clusters/{cid}/steps/{step_id}/logs/stdout"
    first = api.get(path)
    assert len(first.content) == min(size, MIB)  # a page is at most 1 MiB by default
    assert first.headers[NEXT_OFFSET_HEADER] == str(min(size, MIB))
    assert read_log(api, path) == data


def test_step_list_pages_past_1000_steps(cp: ControlPlane, api: TestClient) -> None:
    cid = new_cluster(cp)
    add_shell_steps(cp, cid, DEFAULT_LIMIT)
    exactly = api.get(f"/clusters/{cid}/steps")
    assert len(exactly.json()["steps"]) == DEFAULT_LIMIT and NEXT_MARKER_HEADER not in exactly.headers
    add_shell_steps(cp, cid, 1)
    first = api.get(f"/clusters/{cid}/steps")
    assert len(first.json()["steps"]) == DEFAULT_LIMIT  # an old client's first page: the list as before
    rest = api.get(f"/clusters/{cid}/steps", params={"marker": first.headers[NEXT_MARKER_HEADER]})
    assert [s["id"] for s in rest.json()["steps"]] == [steps.list_steps(cp, cid)[-1].id]
    assert NEXT_MARKER_HEADER not in rest.headers
    every = list_all(api, f"/clusters/{cid}/steps", key="steps")
    assert [s["id"] for s in every] == [s.id for s in steps.list_steps(cp, cid)] and len(every) == DEFAULT_LIMIT + 1
    # with a state filter, pages hold only matching steps
    assert len(list_all(api, f"/clusters/{cid}/steps", [("state", "PENDING")], key="steps", page_size=7)) == 1001
    assert list_all(api, f"/clusters/{cid}/steps", [("state", "FAILED")], key="steps", page_size=7) == []


def test_events_page_past_1000_and_after_still_follows(cp: ControlPlane, api: TestClient) -> None:
    cid = new_cluster(cp)
    before = len(clusters.list_events(cp, cid, limit=None))
    add_events(cp, cid, DEFAULT_LIMIT + 1 - before)
    every = list_all(api, f"/clusters/{cid}/events")
    assert [e["id"] for e in every] == [e.id for e in clusters.list_events(cp, cid, limit=None)]
    assert len(every) == DEFAULT_LIMIT + 1
    assert NEXT_MARKER_HEADER in api.get(f"/clusters/{cid}/events").headers
    # `after` (an event id) keeps working for followers, alone and with a marker
    tail = api.get(f"/clusters/{cid}/events", params={"after": every[-3]["id"]}).json()
    assert [e["id"] for e in tail] == [e["id"] for e in every[-2:]]
    paged = list_all(api, f"/clusters/{cid}/events", [("after", every[-6]["id"])], page_size=2)
    assert [e["id"] for e in paged] == [e["id"] for e in every[-5:]]


def test_cluster_pages_are_keyset_pages(cp_any: ControlPlane) -> None:
    cp = cp_any
    with TestClient(create_app(cp, run_reconciler=False), base_url="http://testserver/api/v1") as api:
        template = new_cluster(cp)
        tied = clone_clusters(cp, template, 4, created_at=time.time() - 100)  # one created_at: ordered by id
        newest_first = [template, *sorted(tied, reverse=True)]
        assert [c["id"] for c in list_all(api, "/clusters", page_size=2)] == newest_first
        assert [c["id"] for c in list_all(api, "/clusters", page_size=1)] == newest_first
        # a cluster created between two pages appears before the first page: no repeat, no gap
        first = api.get("/clusters", params={"limit": 2})
        new_cluster(cp, name="later")
        rest = list_all(api, "/clusters", [("marker", first.headers[NEXT_MARKER_HEADER])], page_size=2)
        assert [c["id"] for c in first.json()] + [c["id"] for c in rest] == newest_first


def test_cluster_list_pages_past_1000_clusters(cp: ControlPlane, api: TestClient) -> None:
    template = new_cluster(cp)
    clone_clusters(cp, template, DEFAULT_LIMIT)
    first = api.get("/clusters")
    assert len(first.json()) == DEFAULT_LIMIT and NEXT_MARKER_HEADER in first.headers
    every = list_all(api, "/clusters")
    assert len(every) == DEFAULT_LIMIT + 1 and every[-1]["id"] == template
    assert len({c["id"] for c in every}) == len(every)


@pytest.mark.parametrize("path, marker", [
    ("/clusters", "not-a-marker"),
    ("/clusters", encode_marker("steps", (3,))),  # another list's
    ("/clusters", encode_marker("clusters", ("x", "c-1"))),  # changed by hand: a text time
    ("/clusters/{cid}/steps", encode_marker("steps", (True,))),
    ("/clusters/{cid}/events", encode_marker("clusters", (1.0, "c-1"))),
])
def test_a_bad_marker_is_refused_naming_it(cp: ControlPlane, api: TestClient, path: str, marker: str) -> None:
    cid = new_cluster(cp)
    resp = api.get(path.format(cid=cid), params={"marker": marker})
    assert resp.status_code == 422, resp.text
    assert [d["loc"] for d in resp.json()["detail"]] == [["query", "marker"]]
    assert "not a marker of this list" in resp.json()["detail"][0]["msg"]


@pytest.mark.parametrize("limit", [0, 10001])
def test_limit_out_of_range_is_refused(cp: ControlPlane, api: TestClient, limit: int) -> None:
    resp = api.get("/clusters", params={"limit": limit})
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["query", "limit"]
