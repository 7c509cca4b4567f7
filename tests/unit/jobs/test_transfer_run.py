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
