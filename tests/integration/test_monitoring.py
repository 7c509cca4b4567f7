"""Monitoring on a real Hadoop + Spark + Hive cluster (issue 13 §5): every daemon's
Prometheus endpoint answers with Prometheus text and service discovery lists exactly the
running cluster's daemons; the control plane's own /metrics carries the agents' node
metrics; the built-in history has AppsRunning and allocated memory during a Spark job,
keeps its samples across a control-plane kill -9, and stays within its (here shortened)
retention; after terminate nothing is listed.

One cluster for the module (1 MASTER + 2 CORE, dfs.replication 1), on a control plane of
the module's own whose history keeps full resolution for 60 s and 20 s averages for 120 s,
so the bound is reached while the module runs (the retention test comes late, when it has
been). Tests run in file order; the last terminates the cluster."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import (HADOOP_SPEC, HTTP, ControlPlaneProcess, cluster_processes, jvm_main_class,
                                        run_cli, with_test_jvm_options)
from tests.prometheus import PrometheusServer
from tests.webhook_receiver import Receiver, receiving, refusing_port

pytestmark = pytest.mark.integration

RETENTION = {"CORRAL_METRICS_RAW_RETENTION": "60s", "CORRAL_METRICS_ROLLUP_STEP": "20s",
             "CORRAL_METRICS_ROLLUP_RETENTION": "120s"}
# Rows a cluster may hold with RETENTION (corral.metrics.history): raw chunks of 20 s over
# 60 s and rolled-up chunks of 20 s over 120 s, each plus a sweep's period (60 s) of chunks
# not yet swept, the open one and one expiring.
SWEEP = 60
MAX_ROWS = ((60 + SWEEP) // 20 + 2) + ((120 + SWEEP) // 20 + 2)
HOLD_JOB = """
import sys, time
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("monitoring-hold").getOrCreate()
n, delay = int(sys.argv[1]), float(sys.argv[2])
print("SUM", spark.sparkContext.parallelize(range(n), n).map(lambda x: (time.sleep(delay), x)[1]).sum())
"""
SPEC = {**HADOOP_SPEC, "name": "monitored", "services": ["hdfs", "yarn", "mapreduce", "spark", "hive"],
        "configurations": [{"classification": "hdfs-site", "properties": {"dfs.replication": "1"}}]}
# Per node: (service, component) of each daemon with a Prometheus endpoint, and how many.
MASTER_ENDPOINTS = {("hdfs", "namenode"): 1, ("yarn", "resourcemanager"): 1, ("yarn", "web-proxy"): 1,
                    ("mapreduce", "jobhistoryserver"): 1, ("spark", "sql-endpoint"): 2}
CORE_ENDPOINTS = {("hdfs", "datanode"): 1, ("yarn", "nodemanager"): 1}


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlaneProcess]:
    cp = ControlPlaneProcess(tmp_path_factory.mktemp("monitoring") / "home")
    cp.env.update(RETENTION)
    cp.home.mkdir()
    cp.start()
    yield cp
    cp.cleanup()


@pytest.fixture(scope="module")
def cluster(plane: ControlPlaneProcess) -> dict[str, Any]:
    created = plane.create(with_test_jvm_options(SPEC))
    return plane.wait_cluster(created["id"], ("WAITING",), timeout=240)


def _targets(plane: ControlPlaneProcess, cluster_id: str) -> list[dict[str, Any]]:
    response = plane.http.get("/monitoring/targets")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    return [g for g in response.json() if g["labels"]["cluster_id"] == cluster_id]


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _metrics(plane: ControlPlaneProcess, cid: str, **params: str) -> dict[tuple[str, str | None], list[list[float]]]:
    response = plane.http.get(f"/clusters/{cid}/metrics", params=params)
    assert response.status_code == 200, response.text
    return {(s["metric"], s["node_id"]): s["points"] for s in response.json()["series"]}


def test_every_daemon_answers_prometheus_text_and_discovery_lists_exactly_them(
        plane: ControlPlaneProcess, cluster: dict[str, Any]) -> None:
    cid = cluster["id"]
    groups = _targets(plane, cid)
    listed: dict[tuple[str, str, str], int] = {}
    for group in groups:
        labels = group["labels"]
        assert labels["cluster_name"] == "monitored" and set(labels) >= {"node_id", "role", "service", "component"}
        key = (labels["node_id"], labels["service"], labels["component"])
        listed[key] = listed.get(key, 0) + 1
    expected: dict[tuple[str, str, str], int] = {}
    for node in cluster["nodes"]:
        for (service, component), count in (MASTER_ENDPOINTS if node["role"] == "MASTER" else CORE_ENDPOINTS).items():
            expected[(node["id"], service, component)] = count
    assert listed == expected
    addresses = {n["id"]: n["address"] for n in cluster["nodes"]}
    for group in groups:
        labels = group["labels"]
        (target,) = group["targets"]
        if labels["component"] != "sql-endpoint":  # the SQL endpoint's driver is reached through the web proxy
            assert target.rsplit(":", 1)[0] == addresses[labels["node_id"]]
        response = HTTP.get(f"http://{target}{labels['__metrics_path__']}")
        assert response.status_code == 200, (target, labels)
        families = _families(response.text)
        assert families, (target, labels["__metrics_path__"])
    master = next(n for n in cluster["nodes"] if n["role"] == "MASTER")["address"]
    namenode = _families(HTTP.get(f"http://{master}:9870/prom").text)
    live = [s.value for s in namenode["fs_namesystem_num_live_data_nodes"].samples]
    assert live and all(v == 2 for v in live)


@pytest.fixture(scope="module")
def prometheus(plane: ControlPlaneProcess, cluster: dict[str, Any],
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A real Prometheus with the configuration ``corral monitoring prometheus-config`` prints."""
    printed = run_cli(plane.env, "monitoring", "prometheus-config", "--scrape-interval", "5s", "--discovery-refresh", "5s")
    assert printed.returncode == 0, printed.stderr
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), printed.stdout)
    yield server
    server.stop()


