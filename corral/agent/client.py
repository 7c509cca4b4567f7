"""The agent's HTTP client to the control plane (bearer token of its cluster)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

from corral.agent.protocol import NodePlan, NodeReport, ReportAck
from corral.runtime import DeployError
from corral.runtime.fetch import Remote

BUNDLE_WAIT_SECONDS = 1800.0  # the control plane may first have to build the archives (Maven there)


class ControlPlaneClient:
    def __init__(self, base_url: str, cluster_id: str, node_id: str, token: str):
        self.cluster_id = cluster_id
        self.node_id = node_id
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/agent/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(10.0, read=40.0),
        )

    def fetch_plan(self, after: int, wait: float) -> NodePlan | None:
        """The node's plan once its version exceeds ``after`` (None after ``wait`` seconds)."""
        resp = self._http.get(f"/nodes/{self.node_id}/plan", params={"after": after, "wait": wait})
        if resp.status_code == 204:
            return None
        resp.raise_for_status()
        return NodePlan.model_validate_json(resp.content)

    def report(self, report: NodeReport) -> ReportAck:
        resp = self._http.post(f"/nodes/{self.node_id}/report", content=report.model_dump_json(),
                               headers={"Content-Type": "application/json"})
        resp.raise_for_status()
        return ReportAck.model_validate_json(resp.content)

    def upload_log(self, step_id: str, stream: str, offset: int, data: bytes) -> int:
        """Append ``data`` at ``offset`` of the step's log; returns the stored size."""
        resp = self._http.post(f"/steps/{step_id}/logs/{stream}", params={"offset": offset}, content=data,
                               headers={"Content-Type": "application/octet-stream"})
        resp.raise_for_status()
        return int(resp.json()["size"])

    def download_artifact(self, sha256: str, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".part")
        with self._http.stream("GET", f"/clusters/{self.cluster_id}/artifacts/{sha256}") as resp:
            resp.raise_for_status()
            with open(tmp, "wb") as out:
                for chunk in resp.iter_bytes():
                    out.write(chunk)
        tmp.rename(dest)

    def repository_bundle(self, kind: str, wait: float = BUNDLE_WAIT_SECONDS) -> list[Remote]:
        """The files of the repository's bundle ``kind`` (``runtime-<release>``), waiting
        while the control plane builds it (503 + Retry-After) or is unreachable, up to
        ``wait`` seconds. Raises DeployError when it cannot be had."""
        deadline = time.monotonic() + wait
        problem = ""
        while True:
            try:
                resp = self._http.get(f"/repository/bundles/{kind}")
                if resp.status_code == 200:
                    return [Remote(a["name"], a["sha256"], int(a["size"])) for a in resp.json()["artifacts"]]
                detail = resp.json().get("detail", resp.text) if resp.headers.get("content-type", "").startswith(
                    "application/json") else resp.text
                problem = f"HTTP {resp.status_code}: {detail}"
                if resp.status_code != 503 or "retry-after" not in resp.headers:
                    raise DeployError(f"the control plane cannot serve the runtime bundle {kind}: {problem}")
                pause = float(resp.headers["retry-after"])
            except httpx.HTTPError as exc:
                problem, pause = f"{type(exc).__name__}: {exc}", 2.0
            if time.monotonic() + pause > deadline:
                raise DeployError(f"the runtime bundle {kind} was not available within {wait:.0f} s ({problem})")
            time.sleep(pause)

    @contextmanager
    def repository_file(self, sha256: str) -> Iterator[Iterator[bytes]]:
        """The repository's file ``sha256`` in pieces; transport and HTTP errors are
        OSErrors (``ConnectionError``), which the caller retries."""
        try:
            with self._http.stream("GET", f"/repository/{sha256}", timeout=httpx.Timeout(10.0, read=60.0)) as resp:
                resp.raise_for_status()
                yield _pieces(resp)
        except httpx.HTTPError as exc:
            raise ConnectionError(f"fetching {sha256[:12]} from the control plane: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._http.close()


def _pieces(resp: httpx.Response) -> Iterator[bytes]:
    try:
        yield from resp.iter_bytes(1 << 20)
    except httpx.HTTPError as exc:
        raise ConnectionError(f"the download broke off: {type(exc).__name__}: {exc}") from exc
