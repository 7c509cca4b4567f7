"""Monitoring benchmarks (issue 13 §6; not timed tests): `.venv/bin/python bench/monitoring.py`.

1. Cost of monitoring: two idle 1 MASTER + 2 CORE Hadoop + Spark clusters side by side,
   each on a control plane of its own, one with monitoring on (the default: the sampler
   every 10 s into the stored history, agents measuring their nodes every 10 s, the
   daemons' Prometheus endpoints enabled) and one with ``monitoring: false``. In each
   window of --seconds (300), the CPU time of every process of each side (its control
   plane, and every process carrying its cluster's CORRAL_CLUSTER_ID: agents, daemons),
   summed per process (user + system, and that of children they reaped), measured in the
   same window for both, --runs windows. Extra = (on - off) / window, in % of one core.
   Floor: <= 3 %.
2. Control plane under load: one control plane with 10 clusters of 20 nodes whose 200
   agents are simulated (each long-polls its plan and reports every 2 s with a node
   measurement, as a real agent does; AGENT_PROCESSES client processes play them), while 4 readers each GET /clusters/{id} of a random
   cluster every 0.4 s (10 reads/s: a few people and consoles watching clusters):
   latencies seen by the clients over --load-seconds after a warm-up, p50 and p99 of each.
   Floor: p99 < 100 ms for both, on the 2-core machine that also runs the load.

The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NODE_GROUPS, Server  # noqa: E402

SPEC = {"name": "bench-monitoring", "node_groups": NODE_GROUPS}
SETTLE_SECONDS = 60.0  # after WAITING: start-up work (class-data, first reports) is done
LOAD_CLUSTERS, LOAD_NODES = 10, 20  # 200 simulated agents
REPORT_SECONDS = 2.0  # corral.agent.agent.HEARTBEAT_SECONDS
READERS, READ_SECONDS = 4, 0.4
AGENT_PROCESSES = 4  # the simulated agents' client processes


# -- 1. cost of monitoring ---------------------------------------------------------------------

def side_processes(server: Server, cluster_id: str) -> list[psutil.Process]:
    """The control plane's process and every live process of its cluster."""
    found = [psutil.Process(server.proc.pid)]
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and proc.environ().get("CORRAL_CLUSTER_ID") == cluster_id:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def _cpu(proc: psutil.Process) -> float | None:
    try:
        t = proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system
    except psutil.Error:
        return None


class CpuMeter:
    """CPU seconds a set of processes spent in a window: each process's time at its last
    sighting minus at its first (a process started in the window counts from zero)."""

    def __init__(self, server: Server, cluster_id: str, window_start: float):
        self.server, self.cluster_id, self.start = server, cluster_id, window_start
        self.first: dict[tuple[int, float], float] = {}
        self.last: dict[tuple[int, float], float] = {}

    def look(self) -> None:
        for proc in side_processes(self.server, self.cluster_id):
            try:
                key = (proc.pid, proc.create_time())
            except psutil.Error:
                continue
            used = _cpu(proc)
            if used is None:
                continue
            self.first.setdefault(key, 0.0 if key[1] > self.start else used)
            self.last[key] = used

    def seconds(self) -> float:
        return sum(self.last[k] - self.first[k] for k in self.last)