def _allocated_mb(prometheus: PrometheusServer, cid: str) -> float | None:
    result = prometheus.query(f'max(queue_metrics_allocated_mb{{cluster_id="{cid}",queue="root"}})')
    return float(result[0]["value"][1]) if result else None


def test_prometheus_discovers_and_scrapes_the_cluster(plane: ControlPlaneProcess, cluster: dict[str, Any],
                                                      prometheus: PrometheusServer) -> None:
    cid = cluster["id"]
    wanted = {(g["targets"][0], g["labels"]["__metrics_path__"]) for g in _targets(plane, cid)}

    def scraped() -> set[tuple[str, str]]:
        up = set()
        for t in prometheus.targets():
            labels = t["labels"]
            if labels.get("cluster_id") == cid and t["health"] == "up":
                up.add((labels["instance"], t["discoveredLabels"]["__metrics_path__"]))
        return up

    def plane_job() -> list[dict[str, Any]]:
        return [t for t in prometheus.targets() if t["labels"]["job"] == "corral-control-plane"]

    prometheus_saw = plane.wait_for(lambda: (up := scraped()) >= wanted and up, 90, "Prometheus scraping every target")
    assert prometheus_saw == wanted
    # a static target, health "unknown" until its first scrape: that may come after the
    # discovered ones, so wait for it (a down plane stays down and fails here)
    plane.wait_for(lambda: (job := plane_job()) and all(t["health"] == "up" for t in job), 30,
                   "Prometheus scraping the control plane")
    core = len([n for n in cluster["nodes"] if n["role"] == "CORE"])
    live = prometheus.query(f'max(fs_namesystem_num_live_data_nodes{{cluster_id="{cid}",component="namenode"}})')
    assert [float(r["value"][1]) for r in live] == [core]
    nodes = prometheus.query(f'count(corral_node_memory_used_bytes{{cluster_id="{cid}"}})')
    assert [float(r["value"][1]) for r in nodes] == [len(cluster["nodes"])]


