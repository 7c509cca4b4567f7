import subprocess
from pathlib import Path

import pytest

from corral.jobs.transfer import FileCommit, parse
from corral.jobs.transfer_run import BYTES_PER_MAP, distcp_options, run_spark


def test_a_small_copy_is_one_map_in_the_application_master() -> None:
    assert distcp_options(files=3, size=40_000) == ["-Dmapreduce.job.ubertask.enable=true", "-m", "1"]
    assert distcp_options(files=0, size=0) == ["-Dmapreduce.job.ubertask.enable=true", "-m", "1"]


def test_maps_follow_the_bytes_but_never_exceed_the_files_or_twenty() -> None:
    assert distcp_options(files=100, size=3 * BYTES_PER_MAP + 1) == ["-m", "4"]
    assert distcp_options(files=2, size=10 * BYTES_PER_MAP) == ["-m", "2"]
    assert distcp_options(files=1000, size=1000 * BYTES_PER_MAP) == ["-m", "20"]
    # one map, but too much data to copy inside the ApplicationMaster
    assert distcp_options(files=1, size=BYTES_PER_MAP) == ["-m", "1"]


def test_staged_files_are_committed_by_the_targets_state_and_the_mode() -> None:
    assert FileCommit.of(target_exists=False, mode="error") is FileCommit.RENAME
    assert FileCommit.of(target_exists=False, mode="append") is FileCommit.RENAME
    assert FileCommit.of(target_exists=True, mode="overwrite") is FileCommit.REPLACE
    assert FileCommit.of(target_exists=True, mode="append") is FileCommit.MOVE_INTO


def test_the_spark_transfer_job_runs_without_a_web_ui(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A transfer's driver has no UI (nothing to attach handlers to while YARN's AM filter is
    added: the start-up race of transfer_run.run_spark's comment) and points YARN at the
    History Server instead."""
    seen: list[list[str]] = []
    monkeypatch.setenv("SPARK_HOME", str(tmp_path))
    monkeypatch.setattr(subprocess, "run", lambda argv, **_: seen.append(argv) or subprocess.CompletedProcess(argv, 0))
    args = ["--from", "jdbc:postgresql://db/shop", "--table", "orders", "--user", "etl", "--to", "hive:orders"]
    assert run_spark(parse("import", args), "s-1", args) == 0
    (argv,) = seen
    confs = {argv[i + 1] for i, a in enumerate(argv) if a == "--conf"}
    assert {"spark.ui.enabled=false", "spark.yarn.historyServer.allowTracking=true"} <= confs


def _distcp_with_exit_codes(monkeypatch: pytest.MonkeyPatch, codes: list[int]) -> tuple[int, list[list[str]], list[tuple[str, ...]]]:
    """run_distcp of a small import whose DistCp runs exit with ``codes`` in turn."""
    from corral.jobs import transfer_run
    runs: list[list[str]] = []
    fs_calls: list[tuple[str, ...]] = []

    def fake_fs(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        fs_calls.append(args)
        out = "           1            2              40000 s3a://b/in\n" if args[0] == "-count" else ""
        return subprocess.CompletedProcess(["hadoop", "fs", *args], 1 if args[0] == "-test" else 0, out, "")

    def fake_run(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        runs.append(list(argv))
        return subprocess.CompletedProcess(argv, codes[len(runs) - 1])

    monkeypatch.setattr(transfer_run, "hadoop_fs", fake_fs)
    monkeypatch.setattr(subprocess, "run", fake_run)
    code = transfer_run.run_distcp(parse("import", ["--from", "s3a://b/in", "--to", "hdfs:///sales"]), "s-1")
    return code, runs, fs_calls


def test_a_failed_uber_copy_runs_once_more_as_an_ordinary_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """An uber job's map has one attempt (JobImpl.makeUberDecision): the retry's has its own."""
    code, runs, fs_calls = _distcp_with_exit_codes(monkeypatch, [1, 0])
    assert code == 0
    first, second = runs
    assert "-Dmapreduce.job.ubertask.enable=true" in first
    assert second == [a for a in first if a != "-Dmapreduce.job.ubertask.enable=true"]
    staging = first[-1]
    # the first attempt's partial output is removed before the second starts
    removals = [c for c in fs_calls if c[:1] == ("-rm",) and c[-1] == staging]
    assert len(removals) >= 2
    assert ("-mv", staging, "/sales") in fs_calls


def test_a_copy_that_fails_twice_reports_the_failure_and_leaves_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    code, runs, fs_calls = _distcp_with_exit_codes(monkeypatch, [1, 3])
    assert code == 3 and len(runs) == 2
    assert not [c for c in fs_calls if c[0] == "-mv"]
