"""A node's plan: its desired state, computed from the store and the cluster's services.

Plans are derived, never stored: the cluster's ``plan_version`` is bumped whenever
something a plan depends on changes, and agents long-poll for a newer version.
"""

from __future__ import annotations

from typing import Any

from corral.agent.protocol import (ArtifactRef, BootstrapSpec, FileSpec, MetricsSpec, NodePlan, RuntimeSpec,
                                   StepCommand, protect_runtime_placeholders)
from corral.control.repository import RUNTIME_PREFIX
from corral.control.views import cluster_view, effective_properties, has_master
from corral.domain import secrets
from corral.domain.catalog import RELEASES
from corral.domain.states import ClusterTarget, NodeTarget, StepState, StepType
from corral.formats import LITERAL
from corral.jobs import files
from corral.jobs.registry import STEP_KINDS
from corral.services.base import ClusterView, NodeView
from corral.services.hadoop_common import uses_hadoop_runtime
from corral.services.registry import get_service
from corral.store.models import Cluster, Node, Step

ACTIVE_STEP_STATES = (StepState.RUNNING.value, StepState.CANCEL_PENDING.value)


def artifact_placeholder(sha256: str) -> str:
    """Stands for the directory the master's agent fetches artifact ``sha256`` into; the
    file itself is ``<placeholder>/<name>`` (its name on the client)."""
    return "{artifact:" + sha256 + "}"


def _shipped(art: dict[str, Any]) -> str:
    """What a reference to the client's file becomes: the shipped copy's path on the node,
    percent-encoded where the consumer reads a URI (``corral.jobs.files``)."""
    name = files.encode(art["name"]) if art.get("uri") else art["name"]
    return artifact_placeholder(art["sha256"]) + "/" + name


def _ship_legacy(arg: str, art: dict[str, Any]) -> str:
    """A step queued before references had positions: its whole path items are replaced."""
    if arg.startswith("-") and "=" in arg:
        option, value = arg.split("=", 1)
        return option + "=" + _ship_legacy(value, art)
    path = art["path"]
    return ",".join(_shipped(art) if item in (path, "file://" + path) else item for item in arg.split(","))


def shipped_args(step: Step) -> list[str]:
    """The step's arguments with every local file pointing at its shipped copy, all else
    (``file:`` prefixes, ``#alias``es, list neighbours) as the user wrote it."""
    args = list(step.args)
    located = [a for a in step.artifacts if "start" in a]
    refs = [files.LocalFile(a["index"], a["path"], "", a["start"], a["end"], uri=a.get("uri", False)) for a in located]
    by_ref = {(r.index, r.start): a for r, a in zip(refs, located)}
    args = files.rewrite(args, refs, lambda r: _shipped(by_ref[(r.index, r.start)]))
    for art in step.artifacts:
        if "start" not in art:
            args[art["index"]] = _ship_legacy(args[art["index"]], art)
    return args


def step_command(step: Step, view: ClusterView) -> StepCommand:
    cmd = STEP_KINDS[StepType(step.type)].command(shipped_args(step), view)
    refs = {(a["sha256"], a["name"]): ArtifactRef(sha256=a["sha256"], name=a["name"]) for a in step.artifacts}
    env = {**cmd.env, "CORRAL_STEP_ID": step.id, **{name: secrets.placeholder(secrets.step_secret_name(step.id, name)) for name in step.secrets or {}}}
    return StepCommand(id=step.id, argv=list(cmd.argv), env=env, artifacts=list(refs.values()),
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


def metrics_spec(shares_machine: bool, node: NodeView) -> MetricsSpec:
    """What the node's agent measures of it (``MetricsSpec``). Nodes that share one machine
    (``NodeProvider.shares_machine``: the local provider's): the agent counts the node's
    own processes and the bytes under its own directory (everything a node writes is in
    it: data, logs, temporary files), against its instance type's size. Elsewhere the node is its host: the machine's own figures,
    and the filesystem of ``<node>/data``, where every service keeps its data (HDFS
    blocks, YARN's and Spark's local directories, event logs, the metastore)."""
    if shares_machine:
        size = node.itype
        return MetricsSpec(scope="node", data_dirs=[node.directory], vcpus=size.vcpus,
                           memory_bytes=size.memory_mib << 20,
                           disk_bytes=size.disk_gib << 30 if size.disk_gib is not None else None)
    return MetricsSpec(scope="host", data_dirs=[node.path("data")])


def build_plan(cluster: Cluster, node: Node, steps: list[Step], shares_machine: bool) -> NodePlan | None:
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
            bundle=RUNTIME_PREFIX + release.label,
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
    # None in rows from before the switch: on. A terminating node (returned above) measures nothing.
    plan.metrics = metrics_spec(shares_machine, me) if cluster.monitoring is not False else None
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
    """The plan with every ``{{secret:NAME}}`` filled in: only the copy sent to the node's
    agent carries the values. Placeholders are filled where services and step kinds put
    them, file contents and environments, never in command lines (user arguments). In a
    file each value is escaped for the file's format (``corral.formats.LITERAL``); and
    everywhere so that the agent's runtime placeholders (``${SPARK_HOME}``) in it stay text.

    Raises ValueError for a placeholder in a file without a format, KeyError for an
    unknown secret name."""
    def env(items: dict[str, str]) -> dict[str, str]:
        return {k: secrets.expand(v, values, protect_runtime_placeholders) for k, v in items.items()}

    def file(spec: FileSpec) -> FileSpec:
        if secrets.SECRET_MARK not in spec.content:
            return spec
        if spec.format not in LITERAL:
            raise ValueError(f"{spec.path}: a secret placeholder in a file of format {spec.format!r}")
        escape = LITERAL[spec.format]
        return spec.model_copy(update={"content": secrets.expand(spec.content, values,
                                                                 lambda v: protect_runtime_placeholders(escape(v)))})

    return plan.model_copy(update={
        "files": [file(f) for f in plan.files],
        "components": [c.model_copy(update={"env": env(c.env)}) for c in plan.components],
        "steps": [s.model_copy(update={"env": env(s.env)}) for s in plan.steps],
        "base_env": env(plan.base_env),
    })
