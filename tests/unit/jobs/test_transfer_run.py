from corral.jobs.transfer import FileCommit
from corral.jobs.transfer_run import BYTES_PER_MAP, distcp_options


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
