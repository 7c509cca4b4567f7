"""The agent's HTTP client to the control plane (bearer token of its cluster)."""

from __future__ import annotations

from pathlib import Path

import httpx

from corral.agent.protocol import NodePlan, NodeReport, ReportAck


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

    def close(self) -> None:
        self._http.close()
