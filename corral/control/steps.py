"""Step requests: add (validated, files checked as uploaded), list, get, cancel, logs."""

from __future__ import annotations

import time
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from corral import ids
from corral.control import events
from corral.control.views import effective_properties, shape_view
from corral.domain.spec import StepRequest
from corral.domain.states import ClusterState, ClusterTarget, StepState
from corral.errors import Conflict, FieldError, NotFound, ValidationFailed
from corral.jobs.files import LocalFile, node_name
from corral.jobs.registry import STEP_KINDS
from corral.jobs.transfer import OBJECT_STORAGE
from corral.services.base import ClusterView
from corral.store.models import Cluster, Step, bump_plan_version, cluster_row

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corral.control.context import ControlPlane


def capabilities(services: list[str], has_object_storage: bool) -> list[str]:
    """What steps may require of a cluster: its services, and its object store if it has one."""
    return [*services, *([OBJECT_STORAGE] if has_object_storage else [])]


def _missing_message(req: StepRequest, missing: list[str], available: list[str]) -> str:
    if missing == [OBJECT_STORAGE]:
        return f"this {req.type.value} step uses s3a:// locations: the cluster spec needs object_storage"
    services = [name for name in missing if name != OBJECT_STORAGE]
    running = ", ".join(name for name in available if name != OBJECT_STORAGE)
    return f"{req.type.value} steps need the {', '.join(services)} service, which this cluster does not run ({running})"


def upload_how(sha256: str = "{sha256}") -> str:
    return f"upload it with PUT /api/v1/artifacts/{sha256}"


def local_path_problem(path: str, what: str) -> str | None:
    """Why ``path`` cannot name a client's file to ship, if it cannot: it must be absolute
    (the CLI makes relative ones so) and end in a file name (the copy on the node is named
    after it, inside the artifact's own directory)."""
    if not PurePosixPath(path).is_absolute():
        return f"{what} must be an absolute path, got {path!r}"
    if node_name(path) in ("", ".", "..") or "\0" in path:
        return f"{what} must name a file, got {path!r}"
    return None


def uploaded_artifacts(cp: "ControlPlane", files: list[LocalFile], uploaded: dict[str, str],
                       loc: tuple[str | int, ...]) -> tuple[list[dict[str, Any]], list[FieldError]]:
    """The step's artifact records: every local file its parser found (``files``) must be
    named in the request's ``files`` (``uploaded``: path -> sha256) and stored. Nothing is
    read from this machine's disk but the artifact store: the paths are the client's."""
    artifacts: list[dict[str, Any]] = []
    errors: list[FieldError] = []
    for f in files:
        where = (*loc, "args", f.index)
        problem = local_path_problem(f.path, f.what)
        sha = uploaded.get(f.path)
        if problem:
            errors.append(FieldError(where, problem + f.hint))
        elif sha is None:
            errors.append(FieldError(where, f"{f.what} {f.path}: not uploaded — {upload_how()} and name it in files"))
        elif not cp.artifacts.exists(sha):
            errors.append(FieldError(where, f"{f.what} {f.path}: not uploaded (no artifact {sha}) — {upload_how(sha)}"))
        else:
            artifacts.append({"index": f.index, "start": f.start, "end": f.end, "uri": f.uri, "path": f.path,
                              "name": node_name(f.path), "sha256": sha})
    named = {f.path for f in files}
    errors += [FieldError((*loc, "files", path), "names no local file of the step's arguments")
               for path in uploaded if path not in named]
    return artifacts, errors


def prepare_steps(cp: "ControlPlane", requests: list[StepRequest], available: list[str],
                  loc_prefix: tuple[str | int, ...] = (),
                  secrets: dict[int, dict[str, str]] | None = None,
                  view: ClusterView | None = None) -> tuple[list[Step], list[FieldError]]:
    """Check every request against what the cluster has (``capabilities``), that its local
    files were uploaded and, given the cluster's ``view``, that the cluster could ever
    schedule it; rows are returned unsaved. ``secrets[i]`` are environment variables of
    request i whose values are secrets (a database password): kept out of args and logs."""
    errors: list[FieldError] = []
    props = effective_properties(view)[0] if view is not None else {}
    checked = []
    for i, req in enumerate(requests):
        prefix = (*loc_prefix, i) if loc_prefix else ()
        kind = STEP_KINDS[req.type]
        missing = [name for name in kind.requirements(list(req.args)) if name not in available]
        if missing:
            errors.append(FieldError((*prefix, "type"), _missing_message(req, missing, available)))
            continue
        files, problems = kind.check(list(req.args))
        if view is not None and not problems:
            problems = kind.fit_errors(list(req.args), view, props)
        artifacts, missing_files = uploaded_artifacts(cp, files, dict(req.files), prefix)
        errors += [FieldError((*prefix, *e.loc), e.msg) for e in problems] + missing_files
        checked.append((req, artifacts))
    if errors:
        return [], errors  # bad input creates nothing
    now = time.time()
    steps: list[Step] = []
    for i, (req, artifacts) in enumerate(checked):
        steps.append(Step(
            id=ids.step_id(), name=req.name or f"{req.type.value.lower()} step", type=req.type.value,
            args=list(req.args), artifacts=artifacts, action_on_failure=req.action_on_failure.value,
            status=StepState.PENDING.value, dispatched=False, created_at=now + i * 1e-6,
            secrets=dict((secrets or {}).get(i, {})), timeout_seconds=req.timeout,
        ))
    return steps, errors


