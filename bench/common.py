"""What the benchmarks share: a control-plane server of their own, steps, and timing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from corral.cli.ship import ship_cluster_spec, ship_step

ENDED = ("TERMINATED", "TERMINATED_WITH_ERRORS")
NODE_GROUPS = [{"role": "MASTER", "instance_type": "local.small", "count": 1},
               {"role": "CORE", "instance_type": "local.medium", "count": 2}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Api:
    """Clusters made through one control plane's API. ``http``: a client whose base URL is
    the plane's ``/api/v1`` (with its token, when the plane requires one). Clusters it made
    and did not terminate are in ``live``; leaving the ``with`` block terminates them."""

    def __init__(self, http: httpx.Client):
        self.http = http
        self.live: set[str] = set()

    def __enter__(self) -> "Api":
        return self

    def __exit__(self, *exc: object) -> None:
        """Terminate every cluster this benchmark made and is still running, then stop."""
        try:
            for cid in list(self.live):
                self.terminate(cid)
        finally:
            self.stop()

    def create(self, spec: dict[str, Any]) -> str:
        resp = self.http.post("/clusters", json=ship_cluster_spec(self.http, spec))
        if resp.status_code >= 400:
            raise RuntimeError(f"create refused ({resp.status_code}): {resp.text[:2000]}")
        cid = str(resp.json()["id"])
        self.live.add(cid)
        return cid

    def wait(self, cid: str, states: tuple[str, ...], poll: float = 0.05,
             timeout: float | None = None) -> dict[str, Any]:
        """The cluster once its status is one of ``states`` or has ended. TimeoutError
        after ``timeout`` seconds (None: no limit; the reconciler's deadlines end every state)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            c = self.http.get(f"/clusters/{cid}").json()
            if c["status"] in states or c["status"] in ENDED:
                return c
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"cluster {cid} still {c['status']} after {timeout:g} s")
            time.sleep(poll)

    def terminate(self, cid: str, timeout: float | None = 900) -> None:
        self.http.post(f"/clusters/{cid}/terminate")
        self.wait(cid, ENDED, poll=0.2, timeout=timeout)
        self.live.discard(cid)

    def stop(self) -> None:
        """Nothing to stop: the plane is someone else's (see ``Server`` for one of our own)."""


class Server(Api):
    """A control plane of the benchmark's own on loopback (``home``: its CORRAL_HOME)."""

    def __init__(self, home: Path, subnet: str = "127.90.0.0/16"):
        self.env = {**os.environ, "CORRAL_HOME": str(home), "CORRAL_PORT": str(free_port()),
                    "CORRAL_LOCAL_SUBNET": subnet}
        self.url = f"http://127.0.0.1:{self.env['CORRAL_PORT']}"
        home.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "corral.server"], env=self.env,
                                     stdout=open(home / "server.log", "ab"), stderr=subprocess.STDOUT)
        super().__init__(httpx.Client(base_url=self.url + "/api/v1", timeout=30))
        for _ in range(300):
            try:
                if self.http.get("/health").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def time_create(api: Api, spec: dict[str, Any]) -> tuple[float, str]:
    """Seconds from the create request to the API reporting WAITING, and the cluster's id.
    RuntimeError (with the reason) if it ends instead."""
    t0 = time.monotonic()
    cid = api.create(spec)
    c = api.wait(cid, ("WAITING",))
    elapsed = time.monotonic() - t0
    if c["status"] != "WAITING":
        raise RuntimeError(f"cluster {cid} {c['status']}: {c['state_change_reason']}")
    return elapsed, cid


def bench_create(server: Api, spec: dict[str, Any], runs: int) -> tuple[list[float], str]:
    """create -> WAITING, ``runs`` times; the last cluster is kept and returned."""
    times = []
    keep = ""
    for i in range(runs):
        elapsed, cid = time_create(server, spec)
        times.append(elapsed)
        print(f"create -> WAITING run {i + 1}: {elapsed:.2f} s", flush=True)
        if i == runs - 1:
            keep = cid
        else:
            server.terminate(cid)
    return times, keep


def run_step(server: Server, cid: str, type_: str, args: list[str]) -> float:
    """Seconds from the API request to the API reporting the step COMPLETED (queueing,
    dispatch and log shipping included)."""
    t0 = time.monotonic()
    request = ship_step(server.http, {"type": type_, "args": args})  # local files are uploaded, as the CLI does
    step = server.http.post(f"/clusters/{cid}/steps", json={"steps": [request]}).json()["steps"][0]
    while True:
        s = server.http.get(f"/clusters/{cid}/steps/{step['id']}").json()
        if s["status"] in ("COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED"):
            break
        time.sleep(0.2)  # faster polling costs the 2-core machine more CPU than it saves in latency
    elapsed = time.monotonic() - t0
    if s["status"] != "COMPLETED":
        raise RuntimeError(f"step {s['id']} {s['status']}: {s['state_message']}")
    return elapsed


def master_env(cluster: dict[str, Any], home: Path) -> tuple[dict[str, str], Path]:
    """The environment a user on the master would have (as on EMR), and SPARK_HOME."""
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    master = next(n for n in cluster["nodes"] if n["role"] == "MASTER")
    node_dir = home / "nodes" / cluster["id"] / master["id"]
    env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_CONF_DIR": str(node_dir / "conf" / "spark"),
           "SPARK_LOCAL_IP": master["address"], "PYSPARK_PYTHON": sys.executable,
           "HADOOP_CONF_DIR": str(node_dir / "conf" / "hadoop"), "HADOOP_USER_NAME": "hadoop",
           "CORRAL_BIND_ADDRESS": master["address"]}
    return env, spark_home


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.monotonic()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.monotonic() - t0