def test_the_control_plane_exposes_its_own_and_the_nodes_metrics(plane: ControlPlaneProcess,
                                                                 cluster: dict[str, Any]) -> None:
    def node_gauges() -> dict[str, float]:
        families = _families(httpx.get(f"{plane.url}/metrics", timeout=10).text)
        family = families.get("corral_node_memory_used_bytes")
        return {s.labels["node_id"]: s.value for s in family.samples} if family else {}

    ids = {n["id"] for n in cluster["nodes"]}
    memory = plane.wait_for(lambda: (g := node_gauges()) and set(g) == ids and g, 60, "every node's memory")
    assert all(v > 50 << 20 for v in memory.values())  # each node's own JVMs: far more than 50 MiB
    families = _families(httpx.get(f"{plane.url}/metrics", timeout=10).text)
    clusters = {s.labels["state"]: s.value for s in families["corral_clusters"].samples}
    assert clusters["WAITING"] == 1
    requests = [s for s in families["corral_api_request_duration_seconds"].samples
                if s.name.endswith("_count") and s.labels.get("route") == "/api/v1/clusters/{cluster_id}"]
    assert requests and requests[0].value >= 1


def test_history_during_a_spark_job_and_across_a_kill9(plane: ControlPlaneProcess, cluster: dict[str, Any],
                                                      prometheus: PrometheusServer, tmp_path: Path) -> None:
    cid = cluster["id"]
    idle = plane.wait_for(lambda: _allocated_mb(prometheus, cid), 60, "YARN's allocated memory in Prometheus")
    job = tmp_path / "hold.py"
    job.write_text(HOLD_JOB)
    step = plane.add_step(cid, "SPARK", [str(job), "4", "25"], name="hold")

    def busy() -> dict[tuple[str, str | None], list[list[float]]] | None:
        found = _metrics(plane, cid, names="AppsRunning,MemoryAllocatedMB", start="60s")
        running, allocated = found.get(("AppsRunning", None), []), found.get(("MemoryAllocatedMB", None), [])
        # The SQL endpoint is always one running application: the job makes two.
        return found if any(v >= 2 for _, v in running) and any(v > 0 for _, v in allocated) else None

    seen = plane.wait_for(busy, 120, "AppsRunning >= 2 and allocated memory in the history")
    # PromQL, from the ResourceManager's own /prom: the job's executors are allocated memory.
    plane.wait_for(lambda: (mb := _allocated_mb(prometheus, cid)) is not None and mb > idle, 60,
                   f"Prometheus to see more allocated memory than the idle {idle} MB")
    # The last 30 s: still at full resolution after the restart (60 s are kept so).
    before = [p for p in seen[("AppsRunning", None)] if p[0] >= seen[("AppsRunning", None)][-1][0] - 30]
    nodes = _metrics(plane, cid, names="CPUUtilization,MemoryUsedMB,DiskUsedGB", start="60s")
    for node in cluster["nodes"]:
        assert nodes.get(("MemoryUsedMB", node["id"])), node["id"]
        assert nodes.get(("DiskUsedGB", node["id"])), node["id"]
        assert any(v > 0 for _, v in nodes.get(("CPUUtilization", node["id"]), [])), node["id"]
    plane.kill9()
    plane.start()
    after = _metrics(plane, cid, names="AppsRunning", start=str(before[0][0] - 1), end=str(before[-1][0]))
    assert after[("AppsRunning", None)] == before  # every sample from before the kill, exactly
    newer = plane.wait_for(lambda: [p for p in _metrics(plane, cid, names="AppsRunning", start="30s")
                                    .get(("AppsRunning", None), []) if p[0] > before[-1][0] + 10], 60,
                           "samples from the restarted control plane")
    assert newer
    done = plane.wait_step(cid, step["id"], timeout=240)
    assert done["status"] == "COMPLETED", done


