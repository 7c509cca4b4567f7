"""Step requests: add (validated, sequenced), cancel, logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.control import clusters, steps
from corral.control.context import ControlPlane
from corral.domain.spec import StepRequest
from corral.errors import Conflict, NotFound, ValidationFailed
from corral.reconcile import steps as queue
from corral.store.models import Cluster, Event, Step
from tests.unit.helpers import count_rows, make_spec


def shell(cmd: str, **extra: object) -> StepRequest:
    return StepRequest.model_validate({"type": "SHELL", "args": [cmd], **extra})


def new_cluster(cp: ControlPlane, n_steps: int = 0) -> Cluster:
    cluster, _ = clusters.create_cluster(cp, make_spec(steps=[{"type": "shell", "args": [f"echo {i}"]}
                                                              for i in range(n_steps)]))
    return cluster


def dispatch(cp: ControlPlane, cluster_id: str) -> None:
    with cp.store.session() as s:
        queue.schedule(s, clusters.load_cluster(s, cluster_id))


def test_add_steps_to_an_empty_cluster(cp: ControlPlane) -> None:
    cluster = new_cluster(cp)
    added = steps.add_steps(cp, cluster.id, [shell("echo a"), shell("echo b", name="bee")])
    assert [(s.seq, s.name, s.status, s.type) for s in added] == [(0, "shell step", "PENDING", "SHELL"),
                                                                   (1, "bee", "PENDING", "SHELL")]
    assert [s.id for s in steps.list_steps(cp, cluster.id)] == [s.id for s in added]
    assert count_rows(cp.store, Event, code="STEP_ADDED") == 2


def test_added_steps_queue_behind_existing_ones(cp: ControlPlane) -> None:
    cluster = new_cluster(cp, n_steps=2)
    added = steps.add_steps(cp, cluster.id, [shell("echo c"), shell("echo d")])
    assert [s.seq for s in added] == [2, 3]
    assert [s.seq for s in steps.list_steps(cp, cluster.id)] == [0, 1, 2, 3]


def test_add_steps_one_at_a_time(cp: ControlPlane) -> None:
    cluster = new_cluster(cp)
    first = steps.add_steps(cp, cluster.id, [shell("echo 1")])
    second = steps.add_steps(cp, cluster.id, [shell("echo 2")])
    # regression: `(max(seq) or -1) + 1` gave 0 again when the only step had seq 0
    assert [first[0].seq, second[0].seq] == [0, 1]
    third = steps.add_steps(cp, cluster.id, [shell("echo 3")])
    assert third[0].seq == 2


def test_invalid_steps_add_nothing_and_name_the_argument(cp: ControlPlane, tmp_path: Path) -> None:
    cluster = new_cluster(cp)
    bad = StepRequest(type="SPARK", args=["--py-files", str(tmp_path / "nope.py"), str(tmp_path / "app.py")])
    with pytest.raises(ValidationFailed) as info:
        steps.add_steps(cp, cluster.id, [shell("true"), bad], loc_prefix=("steps",))
    assert [e.loc for e in info.value.errors] == [("steps", 1, "args", 1), ("steps", 1, "args", 2)]
    assert count_rows(cp.store, Step) == 0


def test_no_steps_for_a_terminating_cluster(cp: ControlPlane) -> None:
    cluster = new_cluster(cp)
    clusters.terminate_cluster(cp, cluster.id)
    with pytest.raises(Conflict):
        steps.add_steps(cp, cluster.id, [shell("true")])
    assert count_rows(cp.store, Step) == 0


def test_no_steps_for_an_unknown_cluster(cp: ControlPlane) -> None:
    with pytest.raises(NotFound):
        steps.add_steps(cp, "c-missing", [shell("true")])


def test_cancel_undispatched_step_cancels_it_directly(cp: ControlPlane) -> None:
    cluster = new_cluster(cp, n_steps=2)
    first = steps.list_steps(cp, cluster.id)[0]
    version = clusters.get_cluster(cp, cluster.id).plan_version
    out = steps.cancel_step(cp, cluster.id, first.id)
    assert out.status == "CANCELLED"
    assert out.ended_at is not None
    assert clusters.get_cluster(cp, cluster.id).plan_version == version  # not in any plan: nothing to tell agents
    assert steps.list_steps(cp, cluster.id)[1].status == "PENDING"


def test_cancel_dispatched_step_asks_the_master(cp: ControlPlane) -> None:
    cluster = new_cluster(cp, n_steps=2)
    dispatch(cp, cluster.id)
    first = steps.list_steps(cp, cluster.id)[0]
    assert first.dispatched and first.status == "PENDING"
    version = clusters.get_cluster(cp, cluster.id).plan_version
    out = steps.cancel_step(cp, cluster.id, first.id)
    assert out.status == "CANCEL_PENDING"
    assert clusters.get_cluster(cp, cluster.id).plan_version == version + 1
    # asking again changes nothing
    assert steps.cancel_step(cp, cluster.id, first.id).status == "CANCEL_PENDING"
    assert clusters.get_cluster(cp, cluster.id).plan_version == version + 1


def test_cancel_running_step(cp: ControlPlane) -> None:
    cluster = new_cluster(cp, n_steps=1)
    step = steps.list_steps(cp, cluster.id)[0]
    with cp.store.session() as s:
        s.get(Step, step.id).status = "RUNNING"  # type: ignore[union-attr]
    assert steps.cancel_step(cp, cluster.id, step.id).status == "CANCEL_PENDING"


@pytest.mark.parametrize("final", ["COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED"])
def test_cancel_terminal_step_is_a_conflict(cp: ControlPlane, final: str) -> None:
    cluster = new_cluster(cp, n_steps=1)
    step = steps.list_steps(cp, cluster.id)[0]
    with cp.store.session() as s:
        s.get(Step, step.id).status = final  # type: ignore[union-attr]
    with pytest.raises(Conflict, match=final):
        steps.cancel_step(cp, cluster.id, step.id)
    assert steps.get_step(cp, cluster.id, step.id).status == final


def test_cancel_unknown_step_or_step_of_another_cluster(cp: ControlPlane) -> None:
    a, b = new_cluster(cp, n_steps=1), new_cluster(cp, n_steps=1)
    step_of_b = steps.list_steps(cp, b.id)[0]
    with pytest.raises(NotFound):
        steps.cancel_step(cp, a.id, "s-missing")
    with pytest.raises(NotFound):
        steps.cancel_step(cp, a.id, step_of_b.id)
    with pytest.raises(NotFound):
        steps.get_step(cp, a.id, step_of_b.id)


def test_read_log_returns_the_stored_slice(cp: ControlPlane) -> None:
    cluster = new_cluster(cp, n_steps=1)
    step = steps.list_steps(cp, cluster.id)[0]
    cp.logs.append(cluster.id, step.id, "stdout", 0, b"hello world\n")
    data, row = steps.read_log(cp, cluster.id, step.id, "stdout", 6, 5)
    assert (data, row.id) == (b"world", step.id)
    assert steps.read_log(cp, cluster.id, step.id, "stderr", 0, 100)[0] == b""


def test_a_step_type_needs_its_services(cp: ControlPlane) -> None:
    cluster = new_cluster(cp)  # services: spark only
    request = StepRequest.model_validate({"type": "HADOOP_JAR", "args": ["hadoop-mapreduce-examples.jar", "pi", "1", "1"]})
    with pytest.raises(ValidationFailed) as failed:
        steps.add_steps(cp, cluster.id, [shell("echo ok"), request], loc_prefix=("steps",))
    assert [(e.loc, e.msg) for e in failed.value.errors] == [
        (("steps", 1, "type"), "HADOOP_JAR steps need the mapreduce service, which this cluster does not run (spark)")]
    assert steps.list_steps(cp, cluster.id) == []


def test_local_files_must_be_uploaded_and_named(cp: ControlPlane) -> None:
    """The control plane never opens a client's path: each local file the step's parser
    finds must be named in ``files`` with the sha256 of an uploaded artifact."""
    cluster = new_cluster(cp)
    lookup = cp.artifacts.put_bytes(b"k=v\n")
    missing = "0" * 64
    request = StepRequest.model_validate({"type": "SPARK", "args": [
        "--files", "/local/lookup.txt#lookup.txt,/local/x.txt", "--archives", "/local/deps.zip#depsdir",
        "--py-files", "relative.py", "--jars", "/local/..", "local:/opt/app.py"],
        "files": {"/local/lookup.txt": lookup, "/local/deps.zip": missing, "/local/unused.txt": lookup}})
    with pytest.raises(ValidationFailed) as failed:
        steps.add_steps(cp, cluster.id, [request], loc_prefix=("steps",))
    assert [str(e) for e in failed.value.errors] == [
        "steps[0].args[1]: --files entry /local/x.txt: not uploaded — upload it with PUT /api/v1/artifacts/{sha256} "
        "and name it in files",
        f"steps[0].args[3]: --archives entry /local/deps.zip: not uploaded (no artifact {missing}) — upload it with "
        f"PUT /api/v1/artifacts/{missing}",
        "steps[0].args[5]: --py-files entry must be an absolute path, got 'relative.py'",
        "steps[0].args[7]: --jars entry must name a file, got '/local/..'",
        "steps[0].files./local/unused.txt: names no local file of the step's arguments",
    ]
    assert count_rows(cp.store, Step) == 0


def test_uploaded_files_are_recorded_with_where_they_are_named(cp: ControlPlane) -> None:
    cluster = new_cluster(cp)
    lookup = cp.artifacts.put_bytes(b"k=v\n")
    (step,) = steps.add_steps(cp, cluster.id, [StepRequest.model_validate({
        "type": "SPARK", "args": ["--files", "/local/lookup.txt#lookup.txt", "local:/opt/app.py"],
        "files": {"/local/lookup.txt": lookup}})])
    assert step.artifacts == [{"index": 1, "start": 0, "end": 17, "uri": True, "path": "/local/lookup.txt",
                               "name": "lookup.txt", "sha256": lookup}]
