"""The whole control plane on a real PostgreSQL store: a cluster, a step, a kill -9, terminate."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import ControlPlaneProcess, cluster_processes

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


def test_control_plane_on_postgresql(tmp_path: Path, fresh_pg_url: str) -> None:
    cp = ControlPlaneProcess(tmp_path / "home")
    cp.home.mkdir()
    cp.env["CORRAL_DATABASE_URL"] = fresh_pg_url
    cp.start()
    try:
        assert not (cp.home / "corral.db").exists(), "the SQLite default must not be used"
        cid = cp.create(name="on-postgres", node_groups=[
            {"role": "MASTER", "instance_type": "local.small", "count": 1},
            {"role": "CORE", "instance_type": "local.small", "count": 1}])["id"]
        cp.wait_cluster(cid, ("WAITING",))
        password = fresh_pg_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        env_step = cp.wait_step(cid, cp.add_step(cid, "SHELL", ["env"])["id"])
        assert "PATH=" in cp.log(cid, env_step["id"])
        assert password not in cp.log(cid, env_step["id"]), "the database password leaked into a step"
        step = cp.add_step(cid, "SHELL", ["sleep 2; echo from-postgres"])
        cp.wait_for(lambda: cp.step(cid, step["id"])["status"] == "RUNNING", 30, "the step to run")
        cp.kill9()
        cp.start()
        assert cp.wait_step(cid, step["id"])["status"] == "COMPLETED"
        assert cp.log(cid, step["id"]) == "from-postgres\n"
        assert cp.terminate(cid)["status"] == "TERMINATED"
        assert cluster_processes(cid) == []
    finally:
        cp.cleanup()