def add_steps(cp: "ControlPlane", cluster_id: str, requests: list[StepRequest], loc_prefix: tuple[str | int, ...] = (),
              secrets: dict[int, dict[str, str]] | None = None) -> list[Step]:
    with cp.store.session() as s:
        cluster = cluster_row(s, cluster_id)
        if ClusterState(cluster.status).is_terminal() or cluster.target == ClusterTarget.TERMINATED.value:
            raise Conflict(f"cluster {cluster_id} is {cluster.status} and takes no more steps")
        available = capabilities(list(cluster.services), cluster.object_storage is not None)
        view = shape_view(cluster)
    steps, errors = prepare_steps(cp, requests, available, loc_prefix, secrets, view)
    if errors:
        raise ValidationFailed(errors)
    for attempt in range(5):
        try:
            _enqueue(cp, cluster_id, steps)
            break
        except (IntegrityError, OperationalError):
            # Another request took the same queue position (or SQLite's snapshot moved): retry.
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
    cp.notifier.poke_reconciler(cluster_id)
    return steps


def _enqueue(cp: "ControlPlane", cluster_id: str, steps: list[Step]) -> None:
    with cp.store.session() as s:
        cluster = s.get(Cluster, cluster_id, with_for_update=True)
        assert cluster is not None
        if cluster.target == ClusterTarget.TERMINATED.value:
            raise Conflict(f"cluster {cluster_id} is terminating and takes no more steps")
        last = s.scalar(select(func.max(Step.seq)).where(Step.cluster_id == cluster_id))
        next_seq = 0 if last is None else last + 1
        for offset, step in enumerate(steps):
            step.cluster_id, step.seq = cluster_id, next_seq + offset
            s.add(step)
            events.record(s, cluster_id, "STEP_ADDED", f"step {step.id} '{step.name}' ({step.type}) queued", step_id=step.id)


def list_steps(cp: "ControlPlane", cluster_id: str, states: list[str] | None = None, after_seq: int | None = None,
               limit: int | None = None) -> list[Step]:
    """The cluster's steps in queue order, optionally only those in ``states``, after queue
    position ``after_seq`` (the previous page's last), at most ``limit``."""
    with cp.store.session() as s:
        cluster_row(s, cluster_id)
        query = select(Step).where(Step.cluster_id == cluster_id)
        if states:
            query = query.where(Step.status.in_(states))
        if after_seq is not None:
            query = query.where(Step.seq > after_seq)
        query = query.order_by(Step.seq)
        return list(s.scalars(query if limit is None else query.limit(limit)))


def get_step(cp: "ControlPlane", cluster_id: str, step_id: str) -> Step:
    with cp.store.session() as s:
        cluster_row(s, cluster_id)
        step = s.get(Step, step_id)
        if step is None or step.cluster_id != cluster_id:
            raise NotFound("step", step_id)
        return step


def cancel_step(cp: "ControlPlane", cluster_id: str, step_id: str) -> Step:
    with cp.store.session() as s:
        cluster_row(s, cluster_id)
        step = s.get(Step, step_id, with_for_update=True)
        if step is None or step.cluster_id != cluster_id:
            raise NotFound("step", step_id)
        state = StepState(step.status)
        if state.is_terminal():
            raise Conflict(f"step {step_id} is already {step.status}")
        if state is StepState.PENDING and not step.dispatched:
            step.status, step.ended_at, step.state_message = StepState.CANCELLED.value, time.time(), "cancelled by request"
            events.record(s, cluster_id, "STEP_CANCELLED", f"step {step_id} cancelled before it started", step_id=step_id)
        elif state is not StepState.CANCEL_PENDING:
            step.status = StepState.CANCEL_PENDING.value
            bump_plan_version(s, cluster_row(s, cluster_id))
            events.record(s, cluster_id, "STEP_CANCEL_REQUESTED", f"step {step_id}: stopping its processes", step_id=step_id)
    cp.notifier.bump(cluster_id)
    return get_step(cp, cluster_id, step_id)


def read_log(cp: "ControlPlane", cluster_id: str, step_id: str, stream: str, offset: int, limit: int) -> tuple[bytes, Step]:
    step = get_step(cp, cluster_id, step_id)
    return cp.logs.read(cluster_id, step_id, stream, offset, limit), step
