"""Builders shared by the unit tests: valid specs, a fake node provider, a control plane."""

from __future__ import annotations

import copy
import ipaddress
from pathlib import Path
from typing import Any

from corral.control.context import ControlPlane
from corral.domain.spec import ClusterSpec
from corral.providers.base import Liveness, NodeHandle, NodeRequest
from corral.settings import Settings
from corral.store.db import Store

BASE_SPEC: dict[str, Any] = {
    "name": "unit",
    "services": ["spark"],
    "node_groups": [
        {"role": "MASTER", "instance_type": "local.small", "count": 1},
        {"role": "CORE", "instance_type": "local.medium", "count": 2},
    ],
}


def spec_dict(**overrides: Any) -> dict[str, Any]:
    """A valid cluster spec (1 MASTER + 2 CORE), as the user would write it."""
    data = copy.deepcopy(BASE_SPEC)
    data.update(copy.deepcopy(overrides))
    return data


def make_spec(**overrides: Any) -> ClusterSpec:
    return ClusterSpec.model_validate(spec_dict(**overrides))


class FakeProvider:
    """Records calls; never starts anything. The control layer under test only writes rows."""

    name = "local"
    shares_machine = True

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def create_node(self, request: NodeRequest) -> NodeHandle:
        self.calls.append(("create_node", request.node_id))
        return NodeHandle(node_id=request.node_id, address="127.99.0.2", directory=f"/nonexistent/{request.node_id}")

    def start_node(self, request: NodeRequest) -> NodeHandle:
        self.calls.append(("start_node", request.node_id))
        return self.create_node(request)

    def stop_node(self, node_id: str, timeout: float) -> None:
        self.calls.append(("stop_node", node_id))

    def terminate_node(self, node_id: str, timeout: float) -> None:
        self.calls.append(("terminate_node", node_id))

    def query_node(self, node_id: str) -> Liveness:
        return Liveness.MISSING

    def leftover_processes(self, node_id: str) -> list[int]:
        return []


def make_settings(home: Path, database_url: str) -> Settings:
    settings = Settings(home=home, database_url=database_url, host="127.0.0.1", port=7420,
                        local_subnet=ipaddress.IPv4Network("127.99.0.0/16"))
    settings.ensure_dirs()
    return settings


def make_control_plane(home: Path, database_url: str) -> ControlPlane:
    store = Store(database_url)
    store.migrate()
    return ControlPlane(settings=make_settings(home, database_url), store=store, providers={"local": FakeProvider()})


def count_rows(store: Store, model: Any, **where: Any) -> int:
    from sqlalchemy import func, select

    query = select(func.count()).select_from(model)
    for key, value in where.items():
        query = query.where(getattr(model, key) == value)
    with store.session() as s:
        return int(s.scalar(query) or 0)