def monitoring_cost(root: Path, runs: int, seconds: float) -> dict[str, Any]:
    on = Server(root / "on", subnet="127.91.0.0/16")
    off = Server(root / "off", subnet="127.92.0.0/16")
    try:
        cids = {}
        for name, server, monitored in (("on", on, True), ("off", off, False)):
            cid = server.create({**SPEC, "name": f"bench-monitoring-{name}", "monitoring": monitored})
            c = server.wait(cid, ("WAITING",), poll=0.5, timeout=600)
            if c["status"] != "WAITING":
                raise RuntimeError(f"{name}: cluster {c['status']}: {c['state_change_reason']}")
            cids[name] = cid
        print(f"both clusters WAITING; settling {SETTLE_SECONDS:.0f} s", flush=True)
        time.sleep(SETTLE_SECONDS)
        extra = []
        for run in range(runs):
            t0 = time.time()
            meters = {"on": CpuMeter(on, cids["on"], t0), "off": CpuMeter(off, cids["off"], t0)}
            while time.time() - t0 < seconds:
                for meter in meters.values():
                    meter.look()
                time.sleep(5.0)
            for meter in meters.values():
                meter.look()
            window = time.time() - t0
            used = {k: m.seconds() for k, m in meters.items()}
            extra.append(100.0 * (used["on"] - used["off"]) / window)
            print(f"run {run + 1}: CPU over {window:.0f} s: monitoring on {used['on']:.1f} s "
                  f"({100 * used['on'] / window:.2f} % of a core), off {used['off']:.1f} s "
                  f"({100 * used['off'] / window:.2f} %); extra {extra[-1]:.2f} % of one core", flush=True)
        on.terminate(cids["on"])
        off.terminate(cids["off"])
        return {"monitoring_extra_cpu_percent_of_core": [round(x, 2) for x in extra],
                "monitoring_extra_cpu_median_percent": round(statistics.median(extra), 2),
                "monitoring_extra_cpu_floor_percent": 3.0, "window_seconds": seconds}
    finally:
        for server in (on, off):
            try:
                for cid in list(server.live):
                    server.terminate(cid)
            finally:
                server.stop()


# -- 2. control plane under load -----------------------------------------------------------------

def seed_clusters(home: Path) -> list[dict[str, Any]]:
    """LOAD_CLUSTERS WAITING clusters of LOAD_NODES RUNNING nodes each, written straight into
    the home's store (no machine behind them: their agents are simulated); each node with
    its cluster's agent token. The nodes' addresses are in a subnet where nothing listens,
    so the sampler's questions to their daemons are refused at once."""
    os.environ["CORRAL_HOME"] = str(home)
    os.environ["CORRAL_LOCAL_SUBNET"] = "127.93.0.0/16"
    from corral.control import clusters  # noqa: PLC0415 - after the home is set
    from corral.control.context import ControlPlane  # noqa: PLC0415
    from corral.domain.spec import ClusterSpec  # noqa: PLC0415
    from corral.settings import Settings  # noqa: PLC0415
    from corral.store.models import Cluster  # noqa: PLC0415

    cp = ControlPlane.from_settings(Settings.from_env())
    seeded = []
    for i in range(LOAD_CLUSTERS):
        spec = ClusterSpec.model_validate({"name": f"load-{i}", "node_groups": [
            {"role": "MASTER", "instance_type": "local.small", "count": 1},
            {"role": "CORE", "instance_type": "local.small", "count": LOAD_NODES - 1}]})
        created, _ = clusters.create_cluster(cp, spec)
        with cp.store.session() as s:
            row = clusters.load_cluster(s, created.id)
            row.status, row.deadline_at, row.ready_at = "WAITING", None, time.time()
            for k, node in enumerate(row.nodes):
                node.status, node.address = "RUNNING", f"127.93.{i}.{k + 2}"
                node.directory = str(home / "nodes" / node.id)
            seeded.append({"id": row.id, "token": s.get(Cluster, row.id).agent_token,  # type: ignore[union-attr]
                           "nodes": [n.id for n in row.nodes]})
    cp.store.dispose()
    return seeded


def _report(node_id: str, version: int, components: list[str], previous_cpu: float) -> dict[str, Any]:
    gib = 1 << 30
    return {"node_id": node_id, "agent_pid": 4242, "plan_version": version, "phase": "RUNNING",
            "components": {name: {"status": "RUNNING", "pid": 5000 + i} for i, name in enumerate(components)},
            "metrics": {"at": time.time(), "scope": "node", "cpu_cores_used": previous_cpu, "vcpus": 1,
                        "memory_used_bytes": random.randint(1, 2) * gib, "memory_total_bytes": 2 * gib,
                        "processes": 12, "disks": [{"path": f"/nodes/{node_id}", "used_bytes": gib,
                                                    "free_bytes": 15 * gib, "total_bytes": 16 * gib}]}}


