"""The agents' long poll (``GET /agent/v1/nodes/{id}/plan?after=&wait=``): a bump answers
at once; a version raised without a bump reaches it through the shared re-check; nothing
newer is 204 after the wait; a bad token is refused."""

from __future__ import annotations

import threading
import time
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from corral.api import routes_agent
from corral.api.app import create_app
from corral.control import plan_versions
from corral.control.context import ControlPlane
from corral.store.models import Cluster, bump_plan_version
from tests.unit.control.test_agents import setup_cluster


@pytest.fixture
def api(cp: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(routes_agent, "RECHECK_SECONDS", 0.3)
    monkeypatch.setattr(plan_versions, "MAX_AGE_SECONDS", 0.2)
    with TestClient(create_app(cp, run_reconciler=False)) as client:
        yield client


def _poll(api: TestClient, node: str, token: str, after: int, wait: float) -> tuple[int, int | None, float]:
    t0 = time.monotonic()
    resp = api.get(f"/agent/v1/nodes/{node}/plan", params={"after": after, "wait": wait},
                   headers={"Authorization": f"Bearer {token}"})
    return resp.status_code, resp.json()["version"] if resp.status_code == 200 else None, time.monotonic() - t0


def test_nothing_newer_is_204_after_the_wait_and_a_bad_token_is_refused(api: TestClient, cp: ControlPlane) -> None:
    cid, node, token = setup_cluster(cp)
    status, version, _ = _poll(api, node, token, 0, 0)
    assert status == 200 and version is not None
    status, _, took = _poll(api, node, token, version, 1.0)
    assert status == 204 and took >= 1.0
    assert _poll(api, node, "wrong", version, 1.0)[0] == 401


def test_a_version_raised_without_a_bump_reaches_a_waiting_poll(api: TestClient, cp: ControlPlane) -> None:
    cid, node, token = setup_cluster(cp)
    version = _poll(api, node, token, 0, 0)[1]
    assert version is not None

    def forgetful_writer() -> None:  # raises the version and never calls notifier.bump
        time.sleep(0.8)
        with cp.store.session() as s:
            bump_plan_version(s, s.get(Cluster, cid))  # type: ignore[arg-type]

    writer = threading.Thread(target=forgetful_writer)
    writer.start()
    status, newer, took = _poll(api, node, token, version, 10.0)
    writer.join()
    assert status == 200 and newer == version + 1
    assert 0.8 <= took < 3.0  # found by a re-check, long before the 10 s wait ends
