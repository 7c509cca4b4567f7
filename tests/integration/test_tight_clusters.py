"""The tightest clusters Corral accepts run every kind of step beside the services that
always run (the SQL endpoint holds a YARN ApplicationMaster for its whole life): a Spark
step in client and in cluster mode, a MapReduce step and SQL queries, on Hive clusters
with the smallest CORE nodes Corral sizes for — two local.small here, one local.medium in
test_data's second cluster, which runs the same steps and checks (tests/integration/
tight.py) — and on standalone Spark with one local.small; specs that could never run a
step are refused (corral.services.sizing; issue 10 §1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import ControlPlaneProcess, cluster_processes
from tests.integration.tight import HIVE_ON_YARN, check_yarn_sizes, run_every_step_type, spec

pytestmark = pytest.mark.integration


def test_hive_on_yarn_with_two_small_core_nodes(shared_cp: ControlPlaneProcess, tmp_path: Path) -> None:
    cluster = shared_cp.create(spec("tight-2", HIVE_ON_YARN, "local.small", 2))
    cid = cluster["id"]
    try:
        cluster = shared_cp.wait_cluster(cid, ("WAITING",), timeout=300)
        check_yarn_sizes(shared_cp, cluster)
        run_every_step_type(shared_cp, cluster, tmp_path, on_yarn=True)
    finally:
        shared_cp.terminate(cid)
    assert cluster_processes(cid) == []


def test_standalone_hive_with_one_small_core_node(shared_cp: ControlPlaneProcess, tmp_path: Path) -> None:
    cluster = shared_cp.create(spec("tight-standalone", ["hdfs", "spark", "hive"], "local.small", 1))
    cid = cluster["id"]
    try:
        cluster = shared_cp.wait_cluster(cid, ("WAITING",), timeout=300)
        run_every_step_type(shared_cp, cluster, tmp_path, on_yarn=False)
    finally:
        shared_cp.terminate(cid)


def test_specs_that_could_never_run_a_step_are_refused(shared_cp: ControlPlaneProcess) -> None:
    resp = shared_cp.http.post("/clusters", json=spec("too-small", HIVE_ON_YARN, "local.small", 1))
    assert resp.status_code == 422
    (error,) = [e for e in resp.json()["detail"] if "SPARK" in e["msg"]]
    assert error["loc"][-3:] == ["node_groups", 1, "instance_type"]
    assert "beside the SQL endpoint's ApplicationMaster" in error["msg"]
    assert all(c["name"] != "too-small" for c in shared_cp.http.get("/clusters").json())