async def _agent(url: str, cluster: dict[str, Any], node_id: str, stop: float,
                 latencies: list[tuple[float, float]]) -> None:
    """One simulated agent until ``stop`` (epoch seconds); each report's (end time, seconds)."""
    headers = {"Authorization": f"Bearer {cluster['token']}"}
    async with httpx.AsyncClient(base_url=url + "/agent/v1", headers=headers, timeout=60) as http:
        plan = (await http.get(f"/nodes/{node_id}/plan", params={"after": 0, "wait": 0})).json()
        version, components = plan["version"], [c["name"] for c in plan.get("components", [])]

        async def poll() -> None:  # the long poll a real agent keeps open
            nonlocal version
            while time.time() < stop:
                resp = await http.get(f"/nodes/{node_id}/plan", params={"after": version, "wait": 20})
                if resp.status_code == 200:
                    version = resp.json()["version"]

        poller = asyncio.create_task(poll())
        await asyncio.sleep(random.uniform(0, REPORT_SECONDS))
        while time.time() < stop:
            t0 = time.perf_counter()
            resp = await http.post(f"/nodes/{node_id}/report", json=_report(node_id, version, components, 0.1))
            latencies.append((time.time(), time.perf_counter() - t0))
            resp.raise_for_status()
            await asyncio.sleep(REPORT_SECONDS)
        poller.cancel()


def _agents_process(url: str, agents: list[tuple[dict[str, Any], str]], stop: float) -> list[tuple[float, float]]:
    """A process of its own playing ``agents`` (each a (cluster, node id)) until ``stop``:
    every report's (end time, seconds)."""
    # Its own collector must not stop all its agents together and add the pause to every
    # latency in flight: the instrument's pauses are not the server's (corral.gc_tuning).
    from corral.gc_tuning import settle_heap  # noqa: PLC0415
    settle_heap()
    latencies: list[tuple[float, float]] = []

    async def run() -> None:
        await asyncio.gather(*(_agent(url, cluster, node, stop, latencies) for cluster, node in agents))

    asyncio.run(run())
    return latencies


async def _reader(url: str, ids: list[str], stop: float, latencies: list[tuple[float, float]]) -> None:
    async with httpx.AsyncClient(base_url=url + "/api/v1", timeout=60) as http:
        while time.time() < stop:
            t0 = time.perf_counter()
            (await http.get(f"/clusters/{random.choice(ids)}")).raise_for_status()
            latencies.append((time.time(), time.perf_counter() - t0))
            await asyncio.sleep(READ_SECONDS)


def _request_histogram(url: str) -> dict[str, dict[float, float]]:
    """Per route, the server's own corral_api_request_duration_seconds buckets (upper
    bound in seconds -> requests within it, cumulative) as it stands now."""
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    buckets: dict[str, dict[float, float]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text):
        if family.name == "corral_api_request_duration_seconds":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    route = buckets.setdefault(sample.labels["route"], {})
                    le = float(sample.labels["le"])
                    route[le] = route.get(le, 0.0) + sample.value
    return buckets


