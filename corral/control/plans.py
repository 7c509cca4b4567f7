"""A node's plan: its desired state, computed from the store and the cluster's services.

Plans are derived, never stored: the cluster's ``plan_version`` is bumped whenever
something a plan depends on changes, and agents long-poll for a newer version.
"""

from __future__ import annotations

import json

from corral.agent.protocol import ArtifactRef, BootstrapSpec, NodePlan, RuntimeSpec, StepCommand
from corral.control.views import cluster_view, effective_properties, has_master
from corral.domain import secrets
from corral.domain.catalog import RELEASES
from corral.domain.states import ClusterTarget, NodeTarget, StepState, StepType
from corral.jobs.registry import STEP_KINDS
from corral.services.base import ClusterView
from corral.services.hadoop_common import uses_hadoop_runtime
from corral.services.registry import get_service
from corral.store.models import Cluster, Node, Step

ACTIVE_STEP_STATES = (StepState.RUNNING.value, StepState.CANCEL_PENDING.value)


def artifact_placeholder(sha256: str) -> str:
    return "{artifact:" + sha256 + "}"


def _ship(arg: str, path: str, placeholder: str) -> str:
    """Point ``arg`` (a path, a comma list of them, or ``--opt=list``) at the shipped copy of ``path``."""
    if arg.startswith("-") and "=" in arg:
        option, value = arg.split("=", 1)
        return option + "=" + _ship(value, path, placeholder)
    items = arg.split(",")
    return ",".join(placeholder if item in (path, "file://" + path) else item for item in items)


def step_command(step: Step, view: ClusterView) -> StepCommand:
    args = list(step.args)
    cmd = STEP_KINDS[StepType(step.type)].command(args, view)
    argv = list(cmd.argv)
    # Step kinds keep the user's arguments as the command's tail, position for position.
    offset = len(argv) - len(args)
    assert offset >= 0, "a step kind must end its command with the step's arguments"
    refs: dict[str, ArtifactRef] = {}
    for art in step.artifacts:
        refs[art["sha256"]] = ArtifactRef(sha256=art["sha256"], name=art["name"])
        at = offset + art["index"]
        argv[at] = _ship(argv[at], art["path"], artifact_placeholder(art["sha256"]))
    env = {**cmd.env, "CORRAL_STEP_ID": step.id, **{name: secrets.placeholder(secrets.step_secret_name(step.id, name)) for name in step.secrets or {}}}
    return StepCommand(id=step.id, argv=argv, env=env, artifacts=list(refs.values()),
                       cancel=step.status == StepState.CANCEL_PENDING.value)


def base_env(cluster: Cluster, view: ClusterView) -> dict[str, str]:
    env: dict[str, str] = {"CORRAL_CLUSTER_ID": cluster.id}
    paths: list[str] = []
    for name in view.services:
        service_env = dict(get_service(name).step_env(view))
        if "PATH" in service_env:
            paths.append(service_env.pop("PATH"))
        env.update(service_env)
    env["PATH"] = ":".join([*paths, "${JAVA_HOME}/bin", "${PATH}"])
    return env


def build_plan(cluster: Cluster, node: Node, steps: list[Step]) -> NodePlan | None:
    """The node's plan, or None while the master has no address yet (nothing to render)."""
    view = cluster_view(cluster)
    release = RELEASES[cluster.release]
    terminate = cluster.target == ClusterTarget.TERMINATED.value or node.target == NodeTarget.TERMINATED.value
    plan = NodePlan(
        version=cluster.plan_version, cluster_id=cluster.id, node_id=node.id, role=node.role,
        address=node.address or "", terminate=terminate,
        runtime=RuntimeSpec(
            release=release.label, spark_version=release.spark_version, java_major=release.java_major,
            hadoop_version=release.hadoop_version if uses_hadoop_runtime(view) else None,
        ),
    )
    if terminate or not has_master(view) or not node.address:
        return plan if terminate else None
    me = next(n for n in view.nodes if n.node_id == node.id)
    props, _ = effective_properties(view)
    for name in view.services:
        service = get_service(name)
        plan.files += service.config_files(view, me, props)
        plan.components += service.components(view, me, props)
    # Every daemon, step and bootstrap action keeps its temporary files in the node's
    # directory (JVMs get java.io.tmpdir from it through the Hadoop launcher and Spark's
    # conf/spark/java-opts), so they go with the node instead of staying in the host's /tmp.
    for component in plan.components:
        component.env.setdefault("TMPDIR", me.tmp_dir)
    plan.base_env = {**base_env(cluster, view), "CORRAL_NODE_ROLE": node.role, "TMPDIR": me.tmp_dir}
    plan.log_archive_uri = f"{cluster.log_uri}/{cluster.id}" if cluster.log_uri else None
    plan.bootstrap = [
        BootstrapSpec(name=b["name"], args=b["args"], artifact=ArtifactRef(sha256=b["sha256"], name=b["file_name"]))
        for b in cluster.bootstrap_actions
    ]
    secret_values = dict(cluster.secrets or {})
    if node.role == "MASTER":
        running = [s for s in steps
                   if s.status in ACTIVE_STEP_STATES or (s.status == StepState.PENDING.value and s.dispatched)]
        plan.steps = [step_command(s, view) for s in running]
        for s in running:
            secret_values.update({secrets.step_secret_name(s.id, k): v for k, v in (s.secrets or {}).items()})
    return with_secrets(plan, secret_values)


def with_secrets(plan: NodePlan, values: dict[str, str]) -> NodePlan:
    """The plan with every ``{{secret:NAME}}`` filled in, wherever it is (file contents,
    environments, argv): only the copy sent to the node's agent carries the values."""
    text = plan.model_dump_json()
    if "{{secret:" not in text:
        return plan
    escaped = {k: json.dumps(v)[1:-1] for k, v in values.items()}  # the values land inside JSON strings
    return NodePlan.model_validate_json(secrets.expand(text, escaped))
