"""A throw-away Prometheus server on loopback (Debian's ``prometheus``, which
``scripts/ensure-test-servers.sh`` installs without its node exporter), for tests that
have it discover and scrape Corral's targets and then ask it PromQL."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.processes import stop_child


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrometheusServer:
    def __init__(self, directory: Path, config: str):
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "prometheus.yml").write_text(config)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = open(self.directory / "prometheus.log", "ab")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.directory / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.directory / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--web.enable-lifecycle"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.log()[-3000:]
            time.sleep(0.2)
        raise AssertionError("prometheus did not become ready: " + self.log()[-3000:])

    def log(self) -> str:
        return (self.directory / "prometheus.log").read_text(errors="replace")

    def targets(self) -> list[dict[str, Any]]:
        """Its active targets (``/api/v1/targets``): labels, scrape URL, health, last error."""
        return list(httpx.get(f"{self.url}/api/v1/targets", params={"state": "active"}, timeout=10)
                    .json()["data"]["activeTargets"])

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector: [{"metric": {...}, "value": [t, "v"]}]."""
        body = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10).json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def stop(self) -> None:
        stop_child(self.proc, grace=10)