def test_a_mapreduce_steps_cost_is_the_resourcemanagers_report(plane: ControlPlaneProcess,
                                                                cluster: dict[str, Any]) -> None:
    cid = cluster["id"]
    step = plane.add_step(cid, "HADOOP_JAR", ["hadoop-mapreduce-examples.jar", "pi", "3", "1000"], name="pi")
    done = plane.wait_step(cid, step["id"], timeout=300)
    assert done["status"] == "COMPLETED", done
    (app,) = done["yarn_application_ids"]
    costed = plane.wait_for(lambda: (s := plane.step(cid, step["id"]))["cost"] and s, 90, "the step's cost")
    cost = costed["cost"]["applications"][app]
    master = next(n for n in cluster["nodes"] if n["role"] == "MASTER")["address"]
    report = HTTP.get(f"http://{master}:8088/ws/v1/cluster/apps/{app}").json()["app"]
    assert cost["memory_seconds"] == report["memorySeconds"] > 0
    assert cost["vcore_seconds"] == report["vcoreSeconds"] > 0
    assert cost["elapsed_seconds"] == report["elapsedTime"] / 1000
    assert cost["containers"] >= 3 + 1 + 1  # 3 maps, 1 reduce, the ApplicationMaster
    assert costed["cost"]["total"]["memory_seconds"] == report["memorySeconds"]
    described = run_cli(plane.env, "step", "describe", cid, step["id"])
    assert described.returncode == 0 and f"{report['memorySeconds']:,} MiB-s" in described.stdout, described.stdout


def _datanode(cluster_id: str, node_id: str) -> psutil.Process:
    (proc,) = [p for p in cluster_processes(cluster_id) if jvm_main_class(p).endswith(".DataNode")
               and p.environ().get("CORRAL_NODE_ID") == node_id]
    return proc


def _restart_datanode(plane: ControlPlaneProcess, cluster_id: str, node_id: str) -> None:
    """kill -9 its DataNode; its agent starts it again, and it sends a full block report."""
    old = _datanode(cluster_id, node_id)
    old.kill()
    old.wait(10)
    plane.wait_for(lambda: next((p for p in cluster_processes(cluster_id) if jvm_main_class(p).endswith(".DataNode")
                                 and p.environ().get("CORRAL_NODE_ID") == node_id and p.pid != old.pid), None),
                   60, f"{node_id}'s DataNode to be started again")


def _alert_bodies(receiver: Receiver, name: str) -> list[tuple[str, dict[str, Any]]]:
    return [(body["status"], alert) for body in receiver.bodies for alert in body["alerts"]
            if alert["labels"].get("alertname") == name]


