"""SHELL steps: one argument is a bash command line, several an argv; scripts must exist."""

from __future__ import annotations

import pytest

from corral.jobs.base import LocalFile
from corral.jobs.shell import ShellStep
from corral.services.base import ClusterView

VIEW = ClusterView(cluster_id="c-x", release="corral-1.0", services=("spark",), nodes=())


def test_single_argument_runs_through_bash() -> None:
    assert ShellStep().check(["echo hi && echo there"]) == ([], [])
    assert ShellStep().command(["echo hi && echo there"], VIEW).argv == ["/bin/bash", "-c", "echo hi && echo there"]


def test_several_arguments_are_an_argv() -> None:
    args = ["ls", "-l", "/tmp dir"]
    assert ShellStep().check(args) == ([], [])
    assert ShellStep().command(args, VIEW).argv == ["ls", "-l", "/tmp dir"]


def test_a_command_line_mentioning_a_script_is_not_a_script() -> None:
    # "python3 /x/job.py" has a space: it is a command line, the file is the user's business.
    assert ShellStep().check(["python3 /no/such/job.py"]) == ([], [])
    assert ShellStep().command(["python3 /no/such/job.py"], VIEW).argv[:2] == ["/bin/bash", "-c"]


@pytest.mark.parametrize(("name", "interpreter"), [("run.sh", "/bin/bash"), ("job.py", "${PYTHON}")])
def test_scripts_are_shipped_and_run_with_their_interpreter(name: str, interpreter: str) -> None:
    script = f"/client/{name}"
    found, errors = ShellStep().check([script, "a", "b"])
    assert errors == []
    assert found == [LocalFile(0, script, "script", 0, len(script))]
    assert ShellStep().command([script, "a", "b"], VIEW).argv == [interpreter, script, "a", "b"]


def test_a_relative_script_is_a_local_file_to_resolve() -> None:
    found, errors = ShellStep().check(["scripts/run.sh", "x"])
    assert (errors, [(f.index, f.path) for f in found]) == ([], [(0, "scripts/run.sh")])


@pytest.mark.parametrize("args", [[], [""], ["   "]])
def test_a_command_is_required(args: list[str]) -> None:
    _, errors = ShellStep().check(args)
    assert [e.loc for e in errors] == [("args",)]