def _served(before: dict[str, dict[float, float]], after: dict[str, dict[float, float]],
            route: str) -> dict[str, float | None]:
    """What the server itself did for ``route`` between two histograms, apart from the
    clients' share of a latency: the share answered within 100 ms and the bucket bound
    its p99 falls under (seconds; None: past the largest)."""
    now, then = after.get(route, {}), before.get(route, {})
    counts = {le: now[le] - then.get(le, 0.0) for le in sorted(now)}
    total = counts.get(float("inf"), 0.0)
    if not total:
        return {"within_100ms": None, "p99_under_s": None}
    p99 = next((le for le, n in counts.items() if n >= 0.99 * total), None)
    return {"within_100ms": round(counts.get(0.1, 0.0) / total, 4), "p99_under_s": p99}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def control_plane_load(root: Path, seconds: float, warmup: float, database: str | None = None) -> dict[str, Any]:
    """``database``: a CORRAL_DATABASE_URL (None: SQLite in the home, the default)."""
    home = root / "load"
    home.mkdir(parents=True)
    if database:
        os.environ["CORRAL_DATABASE_URL"] = database
    seeded = seed_clusters(home)
    server = Server(home, subnet="127.93.0.0/16")
    try:
        agents = [(c, n) for c in seeded for n in c["nodes"]]
        started = time.time()
        measured_from, stop = started + warmup, started + warmup + seconds
        warm: list[dict[str, dict[float, float]]] = []  # the server's histogram when the warm-up ended
        read_latencies: list[tuple[float, float]] = []

        async def read() -> None:
            readers = [asyncio.create_task(_reader(server.url, [c["id"] for c in seeded], stop, read_latencies))
                       for _ in range(READERS)]
            await asyncio.sleep(warmup)
            warm.append(await asyncio.to_thread(_request_histogram, server.url))
            await asyncio.gather(*readers)

        # Real agents are processes of their own: the simulated ones are spread over a few,
        # so no single event loop queues every agent's request behind the others'.
        from corral.gc_tuning import settle_heap  # noqa: PLC0415 - the readers' process too
        settle_heap()
        with ProcessPoolExecutor(AGENT_PROCESSES, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_agents_process, server.url, agents[i::AGENT_PROCESSES], stop)
                       for i in range(AGENT_PROCESSES)]
            asyncio.run(read())
            report_latencies = [x for f in futures for x in f.result()]
        reports = [s for at, s in report_latencies if at >= measured_from]
        reads = [s for at, s in read_latencies if at >= measured_from]
        after = _request_histogram(server.url)
        figures = {"agent_reports": len(reports), "api_reads": len(reads),
                   "server_reports": _served(warm[0], after, "/agent/v1/nodes/{node_id}/report"),
                   "server_reads": _served(warm[0], after, "/api/v1/clusters/{cluster_id}"),
                   "report_p50_ms": round(1000 * _percentile(reports, 0.50), 1),
                   "report_p99_ms": round(1000 * _percentile(reports, 0.99), 1),
                   "read_p50_ms": round(1000 * _percentile(reads, 0.50), 1),
                   "read_p99_ms": round(1000 * _percentile(reads, 0.99), 1), "p99_floor_ms": 100.0,
                   "simulated_agents": sum(len(c["nodes"]) for c in seeded), "load_seconds": seconds}
        print(f"{figures['simulated_agents']} agents, {seconds:.0f} s: {len(reports)} reports, p50 "
              f"{figures['report_p50_ms']} ms, p99 {figures['report_p99_ms']} ms; {len(reads)} GET /clusters/{{id}}, "
              f"p50 {figures['read_p50_ms']} ms, p99 {figures['read_p99_ms']} ms", flush=True)
        return figures
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="windows of the cost measurement")
    parser.add_argument("--seconds", type=float, default=300.0, help="each window's length")
    parser.add_argument("--load-seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--only", choices=("cost", "load"), default=None)
    parser.add_argument("--postgres", action="store_true",
                        help="the load test's store on a throw-away PostgreSQL server (tests/postgres.py) as well")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as tmp:
        if args.only in (None, "load"):
            figures.update(control_plane_load(Path(tmp), args.load_seconds, args.warmup))
            if args.postgres:
                sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
                from tests.postgres import PostgresServer, find_bindir  # noqa: PLC0415 - only with --postgres

                server = PostgresServer(bindir=find_bindir())
                server.start()
                try:
                    on_pg = control_plane_load(Path(tmp) / "pg", args.load_seconds, args.warmup, server.url())
                finally:
                    os.environ.pop("CORRAL_DATABASE_URL", None)
                    server.stop()
                figures.update({f"postgres_{k}": v for k, v in on_pg.items()})
        if args.only in (None, "cost"):
            figures.update(monitoring_cost(Path(tmp), args.runs, args.seconds))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
