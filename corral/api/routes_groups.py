"""/api/v1/clusters/{id}/node-groups: thin handlers over corral.control.groups."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from corral.api.deps import plane
from corral.api.schemas import NodeGroupOut
from corral.control import clusters, groups
from corral.control.context import ControlPlane
from corral.control.views import groups_in_order
from corral.domain.spec import LabelText, label_scalars

router = APIRouter(tags=["node groups"])


class ResizeBody(BaseModel):
    """EMR's ModifyInstanceGroups for one group: its new count (0..64), optionally how long
    YARN may drain each leaving node (seconds, 0..7 days; default 3600) and which nodes leave."""

    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=0, le=groups.MAX_GROUP_COUNT)
    decommission_timeout: int | None = Field(default=None, ge=0, le=groups.MAX_DECOMMISSION_TIMEOUT)
    nodes: list[str] = Field(default_factory=list, max_length=groups.MAX_GROUP_COUNT)
    rebalance: bool = False


class NewGroupBody(BaseModel):
    """EMR's AddInstanceGroups for one TASK group. ``instance_type``: a catalog type (on ssh
    a floor), or ``host`` on ssh (sized from each host); ``host_labels``: ssh only."""

    model_config = ConfigDict(extra="forbid")
    role: str = "TASK"
    instance_type: str
    count: int = Field(ge=0, le=groups.MAX_GROUP_COUNT)
    name: str | None = None
    host_labels: Annotated[dict[LabelText, LabelText], BeforeValidator(label_scalars)] = Field(default_factory=dict,
                                                                                                max_length=16)


def _out(cp: ControlPlane, cluster_id: str, group_id: str) -> NodeGroupOut:
    cluster = clusters.get_cluster(cp, cluster_id)
    return NodeGroupOut.of(cluster, next(g for g in cluster.groups if g.id == group_id))


@router.get("/clusters/{cluster_id}/node-groups", response_model=list[NodeGroupOut])
def list_groups(cluster_id: str, cp: ControlPlane = Depends(plane)) -> list[NodeGroupOut]:
    cluster = clusters.get_cluster(cp, cluster_id)
    return [NodeGroupOut.of(cluster, g) for g in groups_in_order(cluster)]


@router.get("/clusters/{cluster_id}/node-groups/{group}", response_model=NodeGroupOut)
def get_group(cluster_id: str, group: str, cp: ControlPlane = Depends(plane)) -> NodeGroupOut:
    """One live group by name (404 naming the cluster's groups otherwise)."""
    cluster = clusters.get_cluster(cp, cluster_id)
    return NodeGroupOut.of(cluster, groups.find_group(cluster, group))


@router.patch("/clusters/{cluster_id}/node-groups/{group}", response_model=NodeGroupOut, status_code=202)
def resize_group(cluster_id: str, group: str, body: ResizeBody, cp: ControlPlane = Depends(plane)) -> NodeGroupOut:
    request = groups.ResizeRequest(count=body.count, decommission_timeout=body.decommission_timeout,
                                   nodes=tuple(body.nodes), rebalance=body.rebalance)
    row = groups.resize_group(cp, cluster_id, group, request)
    return _out(cp, cluster_id, row.id)


@router.post("/clusters/{cluster_id}/node-groups", response_model=NodeGroupOut, status_code=202)
def add_group(cluster_id: str, body: NewGroupBody, cp: ControlPlane = Depends(plane)) -> NodeGroupOut:
    row = groups.add_group(cp, cluster_id, groups.NewGroup(role=body.role.upper(), instance_type=body.instance_type,
                                                            count=body.count, name=body.name,
                                                            host_labels=body.host_labels))
    return _out(cp, cluster_id, row.id)


@router.delete("/clusters/{cluster_id}/node-groups/{group}", response_model=NodeGroupOut, status_code=202)
def remove_group(cluster_id: str, group: str, decommission_timeout: int | None = None,
                 cp: ControlPlane = Depends(plane)) -> NodeGroupOut:
    row = groups.remove_group(cp, cluster_id, group, decommission_timeout)
    return _out(cp, cluster_id, row.id)


class PolicyOut(BaseModel):
    group: str
    policy: dict[str, Any] | None
    cooldown_until: float | None = None  # epoch seconds
    evaluations: list[dict[str, Any]] = []  # the last ones, newest last: what decided, or why nothing changed


def _policy_out(cp: ControlPlane, cluster_id: str, name: str) -> PolicyOut:
    cluster = clusters.get_cluster(cp, cluster_id)
    group = groups.find_group(cluster, name)
    state = group.scaling_state or {}
    return PolicyOut(group=group.name, policy=group.autoscaling_policy, cooldown_until=state.get("cooldown_until"),
                     evaluations=list(state.get("evaluations") or []))


@router.put("/clusters/{cluster_id}/node-groups/{group}/autoscaling-policy", response_model=PolicyOut)
def put_policy(cluster_id: str, group: str, body: dict[str, Any] = Body(...),
               cp: ControlPlane = Depends(plane)) -> PolicyOut:
    """The policy document of ``corral.elastic.policy`` (YAML's JSON form); 422 at its field."""
    groups.put_policy(cp, cluster_id, group, body)
    return _policy_out(cp, cluster_id, group)


@router.get("/clusters/{cluster_id}/node-groups/{group}/autoscaling-policy", response_model=PolicyOut)
def get_policy(cluster_id: str, group: str, cp: ControlPlane = Depends(plane)) -> PolicyOut:
    return _policy_out(cp, cluster_id, group)


@router.delete("/clusters/{cluster_id}/node-groups/{group}/autoscaling-policy", response_model=PolicyOut)
def remove_policy(cluster_id: str, group: str, cp: ControlPlane = Depends(plane)) -> PolicyOut:
    groups.remove_policy(cp, cluster_id, group)
    return _policy_out(cp, cluster_id, group)