def test_a_lost_block_fires_missing_blocks_once_and_resolves_once(plane: ControlPlaneProcess, cluster: dict[str, Any],
                                                                 tmp_path: Path) -> None:
    """Replication 1: the block's only replica moved aside and its DataNode restarted (its
    block report lacks it) is a missing block; put back and restarted, it is found."""
    cid = cluster["id"]
    with receiving() as receiver, refusing_port() as dead:
        for name, url in (("dead", dead), ("receiver", receiver.url)):  # the dead one first: it must delay nothing
            response = plane.http.post("/alerts/webhooks", json={"name": name, "url": url, "cluster_id": cid})
            assert response.status_code == 201, response.text
        data = tmp_path / "one-block.bin"
        data.write_bytes(os.urandom(1 << 20))
        put = plane.add_step(cid, "SHELL", [f"hdfs dfs -put {data} /monitoring-block.bin && "
                                            "hdfs fsck /monitoring-block.bin -files -blocks -locations"])
        done = plane.wait_step(cid, put["id"])
        assert done["status"] == "COMPLETED", plane.log(cid, put["id"], "stderr")[-2000:]
        report = plane.log(cid, put["id"])
        block = re.search(r"(blk_\d+)_\d+", report).group(1)  # type: ignore[union-attr]
        address = re.search(r"DatanodeInfoWithStorage\[([\d.]+):", report).group(1)  # type: ignore[union-attr]
        node = next(n for n in cluster["nodes"] if n["address"] == address)
        files = [f for f in (plane.home / "nodes" / cid / node["id"]).rglob(f"{block}*") if "finalized" in str(f)]
        assert len(files) == 2, files  # the block and its .meta
        aside = tmp_path / "aside"
        aside.mkdir()
        for f in files:
            shutil.move(str(f), aside / f.name)
        _restart_datanode(plane, cid, node["id"])
        firing = plane.wait_for(lambda: [a for a in plane.http.get("/alerts", params={"firing": "true", "cluster_id": cid})
                                         .json() if a["name"] == "MissingBlocks"], 120, "MissingBlocks FIRING")
        assert firing[0]["value"] >= 1
        fired_at = time.time()
        receiver.wait_for(1, timeout=15)
        assert time.time() - fired_at < 15  # the refusing webhook held nothing up
        assert [s for s, _ in _alert_bodies(receiver, "MissingBlocks")] == ["firing"]
        for f in files:
            shutil.move(str(aside / f.name), f)
        _restart_datanode(plane, cid, node["id"])
        plane.wait_for(lambda: [s for s, _ in _alert_bodies(receiver, "MissingBlocks")] == ["firing", "resolved"], 120,
                       "exactly one RESOLVED notification")
        time.sleep(12)  # a sample later: still exactly one of each
        ((_, fired), (_, resolved)) = _alert_bodies(receiver, "MissingBlocks")
        assert [s for s, _ in _alert_bodies(receiver, "MissingBlocks")] == ["firing", "resolved"]
        assert fired["labels"]["cluster_id"] == cid and fired["fingerprint"] == resolved["fingerprint"]
        assert resolved["endsAt"] > resolved["startsAt"]
        hooks = {w["name"]: w for w in plane.http.get("/alerts/webhooks", params={"cluster_id": cid}).json()}
        dead_deliveries = plane.http.get(f"/alerts/webhooks/{hooks['dead']['id']}/deliveries").json()
        assert dead_deliveries and all(d["state"] != "DELIVERED" for d in dead_deliveries)
        assert any(d["attempts"] >= 2 and d["last_error"] for d in dead_deliveries)  # retried, with the reason
        events = [e["code"] for e in plane.events(cid)]
        assert "ALERT_FIRING" in events and "ALERT_RESOLVED" in events
        fsck = plane.add_step(cid, "SHELL", ["hdfs fsck /monitoring-block.bin"])
        assert "HEALTHY" in plane.log(cid, plane.wait_step(cid, fsck["id"])["id"])


def test_the_history_stays_within_its_retention(plane: ControlPlaneProcess, cluster: dict[str, Any]) -> None:
    cid = cluster["id"]
    ready_at = datetime.fromisoformat(plane.cluster(cid)["timeline"]["ready_at"]).timestamp()
    time.sleep(max(0.0, ready_at + 150 - time.time()))  # past the rolled-up retention since sampling began
    database = plane.home / "corral.db"
    rows = []
    for _ in range(3):
        with sqlite3.connect(database) as db:
            rows.append(db.execute("SELECT count(*) FROM metric_chunks WHERE cluster_id = ?", (cid,)).fetchone()[0])
        time.sleep(5)
    assert 0 < max(rows) <= MAX_ROWS, rows
    points = _metrics(plane, cid, names="AppsRunning", start=str(ready_at - 10))[("AppsRunning", None)]
    oldest = points[0][0]
    assert oldest >= time.time() - 120 - 20 - SWEEP - 15, (oldest, time.time())  # retention, a chunk, a sweep, slack
    assert oldest > ready_at + 5  # the first samples are gone
    full = [t for t, _ in points if t >= time.time() - 50]
    assert len(full) >= 3 and all(b - a <= 11 for a, b in zip(full, full[1:]))  # 10 s points in the last minute


def test_after_terminate_nothing_is_listed(plane: ControlPlaneProcess, cluster: dict[str, Any]) -> None:
    cid = cluster["id"]
    plane.terminate(cid)
    assert _targets(plane, cid) == []
    families = _families(httpx.get(f"{plane.url}/metrics", timeout=10).text)
    family = families.get("corral_node_memory_used_bytes")
    assert not family or not [s for s in family.samples if s.labels.get("cluster_id") == cid]
